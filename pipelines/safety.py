"""The safety-classifier graph: data prep (safety records) -> Llama-Guard-style classifier.

A classifier is trained rarely and used by every alignment run: the DPO and PPO graphs take its
folder as the `safety_model` parameter (evaluate then reports the unsafe-response rate).
"""

# No `from __future__ import annotations`: KFP reads the real parameter types of the pipeline function.

from typing import Any

from kfp import dsl

from kubealign.components.data_prep import data_prep
from kubealign.components.safety import safety_classifier
from kubealign.pipelines.common import tracking_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-safety"


def build(profile: ClusterProfile | None = None) -> Any:
    """The safety-classifier pipeline function, with `profile`'s platform settings on every task."""

    @dsl.pipeline(name=PIPELINE_NAME, description="Train a Llama-Guard-style safety classifier (LoRA).")
    def safety_pipeline(
        base_model: str,
        safety_data: str,
        taxonomy_uri: str = "",
        threshold: float = 0.5,
        learning_rate: float = 2e-4,
        epochs: float = 1.0,
        max_steps: int = 0,
        batch_size: int = 4,
        grad_accum: int = 1,
        max_length: int = 512,
        lora_rank: int = 16,
        lora_alpha: float = 32.0,
        seed: int = 0,
        eval_fraction: float = 0.1,
        max_reject_fraction: float = 0.2,
        save_every: int = 0,
        checkpoint_root: str = "",
        wandb_project: str = "kubealign",
        wandb_entity: str = "",
        wandb_mode: str = "auto",
    ):
        prep = data_prep(kind="safety", input_uri=safety_data, eval_fraction=eval_fraction, seed=seed,
                         max_reject_fraction=max_reject_fraction, max_length=max_length, tokenizer_uri=base_model)
        prep.set_display_name("data prep: safety")
        clf = safety_classifier(
            base_model=base_model, data=prep.outputs["splits"], taxonomy_uri=taxonomy_uri, threshold=threshold,
            learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
            grad_accum=grad_accum, max_length=max_length, lora_rank=lora_rank, lora_alpha=lora_alpha, seed=seed,
            save_every=save_every, checkpoint_root=checkpoint_root,
            **tracking_args(wandb_project, wandb_entity, wandb_mode),
        ).set_display_name("safety classifier")
        configure_task(prep, "data_prep", profile)
        configure_task(clf, "safety", profile)

    return safety_pipeline


safety_pipeline = build()
