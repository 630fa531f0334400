"""Run a pipeline graph on this machine with KFP's own local runner, then summarise it.

`kfp.local.SubprocessRunner` runs each lightweight component in a subprocess of this Python
(use_venv=False: the trainer image's packages are this environment's), in DAG order, with
artifacts under the pipeline root. The same compiled graph runs on a cluster unchanged.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What each stage's summary table row shows, in order.
KEY_METRICS = (
    "accepted", "rejected", "train/loss", "eval/loss", "tokens_per_s", "eval/rewards/accuracies",
    "eval/rewards/margins", "pairs/sft/accuracy", "pairs/aligned/accuracy", "pairs/sft/margin",
    "pairs/aligned/margin", "refusal/harmful/sft", "refusal/harmful/aligned", "refusal/benign_edgy/sft",
    "refusal/benign_edgy/aligned", "merged_mib",
)


@dataclass
class TaskSummary:
    name: str
    wall_s: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


def run_local(pipeline_func: Any, params: dict[str, Any], pipeline_root: str) -> tuple[Path, float]:
    """Run the pipeline; returns the run's folder under pipeline_root and the wall time."""
    from kfp import local

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = {p for p in root.iterdir() if p.is_dir()}
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    pipeline_func(**params)
    wall = time.perf_counter() - t0
    new = sorted((p for p in root.iterdir() if p.is_dir() and p not in before), key=lambda p: p.stat().st_mtime)
    return (new[-1] if new else root), wall


def summarise(run_dir: Path) -> list[TaskSummary]:
    """One row per task folder: metrics from its Metrics artifact and summary.json, artifact paths."""
    rows = []
    for task_dir in sorted((p for p in run_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime):
        metrics: dict[str, float] = {}
        artifacts = []
        for out in sorted(task_dir.iterdir()):
            artifacts.append(str(out))
            if out.is_file() and out.name == "metrics":
                try:
                    raw = json.loads(out.read_text())
                    metrics.update({k.replace(".", "/"): v for k, v in raw.items() if isinstance(v, (int, float))})
                except (ValueError, OSError):
                    pass
            summary = out / "summary.json" if out.is_dir() else None
            if summary and summary.exists():
                data = json.loads(summary.read_text())
                metrics.setdefault("wall_s", data.get("wall_s", float("nan")))
        rows.append(TaskSummary(task_dir.name, metrics.pop("wall_s", None), metrics, artifacts))
    return rows


def format_table(rows: list[TaskSummary], total_wall: float) -> str:
    lines = [f"{'stage':<28} {'wall':>8}  key metrics", "-" * 100]
    for r in rows:
        wall = f"{r.wall_s:7.1f}s" if r.wall_s is not None else "       -"
        shown = [f"{k}={_fmt(r.metrics[k])}" for k in KEY_METRICS if k in r.metrics]
        lines.append(f"{r.name:<28} {wall}  {', '.join(shown) or '-'}")
        for a in r.artifacts:
            lines.append(f"{'':<38}{a}")
    lines.append("-" * 100)
    lines.append(f"total wall time {total_wall:.1f}s")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
