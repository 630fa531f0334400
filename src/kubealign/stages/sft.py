"""Supervised fine-tuning: next-token loss on the assistant turns only.

setup (model, adapter, tokenised data) -> train (shared loop) -> save (adapter + tokenizer + meta).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from kubealign import distributed, lm, loop, models
from kubealign.config import SFTConfig
from kubealign.data.chat import tokenize_sft
from kubealign.data.collate import collate_sft
from kubealign.stages import common


def sft_step(model: torch.nn.Module, batch: dict[str, torch.Tensor],
             chunk: int = 1024) -> tuple[torch.Tensor, dict[str, float], int]:
    """Token-mean NLL of the response tokens of a padded or packed batch (`kubealign.lm`)."""
    logps, _ = lm.scored_token_logprobs(model, batch, chunk)
    return -logps.mean(), {"response_tokens": float(logps.numel())}, lm.real_tokens(batch)


@torch.no_grad()
def eval_loss(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
              device: torch.device, padding_free: bool = False, capacity: int | None = None,
              chunk: int = 1024) -> float:
    """Token-weighted mean NLL over the response tokens of `examples`."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = collate_sft(examples[i : i + batch_size], pad_id, padding_free, capacity)
        batch = {k: v.to(device) for k, v in batch.items()}
        if int((batch["labels"][:, 1:] != -100).sum()):
            logps, _ = lm.scored_token_logprobs(model, batch, chunk)
            total -= logps.sum().item()
            count += logps.numel()
    model.train()
    return total / count if count else float("nan")


def run(cfg: SFTConfig, base_model: str, train_uri: str, out_dir: str, eval_uri: str | None = None,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    relaunched = distributed.maybe_relaunch("sft", {"cfg": cfg, "base_model": base_model, "train_uri": train_uri,
                                                    "out_dir": out_dir, "eval_uri": eval_uri, "on_step": on_step},
                                            distributed.num_processes(cfg.num_processes))
    if relaunched is not None:
        return relaunched
    stage = common.start("sft", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    base_dir = models.resolve_model_dir(base_model)
    tokenizer = models.load_tokenizer(base_dir)
    tokenize = partial(tokenize_sft, tokenizer, max_length=cfg.max_length)
    train = [tokenize(r["messages"]) for r in common.read_jsonl(train_uri)]
    held_out = [tokenize(r["messages"]) for r in common.read_jsonl(eval_uri)] if eval_uri else []

    model = models.load_causal_lm(base_dir, stage.dtype, stage.device)
    if cfg.lora.enabled:
        model = models.add_lora(model, cfg.lora)
    print(f"sft: {len(train)} train / {len(held_out)} eval examples; {models.describe(model)}", flush=True)

    # a base model is named by its URI (hashing a large model's weights on every start would cost minutes)
    run_id = loop.run_key("sft", cfg, data=[train_uri],
                          extra=[base_model, loop.data_digest(str(base_dir / "config.json"))])
    if cfg.gradient_checkpointing:
        lm.enable_gradient_checkpointing(model)
    capacity = cfg.pack_length or cfg.max_length
    collate = partial(collate_sft, pad_id=tokenizer.pad_token_id, padding_free=cfg.padding_free, capacity=capacity)
    result = loop.train(model, train, collate, partial(sft_step, chunk=cfg.logprob_chunk), cfg,
                        stage.tracker, run_id, desc="sft", on_step=on_step)

    summary = {"train/loss": result.metrics.get("loss", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        summary["eval/loss"] = eval_loss(model, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device,
                                         cfg.padding_free, capacity, cfg.logprob_chunk)
    meta = {"stage": "sft", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id}
    return common.save_trained(stage, out_dir, model, tokenizer, meta, summary, result.history, result.state_dict)
