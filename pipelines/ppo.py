"""The PPO graph: data prep -> SFT -> merge -> reward model -> PPO -> merge -> evaluate -> gate -> publish.

The evaluation adds the reward model's win rate of the aligned over the SFT model; the release gate's
`gate_min_win_rate` reads it (unless an LLM judge is configured). Parameters come from the knob table.
"""

from __future__ import annotations

from typing import Any

from kubealign.components.evaluate import evaluate
from kubealign.components.ppo import ppo
from kubealign.components.reward import reward_model
from kubealign.kfp_codegen import graph_pipeline
from kubealign.pipelines.common import add_release, build_sft_branch, merged, stage_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-ppo"
DESCRIPTION = "Align a chat model with SFT, a reward model and PPO; evaluate against SFT."


def build(profile: ClusterProfile | None = None) -> Any:
    """The PPO pipeline function, with `profile`'s platform settings on every task."""

    def graph(p: dict[str, Any]) -> None:
        branch = build_sft_branch("ppo", p, profile)
        sft_model, prefs = branch.sft_merged.outputs["merged"], branch.preference_data.outputs["splits"]
        rm_task = reward_model(sft_model=sft_model, data=prefs, **stage_args("ppo", "reward", p))
        configure_task(rm_task.set_display_name("reward model"), "reward", profile)
        rm = rm_task.outputs["model"]
        ppo_task = ppo(sft_model=sft_model, reward_model=rm, data=prefs, **stage_args("ppo", "ppo", p))
        configure_task(ppo_task.set_display_name("PPO"), "ppo", profile)
        aligned = merged("ppo", ppo_task.outputs["model"], p, profile, "merge PPO adapter", base=sft_model)
        evaluation = evaluate(sft_model=sft_model, aligned_model=aligned.outputs["merged"], reward_model=rm,
                              data=prefs, safety_model=p["safety_model"], **stage_args("ppo", "evaluate", p))
        configure_task(evaluation.set_display_name("evaluate"), "evaluate", profile)
        add_release("ppo", evaluation.outputs["results"], aligned.outputs["merged"], p, profile)

    return graph_pipeline("ppo", PIPELINE_NAME, DESCRIPTION, graph)


ppo_pipeline = build()
