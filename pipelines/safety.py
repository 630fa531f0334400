"""The safety-classifier graph: data prep (safety records) -> Llama-Guard-style classifier.

A classifier is trained rarely and used by every alignment run: the DPO and PPO graphs take its
folder as the `safety_model` parameter (evaluate then reports the unsafe-response rate).
Parameters come from the knob table (kubealign.knobs).
"""

from __future__ import annotations

from typing import Any

from kubealign.components.safety import safety_classifier
from kubealign.kfp_codegen import graph_pipeline
from kubealign.pipelines.common import digest_of, prepared, stage_args
from kubealign.profiles import ClusterProfile, configure_task

PIPELINE_NAME = "kubealign-safety"
DESCRIPTION = "Train a Llama-Guard-style safety classifier (LoRA)."


def build(profile: ClusterProfile | None = None) -> Any:
    """The safety-classifier pipeline function, with `profile`'s platform settings on every task."""

    def graph(p: dict[str, Any]) -> None:
        base_digest = digest_of("base_model", p, profile)
        prep = prepared("safety", "safety", "safety_data", p, profile, base_digest)
        clf = safety_classifier(base_model=p["base_model"], base_model_digest=base_digest, data=prep.outputs["splits"],
                                **stage_args("safety", "safety", p))
        configure_task(clf.set_display_name("safety classifier"), "safety", profile)

    return graph_pipeline("safety", PIPELINE_NAME, DESCRIPTION, graph)


safety_pipeline = build()
