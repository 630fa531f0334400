"""Component parameters -> stage settings: one mapping for every training component."""

from __future__ import annotations

import inspect

import pytest

from kubealign.config import ConfigError, PPOConfig, SafetyConfig, SFTConfig
from kubealign.kfp_support import stage_settings

# What a component's locals() holds when its body starts (artifacts stand in as plain objects).
SFT_PARAMS = {
    "base_model": "/models/base", "data": object(), "model": object(), "metrics": object(),
    "learning_rate": 1e-4, "epochs": 2.0, "max_steps": 7, "batch_size": 3, "grad_accum": 2, "max_length": 128,
    "lora_rank": 8, "lora_alpha": 16.0, "use_lora": False, "distributed": "fsdp", "seed": 5, "save_every": 3,
    "checkpoint_root": "s3://bucket/ckpt/", "wandb_project": "p", "wandb_entity": "", "wandb_mode": "offline",
    "run_group": "run-1",
}


def test_flat_parameters_fill_the_nested_settings() -> None:
    cfg = stage_settings(SFTConfig, SFT_PARAMS, "sft")
    assert (cfg.learning_rate, cfg.epochs, cfg.max_steps, cfg.batch_size, cfg.grad_accum) == (1e-4, 2.0, 7, 3, 2)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.enabled) == (8, 16.0, False)
    assert cfg.distributed == "fsdp" and cfg.seed == 5 and cfg.save_every == 3
    assert cfg.checkpoint_uri == "s3://bucket/ckpt/sft"
    assert (cfg.tracking.project, cfg.tracking.entity, cfg.tracking.mode, cfg.tracking.group) == (
        "p", None, "offline", "run-1")


def test_empty_checkpoint_root_and_taxonomy_mean_unset() -> None:
    cfg = stage_settings(SafetyConfig, {"checkpoint_root": "", "taxonomy_uri": "", "threshold": 0.3}, "safety")
    assert cfg.checkpoint_uri is None and cfg.taxonomy is None and cfg.threshold == 0.3


def test_bad_value_names_the_stage_and_parameter() -> None:
    with pytest.raises(ConfigError, match=r"ppo parameters.*kl_estimator"):
        stage_settings(PPOConfig, {"kl_estimator": "k9"}, "ppo")
    with pytest.raises(ConfigError, match=r"sft parameters.*distributed"):
        stage_settings(SFTConfig, {**SFT_PARAMS, "distributed": "zero3"}, "sft")


@pytest.mark.parametrize("module,func,model", [
    ("sft", "sft", "SFTConfig"), ("dpo", "dpo", "DPOConfig"), ("reward", "reward_model", "RewardConfig"),
    ("ppo", "ppo", "PPOConfig"), ("safety", "safety_classifier", "SafetyConfig"),
])
def test_every_component_parameter_is_a_setting_or_an_input(module: str, func: str, model: str) -> None:
    """A parameter that is neither would be accepted by KFP and then silently ignored."""
    import importlib

    from kubealign import config

    component = getattr(importlib.import_module(f"kubealign.components.{module}"), func)
    fields = set(getattr(config, model).model_fields)
    mapped = {"lora_rank", "lora_alpha", "use_lora", "checkpoint_root", "taxonomy_uri", "constitution_uri",
              "wandb_project", "wandb_entity", "wandb_mode", "run_group"}
    inputs = {"base_model", "base_model_digest", "data", "model", "metrics", "report", "sft_model", "reward_model"}
    params = set(inspect.signature(component.python_func).parameters)
    assert params - fields - mapped - inputs == set()
    assert "learning_rate" in params and "seed" in params
