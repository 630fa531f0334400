"""Typed settings, one pydantic model per stage.

The CLI, the KFP components and the tests all build these, so a bad value fails the same way
everywhere: before any model is loaded, with the field name and what was expected.
Imports stay cheap (pydantic only): the pipeline compiler imports this module.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Settings(BaseModel):
    """Base for every settings model: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrackingConfig(Settings):
    project: str = Field("kubealign", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user); None uses the key's default.")
    group: str | None = Field(
        None, description="W&B group; every stage of one pipeline run uses the same group."
    )
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto",
        description="auto = online when WANDB_API_KEY is set, offline otherwise; disabled = no W&B at all.",
    )
    dir: str | None = Field(None, description="Local folder for W&B run files (offline runs land here).")


class LoraSettings(Settings):
    enabled: bool = Field(True, description="Train a LoRA adapter; False = full fine-tune.")
    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Names of the linear layers that get adapters.",
    )


class TrainSettings(Settings):
    """What every training loop shares: optimisation, schedule, checkpoints, logging."""

    learning_rate: float = Field(2e-4, gt=0, lt=1, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of steps with linear warm-up.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training split (used when max_steps is 0).")
    max_steps: int = Field(0, ge=0, description="Optimizer steps; 0 = derive from epochs.")
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(512, ge=8, description="Tokens per sequence (prompt + response), truncated right.")
    seed: int = Field(0, description="Seed for data order, dropout and initialisation.")
    save_every: int = Field(0, ge=0, description="Checkpoint every N optimizer steps; 0 = only at the end.")
    checkpoint_uri: str | None = Field(
        None, description="fsspec URI for checkpoints; a rerun with the same inputs resumes from here."
    )
    log_every: int = Field(1, ge=1, description="Log metrics every N optimizer steps.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bf16 on GPUs that support it, fp32 elsewhere (CPUs without bf16 units)."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)  # type: ignore[arg-type]
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # type: ignore[arg-type]


RecordKind = Literal["sft", "preference", "safety"]


class DataPrepConfig(Settings):
    kind: RecordKind = Field(..., description="Record type: sft (messages) or preference (prompt/chosen/rejected).")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Fraction of accepted records held out.")
    seed: int = Field(0, description="Seed for the train/eval split.")
    max_reject_fraction: float = Field(
        0.2, ge=0, le=1, description="Fail the run when more than this fraction of records is rejected."
    )
    max_length: int = Field(512, ge=8, description="Token budget used for the tokenizer-aware checks.")
    tokenizer: str | None = Field(
        None, description="Model/tokenizer URI for tokenizer-aware checks (identical after truncation, no room)."
    )


class SFTConfig(TrainSettings):
    pass


class DPOConfig(TrainSettings):
    learning_rate: float = Field(5e-5, gt=0, lt=1, description="Peak AdamW learning rate.")
    beta: float = Field(0.1, gt=0, description="DPO temperature: strength of the implicit KL to the reference.")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid", description="Preference loss: sigmoid (DPO), ipo, hinge (SLiC), robust."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="cDPO / robust DPO label noise.")


class MergeConfig(Settings):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype of the saved merged weights."
    )


class EvalConfig(Settings):
    beta: float = Field(0.1, gt=0, description="Beta used to express implicit rewards.")
    max_length: int = Field(512, ge=8, description="Token budget for scoring held-out pairs.")
    max_new_tokens: int = Field(48, ge=1, description="Greedy generation length.")
    batch_size: int = Field(8, ge=1, description="Sequences per forward/generation batch.")
    num_samples: int = Field(8, ge=0, description="Held-out prompts shown side by side in the report.")
    num_harmful: int = Field(24, ge=0, description="Harmful prompts for the refusal rate (stratified sample).")
    num_benign_edgy: int = Field(24, ge=0, description="Benign-but-edgy prompts for over-refusal.")
    seed: int = Field(0, description="Seed for prompt-set sampling.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Compute dtype.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # type: ignore[arg-type]


class ConfigError(ValueError):
    """A settings problem a person can fix; the message names the field and what was expected."""


def format_validation_error(err: ValidationError, where: str) -> str:
    """One line per problem: `<where>: <field.path>: <message> (got <value>)`."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{where}: {loc}: {e['msg']} (got {shown})")
    return "\n".join(lines)


def build(model: type[Settings], data: dict[str, Any], where: str = "settings") -> Any:
    """Validate `data` into `model`, raising ConfigError with a readable message."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


__all__ = [
    "ConfigError",
    "DataPrepConfig",
    "DPOConfig",
    "EvalConfig",
    "LoraSettings",
    "MergeConfig",
    "SFTConfig",
    "Settings",
    "TrackingConfig",
    "TrainSettings",
    "build",
]
