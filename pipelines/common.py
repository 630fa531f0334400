"""What the graphs share: content digests of the input URIs, data prep, SFT, merge, and the release steps.

Pipelines only compose components and apply platform settings. Every setting a person may change
is a pipeline parameter declared once in the knob table (kubealign.knobs); `stage_args` reads the
table to fill a stage's component call, so no graph restates a knob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfp import dsl

from kubealign import knobs
from kubealign.components.data_prep import content_digest, data_prep
from kubealign.components.merge import merge_lora
from kubealign.components.release import gate, publish
from kubealign.components.sft import sft
from kubealign.profiles import ClusterProfile, configure_task

TRAINED = ("sft", "dpo", "reward", "ppo", "safety", "evaluate")  # stages that log to W&B under the run's group


@dataclass
class SFTBranch:
    sft_data: Any
    preference_data: Any
    sft: Any
    sft_merged: Any


def stage_args(graph: str, stage: str, p: dict[str, Any]) -> dict[str, Any]:
    """The stage's component keyword arguments from the knob table (+ the run's W&B group)."""
    args = knobs.args_for(graph, stage, p)
    if stage in TRAINED:
        args["run_group"] = dsl.PIPELINE_JOB_NAME_PLACEHOLDER
    return args


def digest_of(uri_param: str, p: dict[str, Any], profile: ClusterProfile | None) -> Any:
    """The content digest of the URI in parameter `uri_param`: a task that is never cached, whose output
    the tasks reading that URI take as a parameter, so their cache keys follow the content."""
    digest = content_digest(uri=p[uri_param]).set_display_name(f"digest: {uri_param}")
    configure_task(digest, "data_prep", profile)
    digest.set_caching_options(False)  # after the profile: reading the current digest must always run
    return digest.output


def prepared(graph: str, kind: str, uri_param: str, p: dict[str, Any], profile: ClusterProfile | None,
             base_digest: Any) -> Any:
    """data prep, cached on the digests of its data and of the tokenizer's model: changed data reruns."""
    prep = data_prep(kind=kind, input_uri=p[uri_param], input_digest=digest_of(uri_param, p, profile),
                     tokenizer_uri=p["base_model"], tokenizer_digest=base_digest, **stage_args(graph, "data_prep", p))
    prep.set_display_name(f"data prep: {kind}")
    configure_task(prep, "data_prep", profile)
    return prep


def merged(graph: str, adapter: Any, p: dict[str, Any], profile: ClusterProfile | None, display: str,
           base: Any = None, base_digest: Any = None) -> Any:
    """merge_lora of `adapter` onto `base` (an artifact) or, without one, onto the base_model URI."""
    onto = {"base": base} if base is not None else {"base_model": p["base_model"], "base_model_digest": base_digest}
    task = merge_lora(adapter=adapter, **onto, **stage_args(graph, "merge", p)).set_display_name(display)
    configure_task(task, "merge", profile)
    return task


def build_sft_branch(graph: str, p: dict[str, Any], profile: ClusterProfile | None) -> SFTBranch:
    """data prep (both record kinds) -> SFT -> merge; `p` maps parameter names to pipeline inputs."""
    base_digest = digest_of("base_model", p, profile)
    sft_data = prepared(graph, "sft", "sft_data", p, profile, base_digest)
    pref_data = prepared(graph, "preference", "preference_data", p, profile, base_digest)
    sft_task = sft(base_model=p["base_model"], base_model_digest=base_digest, data=sft_data.outputs["splits"],
                   **stage_args(graph, "sft", p))
    configure_task(sft_task.set_display_name("SFT"), "sft", profile)
    sft_merged = merged(graph, sft_task.outputs["model"], p, profile, "merge SFT adapter", base_digest=base_digest)
    return SFTBranch(sft_data, pref_data, sft_task, sft_merged)


def add_release(graph: str, results: Any, merged_model: Any, p: dict[str, Any], profile: ClusterProfile | None) -> None:
    """gate -> publish: the merged model is published only when every set threshold holds.

    A failing gate fails the run with every failed threshold and its value; an empty registry_root
    skips publishing (the gate still runs). Thresholds < 0 are off.
    """
    check = gate(results=results, **stage_args(graph, "gate", p))
    check.set_display_name("release gate")
    configure_task(check, "evaluate", profile)
    with dsl.If(p["registry_root"] != "", name="publishing-enabled"):
        with dsl.If(check.output == "pass", name="gate-passed"):
            release = publish(model=merged_model, registry_root=p["registry_root"], model_name=p["model_name"],
                              version=p["model_version"], run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
            release.set_display_name("publish")
            configure_task(release, "publish", profile)
