"""The PPO graph: data prep -> SFT -> merge -> reward model -> PPO -> merge -> evaluate -> gate -> publish.

The evaluation adds the reward model's win rate of the aligned over the SFT model; the release gate's
`gate_min_win_rate` reads it (unless an LLM judge is configured).
"""

# No `from __future__ import annotations`: KFP reads the real parameter types of the pipeline function.

from typing import Any

from kfp import dsl

from kubealign.components.evaluate import evaluate_rlhf
from kubealign.components.merge import merge_lora_onto
from kubealign.components.ppo import ppo
from kubealign.components.reward import reward_model
from kubealign.pipelines.common import add_release, build_sft_branch, tracking_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-ppo"


def build(profile: ClusterProfile | None = None) -> Any:
    """The PPO pipeline function, with `profile`'s platform settings on every task."""

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="Align a chat model with SFT, a reward model and PPO; evaluate against SFT.")
    def ppo_pipeline(
        base_model: str,
        sft_data: str,
        preference_data: str,
        lora_rank: int = 16,
        lora_alpha: float = 32.0,
        sft_learning_rate: float = 2e-4,
        sft_epochs: float = 1.0,
        sft_max_steps: int = 0,
        reward_learning_rate: float = 1e-4,
        reward_center_coef: float = 0.01,
        reward_epochs: float = 1.0,
        reward_max_steps: int = 0,
        ppo_learning_rate: float = 1e-4,
        ppo_kl_coef: float = 0.05,
        ppo_kl_estimator: str = "k1",
        ppo_clip_range: float = 0.2,
        ppo_clip_range_value: float = 0.2,
        ppo_vf_coef: float = 0.1,
        ppo_gamma: float = 1.0,
        ppo_lam: float = 0.95,
        ppo_rollout_batch_size: int = 16,
        ppo_batch_size: int = 4,
        ppo_epochs: int = 4,
        ppo_max_new_tokens: int = 32,
        ppo_temperature: float = 1.0,
        ppo_missing_eos_penalty: float = 1.0,
        ppo_prompt_epochs: float = 1.0,
        ppo_max_steps: int = 0,
        ppo_sample_every: int = 10,
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
        eval_num_winrate_prompts: int = 64,
        eval_num_harmful: int = 24,
        eval_num_benign_edgy: int = 24,
        safety_model: str = "",
        judge_endpoint: str = "",
        judge_model: str = "gpt-4o-mini",
        gate_max_unsafe_rate: float = -1.0,
        gate_max_over_refusal: float = -1.0,
        gate_min_win_rate: float = -1.0,
        gate_min_harmful_refusal: float = -1.0,
        registry_root: str = "",
        model_name: str = "kubealign-ppo",
        model_version: str = "",
        wandb_project: str = "kubealign",
        wandb_entity: str = "",
        wandb_mode: str = "auto",
    ):
        p = dict(locals())
        branch = build_sft_branch(p, profile)
        track = tracking_args(wandb_project, wandb_entity, wandb_mode)
        sft_merged = branch.sft_merged.outputs["merged"]
        prefs = branch.preference_data.outputs["splits"]
        rm_task = reward_model(
            sft_model=sft_merged, data=prefs, learning_rate=reward_learning_rate, center_coef=reward_center_coef,
            epochs=reward_epochs, max_steps=reward_max_steps, batch_size=batch_size, grad_accum=grad_accum,
            max_length=max_length, lora_rank=lora_rank, lora_alpha=lora_alpha, seed=seed, save_every=save_every,
            checkpoint_root=checkpoint_root, **track,
        ).set_display_name("reward model")
        ppo_task = ppo(
            sft_model=sft_merged, reward_model=rm_task.outputs["model"], data=prefs,
            learning_rate=ppo_learning_rate, kl_coef=ppo_kl_coef, kl_estimator=ppo_kl_estimator,
            clip_range=ppo_clip_range, clip_range_value=ppo_clip_range_value, vf_coef=ppo_vf_coef, gamma=ppo_gamma,
            lam=ppo_lam, rollout_batch_size=ppo_rollout_batch_size, ppo_epochs=ppo_epochs,
            max_new_tokens=ppo_max_new_tokens, temperature=ppo_temperature,
            missing_eos_penalty=ppo_missing_eos_penalty, epochs=ppo_prompt_epochs, max_steps=ppo_max_steps,
            batch_size=ppo_batch_size, grad_accum=grad_accum, max_length=max_length, lora_rank=lora_rank,
            lora_alpha=lora_alpha, seed=seed, save_every=save_every, sample_every=ppo_sample_every,
            checkpoint_root=checkpoint_root, **track,
        ).set_display_name("PPO")
        merged = merge_lora_onto(base=sft_merged, adapter=ppo_task.outputs["model"])
        merged.set_display_name("merge PPO adapter")
        evaluation = evaluate_rlhf(
            sft_model=sft_merged, aligned_model=merged.outputs["merged"], reward_model=rm_task.outputs["model"],
            data=prefs, max_length=max_length, max_new_tokens=eval_max_new_tokens, num_samples=eval_num_samples,
            num_winrate_prompts=eval_num_winrate_prompts, num_harmful=eval_num_harmful,
            num_benign_edgy=eval_num_benign_edgy, seed=seed, safety_model=safety_model,
            judge_endpoint=judge_endpoint, judge_model=judge_model, **track,
        ).set_display_name("evaluate")
        for task, stage in ((rm_task, "reward"), (ppo_task, "ppo"), (merged, "merge"), (evaluation, "evaluate")):
            configure_task(task, stage, profile)
        add_release(evaluation.outputs["results"], merged.outputs["merged"], p, profile)

    return ppo_pipeline


ppo_pipeline = build()
