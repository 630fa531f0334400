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
from pathlib import Path
from typing import Any

import torch

from kubealign import loop, models
from kubealign.config import RewardConfig
from kubealign.data.chat import Messages, render_ids, tokenize_prompt
from kubealign.data.collate import collate_preference
from kubealign.losses import bradley_terry_loss
from kubealign.rollout import last_index, position_ids
from kubealign.stages import common
from kubealign.stages.dpo import tokenize_pairs

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def load_reward_model(model_dir: str | Path, dtype: torch.dtype, device: torch.device,
                      pad_token_id: int | None = None) -> torch.nn.Module:
    """A sequence classifier with one output; a causal LM folder gets a fresh (zero) `score` head."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is expected from an SFT model
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=1, dtype=dtype)
    except (OSError, ValueError) as err:
        raise models.ModelError(f"{model_dir}: cannot load as a reward model ({err})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if not any("SequenceClassification" in a for a in (model.config.architectures or [])):
        # A fresh head starts at zero, so every reward starts at 0 and the first loss is ln 2.
        with torch.no_grad():
            model.score.weight.zero_()
    return model.to(device)


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


def sequence_rewards(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scalar reward of each sequence, (B, T) -> (B,) float32, read at its last valid token.

    Runs the trunk and applies the head to that one position only (a PEFT model's adapters and
    trained head copy are used).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trunk = getattr(base, base.base_model_prefix)
    hidden = trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                   use_cache=False).last_hidden_state
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    last = hidden[rows, last_index(attention_mask)]
    return base.score(last).squeeze(-1).float()


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


@torch.no_grad()
def score_pairs(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the chosen and rejected response of every pair, (N,) each."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate_preference(examples[i : i + batch_size], pad_id).items()}
        r = sequence_rewards(model, batch["input_ids"], batch["attention_mask"]).cpu()
        chosen.append(r[: r.shape[0] // 2])
        rejected.append(r[r.shape[0] // 2 :])
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def scored_ids(tokenizer: Any, prompt: Messages, response: str, max_length: int) -> list[int]:
    """Prompt + response rendered as in training (chat template, end-of-turn tokens included).

    The response is cut, as `tokenize_preference` cuts it, so the prompt and response fit max_length.
    """
    prompt_ids = tokenize_prompt(tokenizer, prompt)
    full = render_ids(tokenizer, [*prompt, {"role": "assistant", "content": response}])
    return prompt_ids + full[len(prompt_ids):][: max(1, max_length - len(prompt_ids))]


@torch.no_grad()
def score_texts(model: torch.nn.Module, tokenizer: Any, prompts: list[Messages], responses: list[str],
                batch_size: int, device: torch.device, max_length: int = 512) -> torch.Tensor:
    """Reward of each (prompt, response text) pair, (N,) float32 on the CPU."""
    model.eval()
    pad = tokenizer.pad_token_id
    out = []
    for i in range(0, len(prompts), batch_size):
        rows = [scored_ids(tokenizer, p, r, max_length)
                for p, r in zip(prompts[i : i + batch_size], responses[i : i + batch_size], strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        out.append(sequence_rewards(model, ids, mask).cpu())
    return torch.cat(out) if out else torch.zeros(0)


# ---------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------


def run(cfg: RewardConfig, sft_model: str, train_uri: str, out_dir: str, eval_uri: str | None = None,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    stage = common.start("reward", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    base_dir = models.resolve_model_dir(sft_model)
    tokenizer = models.load_tokenizer(base_dir)
    train = tokenize_pairs(tokenizer, common.read_jsonl(train_uri), cfg.max_length)
    held_out = tokenize_pairs(tokenizer, common.read_jsonl(eval_uri), cfg.max_length) if eval_uri else []

    model = load_reward_model(base_dir, stage.dtype, stage.device, pad_token_id=tokenizer.pad_token_id)
    if cfg.lora.enabled:
        model = add_reward_lora(model, cfg)
    print(f"reward: {len(train)} train / {len(held_out)} eval pairs; {models.describe(model)}", flush=True)

    run_id = loop.fingerprint("reward", cfg.model_dump(exclude={"tracking", "checkpoint_uri", "log_every"}),
                              loop.file_digest(train_uri), str(base_dir), loop.file_digest(base_dir / "config.json"))
    result = loop.train(model, train, partial(collate_preference, pad_id=tokenizer.pad_token_id),
                        partial(reward_step, cfg=cfg), cfg, stage.tracker, run_id, desc="reward", on_step=on_step)

    summary = {"train/loss": result.metrics.get("loss", float("nan")), "train/accuracy":
               result.metrics.get("accuracy", float("nan")), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s}
    if held_out:
        chosen, rejected = score_pairs(model, held_out, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        summary.update({f"eval/{k}": v for k, v in reward_metrics(chosen, rejected).items()})
        summary["eval/loss"] = bradley_terry_loss(chosen, rejected).item()
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
