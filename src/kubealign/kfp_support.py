"""Small helpers the KFP component bodies call: parameters in, metrics out. No torch here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kubealign.config import build
from kubealign.tracking import kfp_metric_name


def checkpoint_uri(root: str, stage: str) -> str | None:
    """Checkpoints of one stage under the pipeline's checkpoint root; '' turns checkpoints off."""
    return f"{root.rstrip('/')}/{stage}" if root else None


def stage_settings(model: type, params: dict[str, Any], stage: str, extra: dict[str, Any] | None = None) -> Any:
    """A stage's settings (`model`, a pydantic class) from its component's flat parameters.

    The knob table (`knobs.COMPONENT_ARGS`) says which parameter fills which settings field
    (`lora_rank` -> `lora.r`, `wandb_mode` -> `tracking.mode`, ...); '' (and < 0 for optional
    numbers) means unset. `checkpoint_root` becomes the stage's own checkpoint folder. Parameters
    the table does not name (artifacts, model and data URIs) are the stage's inputs, not settings.
    Raises ConfigError naming the bad parameter.
    """
    from kubealign.knobs import settings_data

    data = settings_data(stage, params)
    if "checkpoint_root" in params:
        data["checkpoint_uri"] = checkpoint_uri(params["checkpoint_root"], stage)
    data.update(extra or {})
    return build(model, data, where=f"{stage} parameters")


def log_metrics(artifact: Any, metrics: dict[str, float]) -> None:
    """Finite scalar metrics onto a KFP Metrics artifact (shown in the Kubeflow UI's run view).

    The same values also go to the artifact's file as JSON: KFP records a Metrics artifact's URI,
    and its local cache treats an entry whose artifact file is missing as a miss.
    """
    logged = {}
    for key, value in sorted(metrics.items()):
        if isinstance(value, (int, float)) and math.isfinite(value):
            logged[kfp_metric_name(key)] = float(value)
            artifact.log_metric(kfp_metric_name(key), float(value))
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(logged, indent=1, sort_keys=True))


def component(gpu: bool = False) -> Any:
    """`@dsl.component` on the trainer image, which already has kfp and kubealign installed.

    install_kfp_package=False: without it every task starts with `pip install kfp`, which the
    local runner would run into this environment and a cluster pod would fetch from PyPI.
    """
    from kfp import dsl

    from kubealign.profiles import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE

    return dsl.component(base_image=DEFAULT_GPU_IMAGE if gpu else DEFAULT_IMAGE, install_kfp_package=False)
