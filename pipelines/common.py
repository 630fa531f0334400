"""The stages both graphs share: data prep of SFT and preference records, SFT, merge.

Pipelines only compose components and apply platform settings; every number a person may want
to change is a pipeline parameter, validated by the stage's pydantic model when the CLI starts a
run and again inside the component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfp import dsl

from kubealign.components.data_prep import data_prep
from kubealign.components.merge import merge_lora
from kubealign.components.release import gate, publish
from kubealign.components.sft import sft
from kubealign.profiles import ClusterProfile, configure_task


@dataclass
class SFTBranch:
    sft_data: Any
    preference_data: Any
    sft: Any
    sft_merged: Any


def tracking_args(wandb_project: Any, wandb_entity: Any, wandb_mode: Any) -> dict[str, Any]:
    return {"wandb_project": wandb_project, "wandb_entity": wandb_entity, "wandb_mode": wandb_mode,
            "run_group": dsl.PIPELINE_JOB_NAME_PLACEHOLDER}


def build_sft_branch(p: dict[str, Any], profile: ClusterProfile | None) -> SFTBranch:
    """data prep (both record kinds) -> SFT -> merge; `p` maps parameter names to pipeline inputs."""
    common_prep = {"eval_fraction": p["eval_fraction"], "seed": p["seed"],
                   "max_reject_fraction": p["max_reject_fraction"], "max_length": p["max_length"],
                   "tokenizer_uri": p["base_model"]}
    sft_data = data_prep(kind="sft", input_uri=p["sft_data"], **common_prep).set_display_name("data prep: SFT")
    pref_data = data_prep(kind="preference", input_uri=p["preference_data"], **common_prep)
    pref_data.set_display_name("data prep: preferences")
    sft_task = sft(
        base_model=p["base_model"], data=sft_data.outputs["splits"], learning_rate=p["sft_learning_rate"],
        epochs=p["sft_epochs"], max_steps=p["sft_max_steps"], batch_size=p["batch_size"],
        grad_accum=p["grad_accum"], max_length=p["max_length"], lora_rank=p["lora_rank"],
        lora_alpha=p["lora_alpha"], seed=p["seed"], distributed=p["distributed"], save_every=p["save_every"],
        checkpoint_root=p["checkpoint_root"],
        **tracking_args(p["wandb_project"], p["wandb_entity"], p["wandb_mode"]),
    ).set_display_name("SFT")
    merged = merge_lora(base_model=p["base_model"], adapter=sft_task.outputs["model"])
    merged.set_display_name("merge SFT adapter")
    for task, stage in ((sft_data, "data_prep"), (pref_data, "data_prep"), (sft_task, "sft"), (merged, "merge")):
        configure_task(task, stage, profile)
    return SFTBranch(sft_data, pref_data, sft_task, merged)


def add_release(results: Any, merged_model: Any, p: dict[str, Any], profile: ClusterProfile | None) -> None:
    """evaluate -> gate -> publish: the merged model is published only when every set threshold holds.

    A failing gate fails the run with every failed threshold and its value; an empty registry_root
    skips publishing (the gate still runs). Thresholds < 0 are off.
    """
    check = gate(results=results, max_unsafe_rate=p["gate_max_unsafe_rate"],
                 max_over_refusal=p["gate_max_over_refusal"], min_win_rate=p["gate_min_win_rate"],
                 min_harmful_refusal=p["gate_min_harmful_refusal"])
    check.set_display_name("release gate")
    configure_task(check, "evaluate", profile)
    with dsl.If(p["registry_root"] != "", name="publishing-enabled"):
        with dsl.If(check.output == "pass", name="gate-passed"):
            release = publish(model=merged_model, registry_root=p["registry_root"], model_name=p["model_name"],
                              version=p["model_version"], run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
            release.set_display_name("publish")
            configure_task(release, "publish", profile)
