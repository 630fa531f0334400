"""What each KFP component does when its task runs: parameters -> settings -> one stage call -> outputs.

The component functions (components/*.py) are generated from the knob table and call
`run_component(name, locals())`; artifacts arrive as KFP artifact objects (`.path`). Stage modules
are imported inside each runner so a component only loads what its stage needs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubealign.kfp_support import log_metrics, stage_settings


def _split(data: Any, name: str) -> str:
    return f"{data.path}/{name}.jsonl"


def _data_prep(p: dict[str, Any]) -> None:
    from kubealign.config import DataPrepConfig
    from kubealign.stages import data_prep as stage

    cfg = stage_settings(DataPrepConfig, p, "data_prep", extra={"kind": p["kind"]})
    log_metrics(p["metrics"], stage.run(cfg, p["input_uri"], p["splits"].path))


def _trainer(stage_name: str, base_key: str) -> Callable[[dict[str, Any]], None]:
    """SFT, DPO, reward model and safety classifier: base model (URI or artifact) + splits -> model."""

    def run(p: dict[str, Any]) -> None:
        import importlib

        from kubealign.knobs import STAGE_MODELS

        stage = importlib.import_module(f"kubealign.stages.{stage_name}")
        cfg = stage_settings(STAGE_MODELS[stage_name], p, stage_name)
        base = p[base_key] if isinstance(p[base_key], str) else p[base_key].path
        log_metrics(p["metrics"], stage.run(cfg, base, _split(p["data"], "train"), p["model"].path,
                                            eval_uri=_split(p["data"], "eval")))

    return run


def _ppo(p: dict[str, Any]) -> None:
    from kubealign.config import PPOConfig
    from kubealign.stages import ppo as stage

    cfg = stage_settings(PPOConfig, p, "ppo")
    summary = stage.run(cfg, p["sft_model"].path, p["reward_model"].path, _split(p["data"], "train"), p["model"].path)
    shutil.copy(f"{p['model'].path}/report.html", p["report"].path)
    log_metrics(p["metrics"], summary)


def _merge(p: dict[str, Any]) -> None:
    from kubealign.config import ConfigError, MergeConfig
    from kubealign.stages import merge as stage

    base = p["base"].path if p.get("base") is not None else p.get("base_model", "")
    if not base:
        raise ConfigError("merge parameters: give the base model as the `base` artifact or the `base_model` URI")
    stage.run(stage_settings(MergeConfig, p, "merge"), base, p["adapter"].path, p["merged"].path)


def _evaluate(p: dict[str, Any]) -> None:
    from kubealign.config import EvalConfig
    from kubealign.stages import evaluate as stage

    cfg = stage_settings(EvalConfig, p, "evaluate")
    reward = p["reward_model"].path if p.get("reward_model") is not None else None
    log_metrics(p["metrics"], stage.run(cfg, p["sft_model"].path, p["aligned_model"].path, _split(p["data"], "eval"),
                                        p["results"].path, report_path=p["report"].path, reward_model=reward,
                                        safety_model=p["safety_model"] or None))


def _gate(p: dict[str, Any]) -> str:
    from kubealign.config import GateConfig
    from kubealign.stages import gate as stage

    metrics = json.loads(Path(p["results"].path, "metrics.json").read_text())
    return stage.run(stage_settings(GateConfig, p, "gate"), metrics, fail_run=p["fail_run"])


def _publish(p: dict[str, Any]) -> str:
    from kubealign.config import PublishConfig, build
    from kubealign.stages import publish as stage

    cfg = build(PublishConfig, {"root": p["registry_root"], "model_name": p["model_name"],
                                "version": p["version"] or p["run_name"]}, where="publish parameters")
    # the run names this publish in its claim, so a retried attempt of this task takes over its own claim
    return stage.run(cfg, p["model"].path, owner=p["run_name"] or None)["uri"]


def _preferences(p: dict[str, Any]) -> None:
    from kubealign.config import PreferencesConfig
    from kubealign.stages import preferences as stage

    cfg = stage_settings(PreferencesConfig, p, "preferences")
    summary = stage.run(cfg, p["policy"].path, p["prompts"], p["pairs"].path, round_index=p["round_index"],
                        reward_model=p["reward_model"] or None, safety_model=p["safety_model"] or None)
    shutil.copy(f"{p['pairs'].path}/candidates.jsonl", p["scores"].path)
    shutil.copy(f"{p['pairs'].path}/summary.md", p["summary"].path)
    log_metrics(p["metrics"], summary)


def _digest(p: dict[str, Any]) -> str:
    from kubealign.digest import content_digest

    return content_digest(p["uri"])


RUNNERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "data_prep": _data_prep, "sft": _trainer("sft", "base_model"), "dpo": _trainer("dpo", "sft_model"),
    "reward_model": _trainer("reward", "sft_model"), "safety_classifier": _trainer("safety", "base_model"),
    "ppo": _ppo, "merge_lora": _merge, "evaluate": _evaluate, "gate": _gate, "publish": _publish,
    "content_digest": _digest, "preferences": _preferences,
}


def run_component(name: str, params: dict[str, Any]) -> Any:
    """Run component `name` with its parameters (the generated function's `locals()`)."""
    return RUNNERS[name](params)
