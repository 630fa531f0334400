"""The DPO graph: data prep -> SFT -> merge -> DPO -> merge -> evaluate."""

# No `from __future__ import annotations`: KFP reads the real parameter types of the pipeline function.

from typing import Any

from kfp import dsl

from kubealign.components.dpo import dpo
from kubealign.components.evaluate import evaluate
from kubealign.components.merge import merge_lora_onto
from kubealign.pipelines.common import add_release, build_sft_branch, tracking_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-dpo"


def build(profile: ClusterProfile | None = None) -> Any:
    """The DPO pipeline function, with `profile`'s platform settings on every task."""

    @dsl.pipeline(name=PIPELINE_NAME, description="Align a chat model with SFT then DPO; evaluate against SFT.")
    def dpo_pipeline(
        base_model: str,
        sft_data: str,
        preference_data: str,
        lora_rank: int = 16,
        lora_alpha: float = 32.0,
        sft_learning_rate: float = 2e-4,
        sft_epochs: float = 1.0,
        sft_max_steps: int = 0,
        dpo_learning_rate: float = 5e-5,
        dpo_beta: float = 0.1,
        dpo_loss_type: str = "sigmoid",
        dpo_label_smoothing: float = 0.0,
        dpo_epochs: float = 1.0,
        dpo_max_steps: int = 0,
        batch_size: int = 4,
        grad_accum: int = 1,
        max_length: int = 512,
        seed: int = 0,
        distributed: str = "ddp",
        eval_fraction: float = 0.1,
        max_reject_fraction: float = 0.2,
        save_every: int = 0,
        checkpoint_root: str = "",
        eval_max_new_tokens: int = 48,
        eval_num_samples: int = 8,
        eval_num_harmful: int = 24,
        eval_num_benign_edgy: int = 24,
        eval_num_winrate_prompts: int = 64,
        safety_model: str = "",
        judge_endpoint: str = "",
        judge_model: str = "gpt-4o-mini",
        gate_max_unsafe_rate: float = -1.0,
        gate_max_over_refusal: float = -1.0,
        gate_min_win_rate: float = -1.0,
        gate_min_harmful_refusal: float = -1.0,
        registry_root: str = "",
        model_name: str = "kubealign-dpo",
        model_version: str = "",
        wandb_project: str = "kubealign",
        wandb_entity: str = "",
        wandb_mode: str = "auto",
    ):
        p = dict(locals())
        branch = build_sft_branch(p, profile)
        track = tracking_args(wandb_project, wandb_entity, wandb_mode)
        dpo_task = dpo(
            sft_model=branch.sft_merged.outputs["merged"], data=branch.preference_data.outputs["splits"],
            beta=dpo_beta, loss_type=dpo_loss_type, label_smoothing=dpo_label_smoothing,
            learning_rate=dpo_learning_rate, epochs=dpo_epochs, max_steps=dpo_max_steps, batch_size=batch_size,
            grad_accum=grad_accum, max_length=max_length, lora_rank=lora_rank, lora_alpha=lora_alpha, seed=seed,
            distributed=distributed, save_every=save_every, checkpoint_root=checkpoint_root, **track,
        ).set_display_name("DPO")
        merged = merge_lora_onto(base=branch.sft_merged.outputs["merged"], adapter=dpo_task.outputs["model"])
        merged.set_display_name("merge DPO adapter")
        evaluation = evaluate(
            sft_model=branch.sft_merged.outputs["merged"], aligned_model=merged.outputs["merged"],
            data=branch.preference_data.outputs["splits"], beta=dpo_beta, max_length=max_length,
            max_new_tokens=eval_max_new_tokens, num_samples=eval_num_samples, num_harmful=eval_num_harmful,
            num_benign_edgy=eval_num_benign_edgy, num_winrate_prompts=eval_num_winrate_prompts, seed=seed,
            safety_model=safety_model, judge_endpoint=judge_endpoint, judge_model=judge_model, **track,
        ).set_display_name("evaluate")
        for task, stage in ((dpo_task, "dpo"), (merged, "merge"), (evaluation, "evaluate")):
            configure_task(task, stage, profile)
        add_release(evaluation.outputs["results"], merged.outputs["merged"], p, profile)

    return dpo_pipeline


dpo_pipeline = build()
