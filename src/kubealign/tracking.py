"""Metrics to Weights & Biases and to the stage's summary (which becomes KFP Metrics).

W&B runs offline unless WANDB_API_KEY is set (mode "auto"); offline runs are plain files that
`wandb sync` uploads later. Every stage of one pipeline run logs under the same W&B group.
`Tracker(mode="disabled")` is the stand-in tests use: it keeps the metrics in memory only.
"""

from __future__ import annotations

import math
import os
from typing import Any

from kubealign.config import TrackingConfig

# W&B must never print or store the API key; it reads it from the environment itself.
_SECRET_ENV = ("WANDB_API_KEY",)


def resolve_mode(cfg: TrackingConfig) -> str:
    if cfg.mode != "auto":
        return cfg.mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class Tracker:
    """Logs scalars, tables and a run summary; `history` keeps every logged row for reports."""

    def __init__(self, cfg: TrackingConfig, stage: str, config: dict[str, Any] | None = None) -> None:
        self.stage = stage
        self.mode = resolve_mode(cfg)
        self.history: list[dict[str, float]] = []
        self.summary: dict[str, float] = {}
        self.run = None
        if self.mode == "disabled":
            return
        import wandb

        if cfg.dir:
            os.makedirs(cfg.dir, exist_ok=True)
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or os.environ.get("KUBEALIGN_RUN_GROUP"),
            job_type=stage,
            name=f"{cfg.group or 'run'}-{stage}" if cfg.group else None,
            mode=self.mode,
            dir=cfg.dir,
            config=config or {},
            reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )

    @property
    def run_dir(self) -> str | None:
        return getattr(self.run, "dir", None) if self.run is not None else None

    def log(self, metrics: dict[str, float], step: int) -> None:
        row = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        self.history.append({"step": step, **row})
        if self.run is not None:
            self.run.log(row, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        if self.run is None:
            return
        import wandb

        self.run.log({key: wandb.Table(columns=columns, data=rows)}, step=step)

    def set_summary(self, metrics: dict[str, float]) -> None:
        self.summary.update(metrics)
        if self.run is not None:
            for k, v in metrics.items():
                self.run.summary[k] = v

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def kfp_metric_name(key: str) -> str:
    """KFP metric names allow letters, digits, '-', '_' and '.': `rewards/chosen` -> `rewards.chosen`."""
    return "".join(c if c.isalnum() or c in "-_." else "." for c in key)
