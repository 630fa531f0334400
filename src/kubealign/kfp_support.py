"""Small helpers the KFP component bodies call: parameters in, metrics out. No torch here."""

from __future__ import annotations

import math
from typing import Any

from kubealign.config import TrackingConfig
from kubealign.tracking import kfp_metric_name


def tracking(project: str, entity: str, mode: str, group: str) -> dict[str, Any]:
    """Tracking settings from pipeline parameters ('' means unset)."""
    return TrackingConfig.model_validate(
        {"project": project, "entity": entity or None, "mode": mode, "group": group or None}
    ).model_dump()


def checkpoint_uri(root: str, stage: str) -> str | None:
    """Checkpoints of one stage under the pipeline's checkpoint root; '' turns checkpoints off."""
    return f"{root.rstrip('/')}/{stage}" if root else None


def log_metrics(artifact: Any, metrics: dict[str, float]) -> None:
    """Finite scalar metrics onto a KFP Metrics artifact (shown in the Kubeflow UI's run view)."""
    for key, value in sorted(metrics.items()):
        if isinstance(value, (int, float)) and math.isfinite(value):
            artifact.log_metric(kfp_metric_name(key), float(value))


def component(gpu: bool = False) -> Any:
    """`@dsl.component` on the trainer image, which already has kfp and kubealign installed.

    install_kfp_package=False: without it every task starts with `pip install kfp`, which the
    local runner would run into this environment and a cluster pod would fetch from PyPI.
    """
    from kfp import dsl

    from kubealign.profiles import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE

    return dsl.component(base_image=DEFAULT_GPU_IMAGE if gpu else DEFAULT_IMAGE, install_kfp_package=False)
