"""Small helpers the KFP component bodies call: parameters in, metrics out. No torch here."""

from __future__ import annotations

import math
from typing import Any

from kubealign.config import TrackingConfig, build
from kubealign.tracking import kfp_metric_name


def tracking(project: str, entity: str, mode: str, group: str) -> dict[str, Any]:
    """Tracking settings from pipeline parameters ('' means unset)."""
    return TrackingConfig.model_validate(
        {"project": project, "entity": entity or None, "mode": mode, "group": group or None}
    ).model_dump()


def checkpoint_uri(root: str, stage: str) -> str | None:
    """Checkpoints of one stage under the pipeline's checkpoint root; '' turns checkpoints off."""
    return f"{root.rstrip('/')}/{stage}" if root else None


# flat component parameter -> (settings section, field)
_NESTED = {"lora_rank": ("lora", "r"), "lora_alpha": ("lora", "alpha"), "use_lora": ("lora", "enabled")}


def stage_settings(model: type, params: dict[str, Any], stage: str) -> Any:
    """A training stage's settings (`model`, a pydantic class) from its component's flat parameters.

    Pass the component's `locals()` before anything else is defined. A parameter named like a
    settings field is copied; `lora_rank`/`lora_alpha`/`use_lora` fill `lora`; `wandb_*` and
    `run_group` fill `tracking`; `checkpoint_root` becomes the stage's checkpoint folder;
    `taxonomy_uri` ('' = the default taxonomy) becomes `taxonomy`. The rest (artifacts, model and data
    URIs) are the stage's inputs, not settings. Raises ConfigError naming the bad parameter.
    """
    data: dict[str, Any] = {k: v for k, v in params.items() if k in model.model_fields}
    for key, (section, field) in _NESTED.items():
        if key in params:
            data.setdefault(section, {})[field] = params[key]
    if "wandb_project" in params:
        data["tracking"] = tracking(params["wandb_project"], params.get("wandb_entity", ""),
                                    params.get("wandb_mode", "auto"), params.get("run_group", ""))
    if "checkpoint_root" in params:
        data["checkpoint_uri"] = checkpoint_uri(params["checkpoint_root"], stage)
    if "taxonomy_uri" in params:
        data["taxonomy"] = params["taxonomy_uri"] or None
    return build(model, data, where=f"{stage} parameters")


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


def evaluation_settings(params: dict[str, Any]) -> Any:
    """EvalConfig from an evaluate component's parameters (both evaluate components share them)."""
    from kubealign.config import EvalConfig, build

    return build(EvalConfig, {
        "beta": params["beta"], "max_length": params["max_length"], "max_new_tokens": params["max_new_tokens"],
        "num_samples": params["num_samples"], "winrate_prompts": params["num_winrate_prompts"],
        "num_harmful": params["num_harmful"], "num_benign_edgy": params["num_benign_edgy"], "seed": params["seed"],
        "judge_endpoint": params["judge_endpoint"] or None, "judge_model": params["judge_model"],
        "judge_api_key_env": params["judge_api_key_env"],
        "tracking": tracking(params["wandb_project"], params["wandb_entity"], params["wandb_mode"],
                             params["run_group"]),
    }, where="evaluate parameters")
