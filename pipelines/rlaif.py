"""The RLAIF graph: on-policy rounds of constitution-judged preferences and DPO.

    data prep -> SFT -> merge -> [preferences from the current policy -> DPO -> merge] x R
    -> evaluate (SFT vs the last round) -> gate -> publish

R is unrolled when the graph is built (`build(rounds=R)`, `kubealign compile rlaif --rounds R`): KFP
cannot loop over a runtime count of sequential stages. Round r samples from round r-1's merged
policy (the SFT model for r = 1), and its DPO uses that same policy as the reference, so each round
is a KL-anchored step from where the last one ended (iterative DPO). Each round's pairs, every
judge's scores and a Markdown summary are artifacts the Kubeflow UI shows. Preference tasks are
never cached: they sample afresh and read URIs (prompts, constitution, judge models) that can change.

Parameters (names, types, defaults, descriptions) come from the knob table (kubealign.knobs).
"""

from __future__ import annotations

from typing import Any

from kubealign.components.dpo import dpo
from kubealign.components.evaluate import evaluate
from kubealign.components.preferences import preferences
from kubealign.components.sft import sft
from kubealign.kfp_codegen import graph_pipeline
from kubealign.pipelines.common import add_release, digest_of, merged, prepared, stage_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-rlaif"
DESCRIPTION = "Align a chat model with SFT then rounds of constitution-judged on-policy DPO; evaluate against SFT."
DEFAULT_ROUNDS = 2


def _round(r: int, policy: Any, p: dict[str, Any], profile: ClusterProfile | None) -> tuple[Any, Any]:
    """One round from `policy` (a merged model artifact): (its preference task, the next merged policy)."""
    prefs = preferences(policy=policy, prompts=p["prompts"], round_index=r, safety_model=p["safety_model"],
                        reward_model=p["reward_model"], **stage_args("rlaif", "preferences", p))
    configure_task(prefs.set_display_name(f"round {r}: preferences"), "evaluate", profile)
    prefs.set_caching_options(False)  # after the profile: a fresh sample every run
    train = dpo(sft_model=policy, data=prefs.outputs["pairs"], **stage_args("rlaif", "dpo", p))
    configure_task(train.set_display_name(f"round {r}: DPO"), "dpo", profile)
    nxt = merged("rlaif", train.outputs["model"], p, profile, f"round {r}: merge DPO adapter", base=policy)
    return prefs, nxt.outputs["merged"]


def build(profile: ClusterProfile | None = None, rounds: int = DEFAULT_ROUNDS) -> Any:
    """The RLAIF pipeline function with `rounds` preference -> DPO -> merge rounds."""
    if not 1 <= rounds <= 20:
        raise ValueError(f"rounds: expected 1 to 20 preference rounds, got {rounds}")

    def graph(p: dict[str, Any]) -> None:
        base_digest = digest_of("base_model", p, profile)
        sft_data = prepared("rlaif", "sft", "sft_data", p, profile, base_digest)
        sft_task = sft(base_model=p["base_model"], base_model_digest=base_digest, data=sft_data.outputs["splits"],
                       **stage_args("rlaif", "sft", p))
        configure_task(sft_task.set_display_name("SFT"), "sft", profile)
        sft_model = merged("rlaif", sft_task.outputs["model"], p, profile, "merge SFT adapter",
                           base_digest=base_digest).outputs["merged"]
        policy, first = sft_model, None
        for r in range(1, rounds + 1):
            prefs, policy = _round(r, policy, p, profile)
            first = first or prefs
        # held-out pairs of round 1 (prompts DPO never trained on); refusal sets: the eval_* prompt knobs
        evaluation = evaluate(sft_model=sft_model, aligned_model=policy, data=first.outputs["pairs"],
                              safety_model=p["safety_model"], **stage_args("rlaif", "evaluate", p))
        configure_task(evaluation.set_display_name("evaluate"), "evaluate", profile)
        add_release("rlaif", evaluation.outputs["results"], policy, p, profile)

    return graph_pipeline("rlaif", PIPELINE_NAME, DESCRIPTION, graph)


rlaif_pipeline = build()
