"""The DPO graph: data prep -> SFT -> merge -> DPO -> merge -> evaluate -> gate -> publish.

Its parameters (names, types, defaults, descriptions) come from the knob table (kubealign.knobs).
"""

from __future__ import annotations

from typing import Any

from kubealign.components.dpo import dpo
from kubealign.components.evaluate import evaluate
from kubealign.kfp_codegen import graph_pipeline
from kubealign.pipelines.common import add_release, build_sft_branch, merged, stage_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-dpo"
DESCRIPTION = "Align a chat model with SFT then DPO; evaluate against SFT."


def build(profile: ClusterProfile | None = None) -> Any:
    """The DPO pipeline function, with `profile`'s platform settings on every task."""

    def graph(p: dict[str, Any]) -> None:
        branch = build_sft_branch("dpo", p, profile)
        sft_model, prefs = branch.sft_merged.outputs["merged"], branch.preference_data.outputs["splits"]
        dpo_task = dpo(sft_model=sft_model, data=prefs, **stage_args("dpo", "dpo", p)).set_display_name("DPO")
        configure_task(dpo_task, "dpo", profile)
        aligned = merged("dpo", dpo_task.outputs["model"], p, profile, "merge DPO adapter", base=sft_model)
        evaluation = evaluate(sft_model=sft_model, aligned_model=aligned.outputs["merged"], data=prefs,
                              safety_model=p["safety_model"], **stage_args("dpo", "evaluate", p))
        configure_task(evaluation.set_display_name("evaluate"), "evaluate", profile)
        add_release("dpo", evaluation.outputs["results"], aligned.outputs["merged"], p, profile)

    return graph_pipeline("dpo", PIPELINE_NAME, DESCRIPTION, graph)


dpo_pipeline = build()
