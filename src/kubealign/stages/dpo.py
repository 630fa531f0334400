"""Direct Preference Optimisation (Rafailov et al. 2023) and its variants.

Policy = the SFT model + a fresh LoRA adapter; reference = the same weights with the adapter
switched off, so there is one copy of the base weights in memory. Chosen and rejected sequences
share one forward pass (rows [:B] chosen, [B:] rejected).

setup (model, adapter, tokenised pairs) -> train (shared loop) -> save (adapter + meta).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from kubealign import distributed, loop, models
from kubealign.config import DPOConfig
from kubealign.data.collate import collate_preference
from kubealign.losses import dpo_loss, dpo_metrics
from kubealign.scoring import batch_pair_logprobs, pair_logprobs, reference_of, tokenize_pairs
from kubealign.stages import common


def dpo_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DPOConfig,
             ref_model: torch.nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float], int]:
    pol_c, pol_r = batch_pair_logprobs(model, batch)
    with torch.no_grad(), reference_of(model, ref_model) as ref:
        ref_c, ref_r = batch_pair_logprobs(ref, batch)
    losses, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta, loss_type=cfg.loss_type,
                                            label_smoothing=cfg.label_smoothing)
    return losses.mean(), dpo_metrics(chosen_r, rejected_r, pol_c, pol_r), int(batch["attention_mask"].sum())


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
    step = partial(dpo_step, cfg=cfg, ref_model=ref_model)
    result = loop.train(model, train, partial(collate_preference, pad_id=tokenizer.pad_token_id), step, cfg,
                        stage.tracker, run_id, desc="dpo", on_step=on_step)

    summary = {"train/loss": result.metrics.get("loss", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        pol_c, pol_r = pair_logprobs(model, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        with reference_of(model, ref_model) as ref:
            ref_c, ref_r = pair_logprobs(ref, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        _, chosen_r, rejected_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=cfg.beta)
        summary.update({f"eval/{k}": v for k, v in dpo_metrics(chosen_r, rejected_r, pol_c, pol_r).items()})
    meta = {"stage": "dpo", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id}
    return common.save_trained(stage, out_dir, model, tokenizer, meta, summary, result.history, result.state_dict)
