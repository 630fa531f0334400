"""The one training loop every stage shares: order, accumulation, clipping, schedule, checkpoints.

A supervised stage hands `train` its examples, a collate function and a loss function; the loop
owns the rest. Data order is a pure function of (seed, epoch), so the data position is the step
number: resuming at step s replays nothing and skips nothing. Checkpoints hold the trainable weights
(the LoRA adapter, or all weights for a full fine-tune), optimizer, scheduler, RNG states and position.

`run_steps` is the part every trained stage shares, PPO included: resume, the step loop, logging,
progress, checkpoints. PPO hands it a rollout-and-update step and its value head as extra state.
Checkpoints live under a key of the run's content (`run_key`), never of its paths.

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


def visited(cfg: TrainSettings, n_examples: int, world_size: int = 1) -> list[int]:
    """Sorted indices of the examples `train` draws in a whole run of `cfg` (max_steps may stop it before an
    epoch ends): what a pass over the training data before the loop needs to score, and no more."""
    order = DataOrder(n_examples, cfg.batch_size * world_size, cfg.seed)
    micro = total_steps(cfg, n_examples, world_size) * cfg.grad_accum
    seen: set[int] = set()
    for m in range(micro):
        seen.update(order.indices(m))
        if len(seen) == n_examples:
            break
    return sorted(seen)


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


def data_digest(uri: str) -> str:
    """sha256 of the bytes at `uri` (any fsspec location): the data's identity, not its path."""
    fs, path = storage.fs_and_path(uri)
    h = hashlib.sha256()
    try:
        with fs.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise storage.StorageError(f"{uri}: no such file") from None
    return h.hexdigest()


# Settings that change neither the trained weights nor the data order: a rerun that changes only them resumes.
UNKEYED = frozenset({"tracking", "checkpoint_uri", "log_every", "save_every", "sample_every",
                     "gradient_checkpointing"})


def run_key(stage: str, settings: Any, data: Sequence[str | None] = (), model_dirs: Sequence[str | Path] = (),
            extra: Sequence[Any] = ()) -> str:
    """The key a stage's checkpoints live under: a digest of what decides its result, never of a path.

    `data`: URIs of the records trained on (their content is hashed); `model_dirs`: local folders of
    the models it starts from (config, weights and tokenizer hashed, `models.content_digest`);
    `extra`: anything else that decides the result (a base model's URI, a taxonomy). The same inputs
    under a new run folder give the same key, so a rerun of a pipeline resumes where the last one
    stopped; any change of content gives a new key, so stale state is never resumed.
    """
    from kubealign import models

    fields = set(type(settings).model_fields) & UNKEYED
    return fingerprint(stage, settings.model_dump(exclude=fields), [data_digest(u) for u in data if u],
                       [models.content_digest(d) for d in model_dirs], list(extra))


@dataclass
class LoopResult:
    steps: int
    resumed_from: int | None
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    tokens_per_s: float = 0.0
    # FSDP only, rank 0: the trained weights gathered from their shards (CPU), for saving
    state_dict: dict[str, torch.Tensor] | None = None


@dataclass
class TrainState:
    """What a checkpoint saves and a resume restores, besides the RNG states and metric history.

    `model`'s trainable parameters (a LoRA adapter, or every weight of a full fine-tune), the optimizer
    and scheduler, and `modules`: further trained networks saved whole (PPO's value head).
    """

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)
    fsdp: bool = False


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


def _fsdp_state_options() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # whole tensors on rank 0's CPU (the other ranks get {}); frozen base weights are not state
    return StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)


def _save_checkpoint(store: storage.CheckpointStore, step: int, state: TrainState, position: int,
                     history: list[dict[str, float]]) -> None:
    """Rank 0 writes; under FSDP every rank must call this (gathering the shards is collective)."""
    if state.fsdp:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        trainable, optimizer = get_state_dict(state.model, getattr(state.opt, "optimizer", state.opt),
                                              options=_fsdp_state_options())
    else:
        trainable = {n: p.detach().cpu() for n, p in state.model.named_parameters() if p.requires_grad}
        optimizer = state.opt.state_dict()
    if not distributed.is_main():
        return
    modules = {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in state.modules.items()}
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(
            {"trainable": trainable, "modules": modules, "optimizer": optimizer,
             "scheduler": state.sched.state_dict(), "rng": _rng_state(), "step": step, "position": position,
             "history": history},
            Path(tmp) / "state.pt",
        )
        store.save(step, tmp, meta={"position": position})


def _load_checkpoint(store: storage.CheckpointStore, step: int, state: TrainState) -> list[dict[str, float]]:
    """Restore the state saved at `step`; returns the metric history up to that step."""
    with tempfile.TemporaryDirectory() as tmp:
        store.load(step, tmp)
        saved = torch.load(Path(tmp) / "state.pt", map_location="cpu", weights_only=False)
    if state.fsdp:  # every rank holds the whole state; set_state_dict keeps each rank's shard of it
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(state.model, getattr(state.opt, "optimizer", state.opt), model_state_dict=saved["trainable"],
                       optim_state_dict=saved["optimizer"],
                       options=StateDictOptions(full_state_dict=True, strict=False))
    else:
        params = dict(state.model.named_parameters())
        with torch.no_grad():
            for name, value in saved["trainable"].items():
                params[name].copy_(value)
        state.opt.load_state_dict(saved["optimizer"])
    for name, module in state.modules.items():
        module.load_state_dict(saved["modules"][name])
    state.sched.load_state_dict(saved["scheduler"])
    _set_rng_state(saved["rng"])
    return list(saved.get("history", []))


# step index (0-based) -> (metrics of that step, tokens it processed or None when tokens/s means nothing)
StepFn = Callable[[int], tuple[dict[str, float], int | None]]


@dataclass
class Steps:
    """How `run_steps` drives a stage: how many steps, where checkpoints go, how to show progress."""

    total: int
    run_id: str
    desc: str
    position: Callable[[int], int]  # completed steps -> data position (micro-batches, prompts) for the record
    postfix: Callable[[dict[str, float]], dict[str, str]]  # step metrics -> progress-bar fields
    world_size: int = 1


def run_steps(step_fn: StepFn, state: TrainState, cfg: TrainSettings, tracker: Tracker, plan: Steps,
              on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Resume from the run's latest checkpoint, run the remaining steps, log, save, report progress.

    Every trained stage runs here: `train` (supervised stages) and PPO give their own `step_fn`.
    Checkpoints live at `cfg.checkpoint_uri/<run_id>` (one folder per world size: the data position
    depends on the global batch). `on_step(step)` runs after each completed step and its checkpoint.
    """
    rank = distributed.world()[0]
    ckpt_run = plan.run_id if plan.world_size == 1 else f"{plan.run_id}-ws{plan.world_size}"
    store = storage.CheckpointStore(storage.join(cfg.checkpoint_uri, ckpt_run)) if cfg.checkpoint_uri else None
    start, resumed = 0, None
    if store:
        resumed, history = store.load_latest(lambda step: _load_checkpoint(store, step, state))
        if resumed is not None:
            # the curves in reports cover the whole run, not just the part after the restart
            tracker.history[:0] = history
            start = resumed
            if rank == 0:
                print(f"{plan.desc}: resuming from step {resumed} of {plan.total} ({store.step_uri(resumed)})",
                      flush=True)

    tokens_total, time_total = 0, 0.0
    last: dict[str, float] = {}
    bar = tqdm(total=plan.total, initial=start, desc=plan.desc, unit="step", dynamic_ncols=True, mininterval=2.0,
               disable=rank != 0)
    for step in range(start, plan.total):
        t0 = time.perf_counter()
        metrics, tokens = step_fn(step)
        dt = time.perf_counter() - t0
        if tokens is not None:
            tokens_total, time_total = tokens_total + tokens, time_total + dt
            metrics["tokens_per_s"] = tokens / dt
        last, done = metrics, step + 1
        if rank == 0 and (done % cfg.log_every == 0 or done == plan.total):
            tracker.log(last, step=done)
        bar.set_postfix(**plan.postfix(last))
        bar.update(1)
        if store and ((cfg.save_every and done % cfg.save_every == 0) or done == plan.total):
            _save_checkpoint(store, done, state, plan.position(done), tracker.history)
        if on_step:
            on_step(done)
    bar.close()
    if not last and tracker.history:  # resumed from the final checkpoint: nothing left to run
        last = {k: v for k, v in tracker.history[-1].items() if k != "step"}
    return LoopResult(steps=plan.total, resumed_from=resumed, metrics=last, history=tracker.history,
                      tokens_per_s=tokens_total / time_total if time_total else 0.0)


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

    backward = acc.backward if acc else torch.Tensor.backward

    def one_step(step: int) -> tuple[dict[str, float], int]:
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
        return {**sums, "lr": lr, "grad_norm": grad_norm, "epoch": step / max(1, steps)}, tokens

    model.train()
    plan = Steps(steps, run_id, desc, position=lambda done: done * cfg.grad_accum,
                 postfix=lambda m: {"loss": f"{m['loss']:.4f}", "lr": f"{m['lr']:.2e}"}, world_size=world_size)
    result = run_steps(one_step, TrainState(model, opt, sched, fsdp=fsdp), cfg, tracker, plan, on_step)
    if fsdp:  # collective: every rank sends its shards
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        result.state_dict = get_model_state_dict(model, options=_fsdp_state_options()) or None
    return result


def _mean_over_ranks(sums: dict[str, float], tokens: int, device: torch.device,
                     world_size: int) -> tuple[dict[str, float], int]:
    """Step metrics averaged over ranks (every rank has the same keys); tokens summed."""
    values = torch.tensor([*sums.values(), float(tokens)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values)
    *means, total = (values / world_size).tolist()
    return dict(zip(sums, means, strict=True)), round(total * world_size)
