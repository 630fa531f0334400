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
    PPOConfig,
    RewardConfig,
    SafetyConfig,
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
            sets: list[str], require: bool = True) -> dict[str, Any]:
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
    if missing and require:
        raise ConfigError(f"missing required parameter(s): {', '.join(missing)}")
    return merged


def check_stage_settings(p: dict[str, Any], graph: str) -> None:
    """Build every stage's settings from the parameters so bad values fail before the run starts."""
    full = {**_defaults_of(graph), **p}
    lora = {"r": full["lora_rank"], "alpha": full["lora_alpha"]}
    if graph == "safety":
        build(SafetyConfig, {"batch_size": full["batch_size"], "grad_accum": full["grad_accum"],
                             "max_length": full["max_length"], "seed": full["seed"], "save_every": full["save_every"],
                             "lora": lora, "learning_rate": full["learning_rate"], "epochs": full["epochs"],
                             "max_steps": full["max_steps"], "threshold": full["threshold"]}, where="parameters")
        return
    common = {"batch_size": full["batch_size"], "grad_accum": full["grad_accum"], "max_length": full["max_length"],
              "seed": full["seed"], "save_every": full["save_every"], "lora": lora}
    build(DataPrepConfig, {"kind": "sft", "eval_fraction": full["eval_fraction"], "seed": full["seed"],
                           "max_reject_fraction": full["max_reject_fraction"], "max_length": full["max_length"]},
          where="parameters")
    build(SFTConfig, {**common, "learning_rate": full["sft_learning_rate"], "epochs": full["sft_epochs"],
                      "max_steps": full["sft_max_steps"], "distributed": full["distributed"]},
          where="parameters (sft_*)")
    if graph == "dpo":
        build(DPOConfig, {**common, "learning_rate": full["dpo_learning_rate"], "epochs": full["dpo_epochs"],
                          "max_steps": full["dpo_max_steps"], "beta": full["dpo_beta"],
                          "loss_type": full["dpo_loss_type"], "label_smoothing": full["dpo_label_smoothing"],
                          "distributed": full["distributed"]},
              where="parameters (dpo_*)")
        build(EvalConfig, {"beta": full["dpo_beta"], "max_new_tokens": full["eval_max_new_tokens"],
                           "num_samples": full["eval_num_samples"], "num_harmful": full["eval_num_harmful"],
                           "num_benign_edgy": full["eval_num_benign_edgy"]}, where="parameters (eval_*)")
    if graph == "ppo":
        build(RewardConfig, {**common, "learning_rate": full["reward_learning_rate"],
                             "center_coef": full["reward_center_coef"], "epochs": full["reward_epochs"],
                             "max_steps": full["reward_max_steps"]}, where="parameters (reward_*)")
        build(PPOConfig, {**common, "batch_size": full["ppo_batch_size"], "learning_rate": full["ppo_learning_rate"],
                          "kl_coef": full["ppo_kl_coef"], "kl_estimator": full["ppo_kl_estimator"],
                          "clip_range": full["ppo_clip_range"], "clip_range_value": full["ppo_clip_range_value"],
                          "vf_coef": full["ppo_vf_coef"], "gamma": full["ppo_gamma"], "lam": full["ppo_lam"],
                          "rollout_batch_size": full["ppo_rollout_batch_size"], "ppo_epochs": full["ppo_epochs"],
                          "max_new_tokens": full["ppo_max_new_tokens"], "temperature": full["ppo_temperature"],
                          "missing_eos_penalty": full["ppo_missing_eos_penalty"], "epochs": full["ppo_prompt_epochs"],
                          "max_steps": full["ppo_max_steps"], "sample_every": full["ppo_sample_every"]},
              where="parameters (ppo_*)")
        build(EvalConfig, {"max_new_tokens": full["eval_max_new_tokens"], "num_samples": full["eval_num_samples"],
                           "num_harmful": full["eval_num_harmful"], "num_benign_edgy": full["eval_num_benign_edgy"],
                           "winrate_prompts": full["eval_num_winrate_prompts"]}, where="parameters (eval_*)")


def _defaults_of(graph: str) -> dict[str, Any]:
    from kubealign.pipelines import dpo, ppo, safety

    func = {"dpo": dpo.dpo_pipeline, "ppo": ppo.ppo_pipeline, "safety": safety.safety_pipeline}[graph]
    return {n: p.default for n, p in signature_params(func).items() if p.default is not inspect.Parameter.empty}


def check_local_inputs(p: dict[str, Any]) -> None:
    """Local input paths must exist before a run starts (remote URIs are checked by the stages)."""
    for key in ("base_model", "sft_data", "preference_data", "safety_data"):
        uri = p.get(key)
        if not uri or ("://" in uri and not uri.startswith("file://")):
            continue
        path = Path(uri.removeprefix("file://"))
        if not path.exists():
            raise ConfigError(f"parameter {key}: {uri} does not exist")
        if key == "base_model" and not (path / "config.json").exists():
            raise ConfigError(f"parameter base_model: {uri} is not a model folder (expected config.json inside)")
