"""The PPO graph learning from the constitution: its reward model trains on preference pairs that the
preferences stage samples from the SFT model and judges against the constitution (the RLAIF graph's
round 1), instead of a fixed preference file.

    data prep -> SFT -> merge -> preferences -> reward model -> PPO (on the pairs' prompts) -> merge
    -> evaluate (+ the reward model's win rate) -> gate -> publish

The reward model's held-out pairs keep their kind, so its summary reports pair accuracy on harmful
pairs (refusal preferred) and benign pairs (serving preferred) with 95% intervals
(`eval/accuracy/harmful`, `eval/accuracy/benign`). Parameters come from the knob table.
"""

from __future__ import annotations

from typing import Any

from kubealign.components.evaluate import evaluate
from kubealign.components.ppo import ppo
from kubealign.components.preferences import preferences
from kubealign.components.reward import reward_model
from kubealign.components.sft import sft
from kubealign.kfp_codegen import graph_pipeline
from kubealign.pipelines.common import add_release, digest_of, merged, prepared, stage_args
from kubealign.profiles import ClusterProfile, configure_task

GRAPH = "rlaif_ppo"
PIPELINE_NAME = "kubealign-rlaif-ppo"
DESCRIPTION = "Align a chat model with SFT, a reward model trained on constitution-judged pairs, and PPO."


def build(profile: ClusterProfile | None = None) -> Any:
    """The pipeline function, with `profile`'s platform settings on every task."""

    def graph(p: dict[str, Any]) -> None:
        base_digest = digest_of("base_model", p, profile)
        sft_data = prepared(GRAPH, "sft", "sft_data", p, profile, base_digest)
        sft_task = sft(base_model=p["base_model"], base_model_digest=base_digest, data=sft_data.outputs["splits"],
                       **stage_args(GRAPH, "sft", p))
        configure_task(sft_task.set_display_name("SFT"), "sft", profile)
        sft_model = merged(GRAPH, sft_task.outputs["model"], p, profile, "merge SFT adapter",
                           base_digest=base_digest).outputs["merged"]
        prefs = preferences(policy=sft_model, prompts=p["prompts"], round_index=1, safety_model=p["safety_model"],
                            **stage_args(GRAPH, "preferences", p))
        configure_task(prefs.set_display_name("preferences"), "evaluate", profile)
        prefs.set_caching_options(False)  # after the profile: a fresh sample every run
        pairs = prefs.outputs["pairs"]
        rm_task = reward_model(sft_model=sft_model, data=pairs, **stage_args(GRAPH, "reward", p))
        configure_task(rm_task.set_display_name("reward model"), "reward", profile)
        rm = rm_task.outputs["model"]
        ppo_task = ppo(sft_model=sft_model, reward_model=rm, data=pairs, **stage_args(GRAPH, "ppo", p))
        configure_task(ppo_task.set_display_name("PPO"), "ppo", profile)
        aligned = merged(GRAPH, ppo_task.outputs["model"], p, profile, "merge PPO adapter", base=sft_model)
        evaluation = evaluate(sft_model=sft_model, aligned_model=aligned.outputs["merged"], reward_model=rm,
                              data=pairs, safety_model=p["safety_model"], **stage_args(GRAPH, "evaluate", p))
        configure_task(evaluation.set_display_name("evaluate"), "evaluate", profile)
        add_release(GRAPH, evaluation.outputs["results"], aligned.outputs["merged"], p, profile)

    return graph_pipeline(GRAPH, PIPELINE_NAME, DESCRIPTION, graph)


rlaif_ppo_pipeline = build()
