"""Reward model: a scalar head on the SFT model, trained on preference pairs with the Bradley-Terry loss.

The model is the SFT model as a sequence classifier with one output (`score`, a Linear(hidden, 1)),
trained with a LoRA adapter (the head itself fully trainable and saved) or in full. Its reward for
a conversation is the head's output at the last real token (the end-of-turn tokens of the response).
That position is found from the attention mask, not from pad ids: in many chat models pad == EOS,
and transformers' own pooling would then read the token before the response's end-of-turn.

setup (model, head, tokenised pairs) -> train (shared loop) -> evaluate held-out pairs
-> save (adapter merged into a plain Hugging Face folder, so PPO and evaluate load it without peft).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import torch

from kubealign import loop, models
from kubealign.config import RewardConfig
from kubealign.constitution import accuracy_by_label, balance_by_label
from kubealign.data.collate import collate_preference
from kubealign.losses import bradley_terry_loss
from kubealign.scoring import load_reward_model, pair_rewards, sequence_rewards, tokenize_pairs
from kubealign.stages import common

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def add_reward_lora(model: torch.nn.Module, cfg: RewardConfig) -> torch.nn.Module:
    """LoRA on the trunk; the `score` head is trained in full and saved with the adapter."""
    from peft import LoraConfig, get_peft_model

    lora = cfg.lora
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in present]
    if missing:
        raise models.ModelError(f"lora.target_modules: {missing} not found in the reward model")
    return get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
        task_type="SEQ_CLS", modules_to_save=["score"],
    ))


def reward_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Pairwise accuracy (ties count as wrong), mean margin, and reward statistics over both halves."""
    both = torch.cat([chosen, rejected]).detach().float()
    return {
        "accuracy": (chosen > rejected).float().mean().item(),
        "margin": (chosen - rejected).detach().float().mean().item(),
        "rewards/chosen": chosen.detach().float().mean().item(),
        "rewards/rejected": rejected.detach().float().mean().item(),
        "reward/mean": both.mean().item(),
        "reward/min": both.min().item(),
        "reward/max": both.max().item(),
    }


def reward_step(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                cfg: RewardConfig) -> tuple[torch.Tensor, dict[str, float], int]:
    """Loss over a (2B, T) preference batch: rows [:B] chosen, [B:] rejected."""
    rewards = sequence_rewards(model, batch["input_ids"], batch["attention_mask"])
    half = rewards.shape[0] // 2
    chosen, rejected = rewards[:half], rewards[half:]
    loss = bradley_terry_loss(chosen, rejected, center_coef=cfg.center_coef)
    return loss, reward_metrics(chosen, rejected), int(batch["attention_mask"].sum())


# ---------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------


def run(cfg: RewardConfig, sft_model: str, train_uri: str, out_dir: str, eval_uri: str | None = None,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    stage = common.start("reward", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    base_dir = models.resolve_model_dir(sft_model)
    tokenizer = models.load_tokenizer(base_dir)
    records = common.read_jsonl(train_uri)
    train = tokenize_pairs(tokenizer, balance_by_label(records) if cfg.balance_labels else records, cfg.max_length)
    held_records = common.read_jsonl(eval_uri) if eval_uri else []
    held_out = tokenize_pairs(tokenizer, held_records, cfg.max_length)

    model = load_reward_model(base_dir, stage.dtype, stage.device, pad_token_id=tokenizer.pad_token_id)
    if cfg.lora.enabled:
        model = add_reward_lora(model, cfg)
    balanced = f" ({len(train)} with each label's pairs balanced)" if len(train) != len(records) else ""
    print(f"reward: {len(records)} train{balanced} / {len(held_out)} eval pairs; {models.describe(model)}", flush=True)

    run_id = loop.run_key("reward", cfg, data=[train_uri], model_dirs=[base_dir])
    result = loop.train(model, train, partial(collate_preference, pad_id=tokenizer.pad_token_id),
                        partial(reward_step, cfg=cfg), cfg, stage.tracker, run_id, desc="reward", on_step=on_step)

    summary = {"train/pairs": float(len(records)), "train/pairs_balanced": float(len(train)),
               "train/loss": result.metrics.get("loss", float("nan")), "train/accuracy":
               result.metrics.get("accuracy", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        chosen, rejected = pair_rewards(model, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        summary.update({f"eval/{k}": v for k, v in reward_metrics(chosen, rejected).items()})
        summary["eval/loss"] = bradley_terry_loss(chosen, rejected).item()
        # pairs from the preferences stage carry their kind (harmful: refusal preferred; benign: serving)
        summary.update(accuracy_by_label([r.get("label") for r in held_records], chosen.tolist(), rejected.tolist()))
        stage.tracker.log({k: v for k, v in summary.items() if k.startswith("eval/")}, step=result.steps)
    if cfg.lora.enabled:
        model = model.merge_and_unload()  # the head's trained copy replaces the original
    meta = {"stage": "reward", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id,
            "score": "last non-padding token (attention mask)"}
    with common.model_output(stage, out_dir, model, tokenizer, meta, summary, result.history) as tmp:
        (tmp / "eval_rewards.json").write_text(json.dumps(
            {"chosen": chosen.tolist(), "rejected": rejected.tolist()} if held_out else {}) + "\n")
    print(f"reward: held-out accuracy {summary.get('eval/accuracy', float('nan')):.3f}, "
          f"margin {summary.get('eval/margin', float('nan')):.3f}", flush=True)
    stage.tracker.finish()
    return summary
