"""Direct Preference Optimisation (Rafailov et al. 2023) and its variants.

Policy = the SFT model + a fresh LoRA adapter; reference = the same weights with the adapter
switched off, so there is one copy of the base weights in memory. Chosen and rejected sequences
share one forward pass (rows [:B] chosen, [B:] rejected).

setup (model, adapter, tokenised pairs) -> train (shared loop) -> save (adapter + meta).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from kubealign import distributed, lm, loop, models, storage
from kubealign.config import DPOConfig
from kubealign.data.collate import collate_preference
from kubealign.losses import dpo_loss, dpo_metrics
from kubealign.scoring import batch_pair_logprobs, pair_logprobs, reference_of, tokenize_pairs
from kubealign.stages import common


def dpo_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DPOConfig,
             ref_model: torch.nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float], int]:
    pol_c, pol_r = batch_pair_logprobs(model, batch, cfg.logprob_chunk)
    if "ref_logps" in batch:  # scored once before training (`reference_logps: precomputed`)
        ref_c, ref_r = batch["ref_logps"].chunk(2)
    else:
        with torch.no_grad(), reference_of(model, ref_model) as ref:
            ref_c, ref_r = batch_pair_logprobs(ref, batch, cfg.logprob_chunk)
    losses, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta, loss_type=cfg.loss_type,
                                            label_smoothing=cfg.label_smoothing)
    return losses.mean(), dpo_metrics(chosen_r, rejected_r, pol_c, pol_r), lm.real_tokens(batch)


def with_reference_logps(model: torch.nn.Module, ref_model: torch.nn.Module | None, examples: list[dict[str, Any]],
                         cfg: DPOConfig, pad_id: int, cache_uri: str | None,
                         needed: list[int] | None = None) -> list[dict[str, Any]]:
    """`examples`, each with its reference log-probs (`ref_chosen`, `ref_rejected`), scored once.

    The reference is frozen, so one no-grad pass replaces a reference forward in every step. Only the
    examples at `needed` (default: all) are scored, the others get NaN: training passes the indices
    `loop.visited` names, so a run that stops before an epoch ends (max_steps) scores no pair it never
    draws. The scores are kept at `cache_uri` (next to the run's checkpoints, under the same content key):
    a resumed run reads them instead of scoring again.
    """
    if not examples:
        return []
    needed = list(range(len(examples))) if needed is None else needed
    if cache_uri and storage.exists(cache_uri):
        saved = torch.load(io.BytesIO(storage.read_bytes(cache_uri)), map_location="cpu")
        chosen, rejected = saved["chosen"], saved["rejected"]
        print(f"dpo: reference log-probs of {len(chosen)} pairs read from {cache_uri}", flush=True)
    else:
        device = next(model.parameters()).device
        chosen, rejected = torch.full((len(examples),), float("nan")), torch.full((len(examples),), float("nan"))
        with reference_of(model, ref_model) as ref:
            chosen[needed], rejected[needed] = pair_logprobs(ref, [examples[i] for i in needed], pad_id, cfg.batch_size,
                                                             device, cfg.padding_free, _capacity(cfg), cfg.logprob_chunk,
                                                             _share_prompt(cfg, model))
        if cache_uri and distributed.is_main():
            buf = io.BytesIO()
            torch.save({"chosen": chosen, "rejected": rejected}, buf)
            storage.write_bytes(cache_uri, buf.getvalue())
    if len(chosen) != len(examples):
        raise RuntimeError(f"{cache_uri}: {len(chosen)} reference log-probs for {len(examples)} pairs")
    return [{**e, "ref_chosen": float(c), "ref_rejected": float(r)}
            for e, c, r in zip(examples, chosen.tolist(), rejected.tolist(), strict=True)]


def _capacity(cfg: DPOConfig) -> int:
    return cfg.pack_length or cfg.max_length


def _share_prompt(cfg: DPOConfig, model: torch.nn.Module) -> bool:
    """Packed pairs read their prompt once where the attention takes the 4-D mask that needs (SDPA)."""
    return cfg.padding_free and lm.supports_shared_prompt(model)


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

    # keyed on the SFT model's content: each pipeline run puts it in a new folder
    run_id = loop.run_key("dpo", cfg, data=[train_uri], model_dirs=[base_dir])
    if cfg.reference_logps == "precomputed":
        cache = storage.join(cfg.checkpoint_uri, run_id, "reference_logps.pt") if cfg.checkpoint_uri else None
        drawn = loop.visited(cfg, len(train), distributed.world()[1])
        if len(drawn) < len(train):
            print(f"dpo: reference log-probs of the {len(drawn)} of {len(train)} train pairs that {cfg.max_steps} "
                  "steps draw", flush=True)
        train = with_reference_logps(model, ref_model, train, cfg, tokenizer.pad_token_id, cache, drawn)
        held_out = with_reference_logps(model, ref_model, held_out, cfg, tokenizer.pad_token_id, None)
        ref_model = None  # a full fine-tune's frozen copy is no longer needed: its memory goes back
    if cfg.gradient_checkpointing:
        lm.enable_gradient_checkpointing(model)
    step = partial(dpo_step, cfg=cfg, ref_model=ref_model)
    collate = partial(collate_preference, pad_id=tokenizer.pad_token_id, padding_free=cfg.padding_free,
                      capacity=_capacity(cfg), share_prompt=_share_prompt(cfg, model))
    result = loop.train(model, train, collate, step, cfg, stage.tracker, run_id, desc="dpo", on_step=on_step)

    summary = {"train/loss": result.metrics.get("loss", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        score = partial(pair_logprobs, pad_id=tokenizer.pad_token_id, batch_size=cfg.batch_size,
                        device=stage.device, padding_free=cfg.padding_free, capacity=_capacity(cfg),
                        chunk=cfg.logprob_chunk, share_prompt=_share_prompt(cfg, model))
        pol_c, pol_r = score(model, held_out)
        if "ref_chosen" in held_out[0]:
            ref_c, ref_r = (torch.tensor([e[k] for e in held_out]) for k in ("ref_chosen", "ref_rejected"))
        else:
            with reference_of(model, ref_model) as ref:
                ref_c, ref_r = score(ref, held_out)
        _, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta)
        summary.update({f"eval/{k}": v for k, v in dpo_metrics(chosen_r, rejected_r, pol_c, pol_r).items()})
    meta = {"stage": "dpo", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id}
    return common.save_trained(stage, out_dir, model, tokenizer, meta, summary, result.history, result.state_dict)
