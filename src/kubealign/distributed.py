"""Several accelerators in one pod: one training process per accelerator, data parallel.

A stage given N > 1 processes (`num_processes`, by default one per visible GPU) starts N copies of
itself with torch's own launcher (`python -m torch.distributed.run`, i.e. torchrun) and waits for
them. Each worker runs the same stage code; the shared loop sees WORLD_SIZE > 1 and trains through
accelerate: DDP (every rank holds the whole model, gradients are averaged) or FSDP2 (parameters,
gradients and optimizer state sharded across ranks). Rank r takes every N-th example of each
global micro-batch of `batch_size * N` examples. Rank 0 logs, checkpoints and saves; the parent
returns rank 0's summary. Beyond one node, an existing engine (PyTorchJob) sets the same variables.

Gradients are averaged over ranks, so a step's loss is the mean of per-rank means: that equals the
single-process loss on the whole global batch when the ranks hold equal numbers of loss tokens.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

# stage name -> (module with run(cfg, **args), its settings class in kubealign.config)
STAGES = {"sft": ("kubealign.stages.sft", "SFTConfig"), "dpo": ("kubealign.stages.dpo", "DPOConfig")}


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) in a plain process."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return world()[0] == 0


def num_processes(setting: int) -> int:
    """The processes to train with: `setting`, or 0 = one per visible GPU (one process on CPU)."""
    if setting:
        return setting
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return gpus if gpus > 1 else 1


def shard(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's part of one global micro-batch: every `world_size`-th example, starting at `rank`.

    A global batch shorter than the world (the tail of an epoch) is repeated cyclically so that every
    rank gets at least one example: a rank with nothing to do would stall the gradient all-reduce.
    """
    if world_size == 1:
        return list(indices)
    if not indices:
        raise ValueError("empty micro-batch")
    if len(indices) < world_size:
        indices = [indices[i % len(indices)] for i in range(world_size)]
    return list(indices[rank::world_size])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (FSDP2 shards in place: its model is the module itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def accelerator(kind: str, device: torch.device) -> Any:
    """An `accelerate.Accelerator` for this worker: DDP, or FSDP2 with one unit per decoder layer.

    Backend: nccl on GPUs, gloo on CPU (accelerate picks it from `cpu=`).
    """
    from accelerate import Accelerator, FullyShardedDataParallelPlugin, PartialState
    from accelerate.utils import DistributedType

    plugin = None
    if kind == "fsdp":
        # FSDP2 shards per parameter, so frozen base weights and trainable LoRA weights can share a
        # unit (FSDP1 needed use_orig_params for that); one unit per decoder layer bounds the memory
        # of the all-gathered weights to about one layer at a time.
        plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap")
    acc = Accelerator(cpu=device.type == "cpu", fsdp_plugin=plugin)
    if plugin is not None and acc.distributed_type != DistributedType.FSDP:
        # accelerate 1.15 switches FSDP on only for accelerators and silently runs CPU processes as
        # DDP; torch's FSDP2 itself runs on CPU with gloo, so ask for it explicitly.
        acc.state.distributed_type = DistributedType.FSDP
        acc.state.fsdp_plugin = plugin
        PartialState().distributed_type = DistributedType.FSDP  # accelerate keeps a second copy there
    return acc


def maybe_relaunch(stage: str, kwargs: dict[str, Any], nproc: int) -> dict[str, float] | None:
    """Run `stage` as `nproc` worker processes and return rank 0's summary; None = run in this process.

    `kwargs` are the stage's `run()` arguments: `cfg` (its settings) and JSON-serialisable paths.
    Workers (LOCAL_RANK set) and single-process runs get None and carry on in-process.
    """
    if nproc <= 1 or "LOCAL_RANK" in os.environ:
        return None
    if kwargs.pop("on_step", None) is not None:
        raise ValueError(f"{stage}: on_step callbacks cannot cross into {nproc} worker processes")
    cfg = kwargs.pop("cfg")
    with tempfile.TemporaryDirectory(prefix=f"kubealign-{stage}-") as tmp:
        job, result = Path(tmp, "job.json"), Path(tmp, "result.json")
        job.write_text(json.dumps({"config": cfg.model_dump(mode="json"), "args": kwargs, "result": str(result)}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "kubealign.distributed", stage, str(job)]
        env = dict(os.environ)
        # torchrun would set 1 thread and warn; share the pod's cores between the workers instead
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        print(f"{stage}: training in {nproc} processes ({cfg.distributed}): {' '.join(cmd)}", flush=True)
        code = subprocess.run(cmd, env=env, check=False).returncode  # workers' output streams through
        if code != 0 or not result.exists():
            raise RuntimeError(f"{stage}: the {nproc} worker processes failed (exit code {code}); "
                               "the failing rank's traceback is in the log above")
        return json.loads(result.read_text())


def main(argv: Sequence[str] | None = None) -> None:
    """Worker entry: `python -m kubealign.distributed <stage> <job.json>` under torchrun."""
    stage, job_path = argv if argv is not None else sys.argv[1:]
    job = json.loads(Path(job_path).read_text())
    module_name, config_name = STAGES[stage]
    config_cls = getattr(importlib.import_module("kubealign.config"), config_name)
    run = importlib.import_module(module_name).run
    try:
        summary = run(config_cls.model_validate(job["config"]), **job["args"])
        if is_main():
            Path(job["result"]).write_text(json.dumps(summary))
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
