"""Pipeline parameters as a person gives them (`--config FILE`, `--set key=value`), checked up front.

The CLI checks a run's parameters here before starting KFP, so a typo fails in a second with the
parameter's name instead of minutes later inside a component. Components validate again with the
same pydantic models (the Kubeflow UI path never passes through the CLI). No torch imported here.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import yaml

from kubealign.config import (
    ConfigError,
    DataPrepConfig,
    DPOConfig,
    EvalConfig,
    SFTConfig,
    build,
)


def signature_params(pipeline_func: Any) -> dict[str, inspect.Parameter]:
    """The pipeline function's parameters (KFP keeps the Python function on `.pipeline_func`)."""
    func = getattr(pipeline_func, "pipeline_func", pipeline_func)
    return dict(inspect.signature(func).parameters)


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if annotation not in kinds:
        return raw
    if isinstance(raw, str) and annotation is not str:
        if annotation is bool:
            low = raw.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
        else:
            try:
                return annotation(float(raw)) if annotation is int and "e" in raw.lower() else annotation(raw)
            except ValueError:
                pass
        raise ConfigError(f"parameter {name}: expected {kinds[annotation]}, got {raw!r}")
    if annotation is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if annotation is int and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if not isinstance(raw, annotation) or (annotation is int and isinstance(raw, bool)):
        raise ConfigError(f"parameter {name}: expected {kinds[annotation]}, got {raw!r}")
    return raw


def load_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of pipeline parameters, got {type(data).__name__}")
    return data


def resolve(pipeline_func: Any, defaults: dict[str, Any], config_file: str | None,
            sets: list[str]) -> dict[str, Any]:
    """defaults < config file < --set, each key checked against the pipeline's parameters."""
    params = signature_params(pipeline_func)
    merged: dict[str, Any] = {}
    sources: list[tuple[str, dict[str, Any]]] = [("defaults", defaults)]
    if config_file:
        sources.append((config_file, load_config_file(config_file)))
    pairs = {}
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value
    sources.append(("--set", pairs))
    for where, values in sources:
        for key, value in values.items():
            if key not in params:
                raise ConfigError(f"{where}: unknown parameter {key!r}; valid: {', '.join(sorted(params))}")
            merged[key] = _coerce(key, value, params[key].annotation)
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in merged]
    if missing:
        raise ConfigError(f"missing required parameter(s): {', '.join(missing)}")
    return merged


def check_stage_settings(p: dict[str, Any], graph: str) -> None:
    """Build every stage's settings from the parameters so bad values fail before the run starts."""
    full = {**_defaults_of(graph), **p}
    lora = {"r": full["lora_rank"], "alpha": full["lora_alpha"]}
    common = {"batch_size": full["batch_size"], "grad_accum": full["grad_accum"], "max_length": full["max_length"],
              "seed": full["seed"], "save_every": full["save_every"], "lora": lora}
    build(DataPrepConfig, {"kind": "sft", "eval_fraction": full["eval_fraction"], "seed": full["seed"],
                           "max_reject_fraction": full["max_reject_fraction"], "max_length": full["max_length"]},
          where="parameters")
    build(SFTConfig, {**common, "learning_rate": full["sft_learning_rate"], "epochs": full["sft_epochs"],
                      "max_steps": full["sft_max_steps"]}, where="parameters (sft_*)")
    if graph == "dpo":
        build(DPOConfig, {**common, "learning_rate": full["dpo_learning_rate"], "epochs": full["dpo_epochs"],
                          "max_steps": full["dpo_max_steps"], "beta": full["dpo_beta"],
                          "loss_type": full["dpo_loss_type"], "label_smoothing": full["dpo_label_smoothing"]},
              where="parameters (dpo_*)")
        build(EvalConfig, {"beta": full["dpo_beta"], "max_new_tokens": full["eval_max_new_tokens"],
                           "num_samples": full["eval_num_samples"], "num_harmful": full["eval_num_harmful"],
                           "num_benign_edgy": full["eval_num_benign_edgy"]}, where="parameters (eval_*)")


def _defaults_of(graph: str) -> dict[str, Any]:
    from kubealign.pipelines import dpo

    func = {"dpo": dpo.dpo_pipeline}[graph]
    return {n: p.default for n, p in signature_params(func).items() if p.default is not inspect.Parameter.empty}
