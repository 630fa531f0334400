"""The one training loop every stage shares: order, accumulation, clipping, schedule, checkpoints.

A stage hands over its examples, a collate function and a loss function; the loop owns the rest.
Data order is a pure function of (seed, epoch), so the data position is the step number: resuming
at step s replays nothing and skips nothing. Checkpoints hold the trainable weights (the LoRA
adapter, or all weights for a full fine-tune), optimizer, scheduler, RNG states and position.

With WORLD_SIZE > 1 (a stage relaunched by `kubealign.distributed`) the same loop trains data
parallel through accelerate: a global micro-batch is `batch_size * world_size` examples, rank r
takes every world_size-th of them, gradients are averaged across ranks (DDP, or FSDP2 with
`distributed: fsdp`), logged metrics are means over ranks, and rank 0 alone logs and writes
checkpoints (every rank loads them on resume).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from kubealign import distributed, storage
from kubealign.config import TrainSettings
from kubealign.tracking import Tracker

# (model, batch) -> (loss to backpropagate, metrics to average over the step, tokens processed)
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float], int]]


class DataOrder:
    """Micro-batch m of the run -> example indices, reshuffled each epoch with seed + epoch."""

    def __init__(self, n_examples: int, batch_size: int, seed: int) -> None:
        if n_examples == 0:
            raise ValueError("the training split is empty")
        self.n, self.bs, self.seed = n_examples, batch_size, seed
        self.per_epoch = math.ceil(n_examples / batch_size)
        self._perms: dict[int, list[int]] = {}

    def indices(self, m: int) -> list[int]:
        epoch, k = divmod(m, self.per_epoch)
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed + epoch)
            self._perms[epoch] = torch.randperm(self.n, generator=g).tolist()
        return self._perms[epoch][k * self.bs : (k + 1) * self.bs]


def total_steps(cfg: TrainSettings, n_examples: int, world_size: int = 1) -> int:
    if cfg.max_steps:
        return cfg.max_steps
    micro = math.ceil(cfg.epochs * math.ceil(n_examples / (cfg.batch_size * world_size)))
    return max(1, math.ceil(micro / cfg.grad_accum))


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up to 1 over `warmup` steps, then cosine decay to 0 at `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def fingerprint(*parts: Any) -> str:
    """Stable id of a run's inputs: a rerun with the same inputs finds the same checkpoints."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    return storage.sha256_file(path)[:16] if Path(path).exists() else str(path)


@dataclass
class LoopResult:
    steps: int
    resumed_from: int | None
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    tokens_per_s: float = 0.0
    # FSDP only, rank 0: the trained weights gathered from their shards (CPU), for saving
    state_dict: dict[str, torch.Tensor] | None = None


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# Public names for loops that keep their own checkpoint layout (the PPO stage) but share the RNG handling.
rng_state = _rng_state
set_rng_state = _set_rng_state


def _fsdp_state_options() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # whole tensors on rank 0's CPU (the other ranks get {}); frozen base weights are not state
    return StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)


def _save_checkpoint(store: storage.CheckpointStore, step: int, model: torch.nn.Module,
                     opt: torch.optim.Optimizer, sched: Any, position: int, history: list[dict[str, float]],
                     fsdp: bool = False) -> None:
    """Rank 0 writes; under FSDP every rank must call this (gathering the shards is collective)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        trainable, optimizer = get_state_dict(model, getattr(opt, "optimizer", opt), options=_fsdp_state_options())
    else:
        trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
        optimizer = opt.state_dict()
    if not distributed.is_main():
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(
            {"trainable": trainable, "optimizer": optimizer, "scheduler": sched.state_dict(),
             "rng": _rng_state(), "step": step, "micro_batch": position, "history": history},
            Path(tmp) / "state.pt",
        )
        store.save(step, tmp, meta={"micro_batch": position})


def _load_checkpoint(store: storage.CheckpointStore, step: int, model: torch.nn.Module,
                     opt: torch.optim.Optimizer, sched: Any, fsdp: bool = False) -> list[dict[str, float]]:
    """Restore the state saved at `step`; returns the metric history up to that step."""
    with tempfile.TemporaryDirectory() as tmp:
        store.load(step, tmp)
        state = torch.load(Path(tmp) / "state.pt", map_location="cpu", weights_only=False)
    if fsdp:  # every rank holds the whole state; set_state_dict keeps each rank's shard of it
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, getattr(opt, "optimizer", opt), model_state_dict=state["trainable"],
                       optim_state_dict=state["optimizer"],
                       options=StateDictOptions(full_state_dict=True, strict=False))
    else:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return list(state.get("history", []))


def train(
    model: torch.nn.Module,
    examples: Sequence[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    loss_fn: LossFn,
    cfg: TrainSettings,
    tracker: Tracker,
    run_id: str,
    desc: str = "train",
    on_step: Callable[[int], None] | None = None,
) -> LoopResult:
    """Optimise `model` on `examples`; resumes from `cfg.checkpoint_uri/<run_id>` when present.

    `on_step(step)` runs after each completed optimizer step (and its checkpoint, if due).
    Under several processes `loss_fn` gets the DDP-wrapped model (`distributed.unwrap` reaches inside).
    """
    rank, world_size, _ = distributed.world()
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    steps = total_steps(cfg, len(examples), world_size)
    order = DataOrder(len(examples), cfg.batch_size * world_size, cfg.seed)  # global micro-batches
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, warmup))

    acc, wrapped, fsdp = None, model, False
    if world_size > 1:
        acc = distributed.accelerator(cfg.distributed, device)
        # the scheduler stays on the inner optimizer: accelerate's would step once per process
        wrapped, opt = acc.prepare(model, opt)
        fsdp = acc.is_fsdp2  # FSDP2 shards `model` in place: its trainable parameters are new (DTensors)
        params = [p for p in wrapped.parameters() if p.requires_grad]
        if rank == 0:
            print(f"{desc}: data parallel over {world_size} processes ({acc.distributed_type.value}, "
                  f"{acc.state.backend}); global batch {cfg.batch_size * world_size}", flush=True)

    # the data position depends on the global batch, so each world size keeps its own checkpoints
    ckpt_run = run_id if world_size == 1 else f"{run_id}-ws{world_size}"
    store = storage.CheckpointStore(storage.join(cfg.checkpoint_uri, ckpt_run)) if cfg.checkpoint_uri else None
    start = 0
    resumed = store.latest() if store else None
    if store and resumed is not None:
        # the curves in reports cover the whole run, not just the part after the restart
        tracker.history[:0] = _load_checkpoint(store, resumed, model, opt, sched, fsdp)
        start = resumed
        if rank == 0:
            print(f"{desc}: resuming from step {resumed} of {steps} ({store.step_uri(resumed)})", flush=True)

    model.train()
    tokens_total, time_total = 0, 0.0
    last: dict[str, float] = {}
    bar = tqdm(total=steps, initial=start, desc=desc, unit="step", dynamic_ncols=True, mininterval=2.0,
               disable=rank != 0)
    backward = acc.backward if acc else torch.Tensor.backward
    for step in range(start, steps):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        tokens = 0
        for k in range(cfg.grad_accum):
            shard = distributed.shard(order.indices(step * cfg.grad_accum + k), rank, world_size)
            batch = collate([examples[i] for i in shard])
            batch = {key: v.to(device) for key, v in batch.items()}
            # ranks exchange gradients once per optimizer step, after its last micro-batch
            no_sync = acc.no_sync(wrapped) if acc and k < cfg.grad_accum - 1 else contextlib.nullcontext()
            with no_sync:
                loss, metrics, n_tok = loss_fn(wrapped, batch)
                backward(loss / cfg.grad_accum)
            tokens += n_tok
            for key, v in {"loss": loss.item(), **metrics}.items():
                sums[key] = sums.get(key, 0.0) + v / cfg.grad_accum
        if acc:
            norm = acc.clip_grad_norm_(params, cfg.max_grad_norm)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
            sums, tokens = _mean_over_ranks(sums, tokens, acc.device, world_size)
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        tokens_total, time_total = tokens_total + tokens, time_total + dt
        last = {**sums, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens / dt, "epoch": step / max(1, steps)}
        done = step + 1
        if rank == 0 and (done % cfg.log_every == 0 or done == steps):
            tracker.log(last, step=done)
        bar.set_postfix(loss=f"{sums['loss']:.4f}", lr=f"{lr:.2e}")
        bar.update(1)
        if store and ((cfg.save_every and done % cfg.save_every == 0) or done == steps):
            _save_checkpoint(store, done, model, opt, sched, done * cfg.grad_accum, tracker.history, fsdp)
        if on_step:
            on_step(done)
    bar.close()
    tps = tokens_total / time_total if time_total else 0.0
    if not last and tracker.history:  # resumed from the final checkpoint: nothing left to run
        last = {k: v for k, v in tracker.history[-1].items() if k != "step"}
    state_dict = None
    if fsdp:  # collective: every rank sends its shards
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state_dict = get_model_state_dict(model, options=_fsdp_state_options()) or None
    return LoopResult(steps=steps, resumed_from=resumed, metrics=last, history=tracker.history, tokens_per_s=tps,
                      state_dict=state_dict)


def _mean_over_ranks(sums: dict[str, float], tokens: int, device: torch.device,
                     world_size: int) -> tuple[dict[str, float], int]:
    """Step metrics averaged over ranks (every rank has the same keys); tokens summed."""
    values = torch.tensor([*sums.values(), float(tokens)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values)
    *means, total = (values / world_size).tolist()
    return dict(zip(sums, means, strict=True)), round(total * world_size)
