"""Run a pipeline graph on this machine with KFP's own local runner, then summarise it.

`kfp.local.SubprocessRunner` runs each lightweight component in a subprocess of this Python
(use_venv=False: the trainer image's packages are this environment's), in DAG order, with
artifacts under the pipeline root. The same compiled graph runs on a cluster unchanged.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What each stage's summary table row shows, in order.
KEY_METRICS = (
    "total", "accepted", "train", "eval", "train/loss", "eval/loss", "tokens_per_s", "eval/rewards/accuracies",
    "eval/rewards/margins", "pairs/sft/accuracy", "pairs/aligned/accuracy", "pairs/sft/margin",
    "pairs/aligned/margin", "refusal/harmful/sft", "refusal/harmful/aligned", "refusal/benign_edgy/sft",
    "refusal/benign_edgy/aligned", "winrate/implicit_reward", "kl/aligned_vs_sft", "eval/accuracy",
    "objective/scores", "objective/kl", "score/first_quarter", "score/last_quarter", "winrate/reward_model",
    "rm_score/sft", "rm_score/aligned", "safety/unsafe_rate/aligned", "merged_mib",
)


# The one metric a task's end line shows: the first of these it logged.
LINE_METRICS = ("accepted", "eval/rewards/accuracies", "eval/accuracy", "winrate/reward_model",
                "winrate/implicit_reward", "objective/scores", "train/loss", "merged_mib")


@dataclass
class TaskSummary:
    name: str
    wall_s: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


def run_local(pipeline_func: Any, params: dict[str, Any], pipeline_root: str,
              cache: bool = False, verbose: bool = False, runner: Any = None) -> tuple[Path, float, float]:
    """Run the pipeline; returns the run's folder under pipeline_root, start time (epoch s) and wall time.

    The console shows one line per task start and end, progress bars and failures (`TaskConsole`);
    each task's full output goes to `<run folder>/logs/<task>.log`. `verbose` shows everything as
    KFP prints it. A failed task raises RuntimeError naming the task and its log. `runner`: a
    kfp.local runner (e.g. kubealign.images.docker_runner); default the SubprocessRunner.
    """
    from kfp import local

    from kubealign.run_console import TaskConsole, captured

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = {p for p in root.iterdir() if p.is_dir()}
    # With cache=True a rerun reuses tasks whose component and inputs are unchanged (KFP's local
    # cache under <root>/.kfp_cache); code changes inside kubealign do not invalidate it.
    local.init(runner=runner or local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True,
               enable_caching=cache)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started, t0 = time.time(), time.perf_counter()
    console = TaskConsole(sys.stdout, root, before, LINE_METRICS, verbose=verbose)
    try:
        with captured(console):
            pipeline_func(**params)
    except RuntimeError as err:
        console.write_logs()
        task = console.failed or "a task"
        raise RuntimeError(f"{task} failed; its full log: {console.log_path(task)}") from err
    wall = time.perf_counter() - t0
    logs = console.write_logs()
    print(f"task logs: {logs}", flush=True)
    run_dir = console.find_run_dir()
    return (run_dir or root), started, wall


def summarise(run_dir: Path, started: float) -> list[TaskSummary]:
    """One row per finished task, in finishing order, from the executor_output.json KFP writes.

    The local runner runs tasks one after another, so a task's wall time is the time between the
    previous task's finish (or the run's start) and its own.
    """
    done = sorted((p / "executor_output.json" for p in run_dir.iterdir() if (p / "executor_output.json").exists()),
                  key=lambda f: f.stat().st_mtime)
    rows, previous = [], started
    for out in done:
        finished = out.stat().st_mtime
        metrics: dict[str, float] = {}
        artifacts = []
        for name, entry in json.loads(out.read_text()).get("artifacts", {}).items():
            for art in entry.get("artifacts", []):
                meta = art.get("metadata", {})
                if name == "metrics":
                    metrics.update({k.replace(".", "/"): v for k, v in meta.items() if isinstance(v, (int, float))})
                else:
                    artifacts.append(art.get("uri", ""))
        rows.append(TaskSummary(out.parent.name, finished - previous, metrics, artifacts))
        previous = finished
    return rows


def format_table(rows: list[TaskSummary], total_wall: float) -> str:
    lines = [f"{'stage':<28} {'wall':>8} {'peak RSS':>9}  key metrics", "-" * 100]
    for r in rows:
        wall = f"{r.wall_s:7.1f}s" if r.wall_s is not None else "       -"
        rss = r.metrics.get("peak_rss_mib")
        mem = f"{rss:5.0f} MiB" if rss is not None else "        -"
        shown = [f"{k}={_fmt(r.metrics[k])}" for k in KEY_METRICS if k in r.metrics]
        lines.append(f"{r.name:<28} {wall} {mem}  {', '.join(shown) or '-'}")
        for a in r.artifacts:
            lines.append(f"{'':<48}{a}")
    lines.append("-" * 100)
    lines.append(f"total wall time {total_wall:.1f}s")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
