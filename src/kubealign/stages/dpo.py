"""Direct Preference Optimisation (Rafailov et al. 2023) and its variants.

Policy = the SFT model + a fresh LoRA adapter; reference = the same weights with the adapter
switched off, so there is one copy of the base weights in memory. Chosen and rejected sequences
share one forward pass (rows [:B] chosen, [B:] rejected).

setup (model, adapter, tokenised pairs) -> train (shared loop) -> save (adapter + meta).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch

from kubealign import distributed, loop, models
from kubealign.config import DPOConfig
from kubealign.data.chat import tokenize_preference
from kubealign.data.collate import collate_preference
from kubealign.losses import dpo_loss, dpo_metrics
from kubealign.ops import sequence_logprobs
from kubealign.stages import common


def pair_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs of the chosen (B,) and rejected (B,) halves of a (2B, T) batch."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logps, _ = sequence_logprobs(logits.float(), batch["labels"])
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


@contextlib.contextmanager
def reference_of(model: torch.nn.Module, ref_model: torch.nn.Module | None) -> Iterator[torch.nn.Module]:
    """The reference policy: the adapter switched off, or a separate frozen copy for full fine-tunes."""
    if ref_model is not None:
        yield ref_model
        return
    model = distributed.unwrap(model)  # the switch lives on the PeftModel inside a DDP wrapper
    with model.disable_adapter():
        yield model


def dpo_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DPOConfig,
             ref_model: torch.nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float], int]:
    pol_c, pol_r = pair_logps(model, batch)
    with torch.no_grad(), reference_of(model, ref_model) as ref:
        ref_c, ref_r = pair_logps(ref, batch)
    losses, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta, loss_type=cfg.loss_type,
                                            label_smoothing=cfg.label_smoothing)
    return losses.mean(), dpo_metrics(chosen_r, rejected_r, pol_c, pol_r), int(batch["attention_mask"].sum())


@torch.no_grad()
def score_pairs(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of chosen and rejected responses for every pair, shape (N,) each."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate_preference(examples[i : i + batch_size], pad_id).items()}
        c, r = pair_logps(model, batch)
        chosen.append(c.cpu())
        rejected.append(r.cpu())
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def tokenize_pairs(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    return [tokenize_preference(tokenizer, r["prompt"], r["chosen"], r["rejected"], max_length) for r in records]


def run(cfg: DPOConfig, sft_model: str, train_uri: str, out_dir: str, eval_uri: str | None = None,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    relaunched = distributed.maybe_relaunch("dpo", {"cfg": cfg, "sft_model": sft_model, "train_uri": train_uri,
                                                    "out_dir": out_dir, "eval_uri": eval_uri, "on_step": on_step},
                                            distributed.num_processes(cfg.num_processes))
    if relaunched is not None:
        return relaunched
    stage = common.start("dpo", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    base_dir = models.resolve_model_dir(sft_model)
    tokenizer = models.load_tokenizer(base_dir)
    train = tokenize_pairs(tokenizer, common.read_jsonl(train_uri), cfg.max_length)
    held_out = tokenize_pairs(tokenizer, common.read_jsonl(eval_uri), cfg.max_length) if eval_uri else []

    model = models.load_causal_lm(base_dir, stage.dtype, stage.device)
    ref_model = None
    if cfg.lora.enabled:
        model = models.add_lora(model, cfg.lora)
    else:  # a full fine-tune moves every weight, so the reference needs its own frozen copy
        ref_model = models.load_causal_lm(base_dir, stage.dtype, stage.device).eval().requires_grad_(False)
    print(f"dpo: {len(train)} train / {len(held_out)} eval pairs; {models.describe(model)}", flush=True)

    run_id = loop.fingerprint("dpo", cfg.model_dump(exclude={"tracking", "checkpoint_uri", "log_every"}),
                              loop.file_digest(train_uri), str(base_dir), loop.file_digest(base_dir / "config.json"))
    step = partial(dpo_step, cfg=cfg, ref_model=ref_model)
    result = loop.train(model, train, partial(collate_preference, pad_id=tokenizer.pad_token_id), step, cfg,
                        stage.tracker, run_id, desc="dpo", on_step=on_step)

    summary = {"train/loss": result.metrics.get("loss", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        pol_c, pol_r = score_pairs(model, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        with reference_of(model, ref_model) as ref:
            ref_c, ref_r = score_pairs(ref, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        _, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta)
        summary.update({f"eval/{k}": v for k, v in dpo_metrics(chosen_r, rejected_r, pol_c, pol_r).items()})
    meta = {"stage": "dpo", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id}
    return common.save_trained(stage, out_dir, model, tokenizer, meta, summary, result.history, result.state_dict)
