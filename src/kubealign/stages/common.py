"""What every stage does around its work: seeding, device and dtype, tracking, atomic outputs."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kubealign import distributed, models
from kubealign.config import TrackingConfig
from kubealign.data.io import read_jsonl  # noqa: F401  (stages read data_prep's splits through it)
from kubealign.tracking import Tracker


@dataclass
class Stage:
    """Run-wide context of one stage: device, dtype, tracker, start time."""

    name: str
    device: torch.device
    dtype: torch.dtype
    tracker: Tracker
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def resources(self) -> dict[str, float]:
        """Wall time so far and this process's peak memory: resident (`peak_rss_mib`) and, on a GPU,
        the most tensor memory torch held at once (`peak_gpu_mib`)."""
        out = {"wall_s": self.elapsed(), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if self.device.type == "cuda":
            out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return out


def start(name: str, tracking: TrackingConfig, dtype: str, seed: int, config: dict[str, Any]) -> Stage:
    random.seed(seed)
    torch.manual_seed(seed)
    # Two cores here; more threads than cores only adds contention.
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    device = models.pick_device()
    rank, world_size, local_rank = distributed.world()
    if world_size > 1:
        if device.type == "cuda":  # one GPU per worker process
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if rank:  # one W&B run per stage: rank 0's
            tracking = tracking.model_copy(update={"mode": "disabled"})
    resolved = models.pick_dtype(dtype, device)
    where = f" rank={rank}/{world_size}" if world_size > 1 else ""
    print(f"{name}: device={device} dtype={str(resolved).removeprefix('torch.')}{where}", flush=True)
    return Stage(name, device, resolved, Tracker(tracking, name, config))


@contextlib.contextmanager
def atomic_dir(out_dir: str | Path) -> Iterator[Path]:
    """Build an output folder beside its final place and move it there only on success."""
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # KFP may create the artifact folder before the component runs
        else:
            shutil.rmtree(out)
    tmp.rename(out)


def write_summary(out_dir: str | Path, summary: dict[str, Any]) -> None:
    Path(out_dir, "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def model_output(stage: Stage, out_dir: str | Path, model: torch.nn.Module, tokenizer: Any, meta: dict[str, Any],
                 summary: dict[str, Any], history: list[dict[str, Any]],
                 state_dict: dict[str, torch.Tensor] | None = None) -> Iterator[Path]:
    """A trained model's output folder, written atomically: weights, tokenizer and `meta`
    (kubealign.json), then summary.json = `summary` (updated in place with this stage's wall time and
    peak memory) plus `history`. The `with` body adds the stage's own files; on success the summary
    goes to the tracker. The caller finishes the tracker (it may log more first)."""
    with atomic_dir(out_dir) as tmp:
        models.save_model(model, tokenizer, tmp, meta, state_dict=state_dict)
        summary.update(stage.resources())
        write_summary(tmp, {**summary, "history": history})
        yield tmp
    stage.tracker.set_summary(summary)


def save_trained(stage: Stage, out_dir: str | Path, model: torch.nn.Module, tokenizer: Any, meta: dict[str, Any],
                 summary: dict[str, Any], history: list[dict[str, Any]],
                 state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """End of a data-parallel training stage: rank 0 writes `model_output`, every rank finishes its tracker.
    (Every rank has evaluated before this: FSDP forwards are collective.)"""
    if distributed.is_main():
        with model_output(stage, out_dir, model, tokenizer, meta, summary, history, state_dict):
            pass
    stage.tracker.finish()
    return summary
