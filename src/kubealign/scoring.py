"""Scoring responses: policy log-probs of preference pairs, reward-model scores, the reference policy.

DPO, the reward model, PPO and evaluation all score responses; they share these functions instead
of importing one another. One name per meaning:
- `batch_pair_logprobs` / `pair_logprobs`: summed response log-probs under a causal LM, for one
  (2B, T) preference batch or for every pair of a tokenised set; `cached_pair_logprobs`: the same
  numbers without gradients, each prompt read once (evaluation);
- `sequence_rewards` / `pair_rewards` / `score_texts`: a reward model's scalar score, for a batch of
  sequences, for every pair of a tokenised set, or for (prompt, response text) pairs;
- `reference_of`: the frozen reference policy next to a LoRA-trained one.

A preference batch holds the chosen sequences in rows [:B] and the rejected ones in rows [B:]
(`kubealign.data.collate.collate_preference`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from kubealign import distributed, lm, models
from kubealign.data.chat import Messages, render_ids, tokenize_preference, tokenize_prompt
from kubealign.data.collate import collate_preference
from kubealign.generate import left_padded, length_batches, open_cache, run_prefix, shared_prefix
from kubealign.rollout import last_index, position_ids

# ---------------------------------------------------------------------------
# Preference pairs
# ---------------------------------------------------------------------------


def tokenize_pairs(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Preference records ({prompt, chosen, rejected}) tokenised for `collate_preference`."""
    return [tokenize_preference(tokenizer, r["prompt"], r["chosen"], r["rejected"], max_length) for r in records]


def batch_pair_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                        chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs of the chosen (B,) and rejected (B,) halves of a 2B-sequence batch.

    The batch is padded (2B, T) or packed (`collate_preference(padding_free=True)`, the prompt shared or
    not); only response
    positions reach the output projection, `chunk` of them at a time (`kubealign.lm`).
    """
    logps, _ = lm.sequence_logprobs(model, batch, lm.n_sequences(batch), chunk)
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


@torch.no_grad()
def _over_pairs(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                device: torch.device,
                score: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]],
                padding_free: bool = False, capacity: int | None = None, share_prompt: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """`score` of every pair in batches, in eval mode (restored after); (N,) chosen and (N,) rejected.

    Pairs are batched by length (`length_batches`), so a padded batch pads to its own pairs' length, not
    to the longest pair nearby in the caller's order; the scores come back in the caller's order.
    """
    was_training = model.training
    model.eval()
    chosen, rejected = torch.zeros(len(examples)), torch.zeros(len(examples))
    lengths = [len(e["prompt_ids"]) + max(len(e["chosen_ids"]), len(e["rejected_ids"])) for e in examples]
    for rows in length_batches(lengths, batch_size):
        batch = collate_preference([examples[i] for i in rows], pad_id, padding_free, capacity, share_prompt)
        c, r = score({k: v.to(device) for k, v in batch.items()})
        chosen[rows], rejected[rows] = c.float().cpu(), r.float().cpu()
    model.train(was_training)
    return chosen, rejected


def pair_logprobs(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                  device: torch.device, padding_free: bool = False, capacity: int | None = None,
                  chunk: int = 1024, share_prompt: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of the chosen and the rejected response of every pair, shape (N,) each."""
    return _over_pairs(model, examples, pad_id, batch_size, device, lambda b: batch_pair_logprobs(model, b, chunk),
                       padding_free, capacity, share_prompt)


@torch.no_grad()
def cached_pair_logprobs(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                         device: torch.device, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """`pair_logprobs` for scoring only: each prompt runs once and both responses continue from its KV cache.

    `pair_logprobs` runs the prompt twice, once before each response; in evaluation the prompts are most of
    the tokens (the demo's 91 win-rate pairs: 6,104 prompt tokens a side, 5,991 response tokens in all), so
    reading each once, and the prompts' shared prefix (the chat template's system prompt) once in all,
    reads about half the tokens. A batch's prompt rests are left-padded after the shared prefix, the
    responses right-padded after them; the first response token is scored from the prompt's last
    position. Models whose trunk and head cannot be reached (`kubealign.lm`) use `pair_logprobs`.
    """
    parts = lm.trunk_and_head(model)
    if parts is None or not examples:
        return pair_logprobs(model, examples, pad_id, batch_size, device, chunk=chunk)
    trunk, head = parts
    was_training = model.training
    model.eval()
    prompts = [list(e["prompt_ids"]) for e in examples]
    n = shared_prefix(prompts)
    prefix = (run_prefix(model, prompts[0][:n], device), n) if n else None
    out = torch.zeros(2, len(examples))
    lengths = [len(p) - n + max(len(e["chosen_ids"]), len(e["rejected_ids"])) for p, e in zip(prompts, examples,
                                                                                              strict=True)]
    for rows in length_batches(lengths, batch_size):
        ids, rest_mask = left_padded([prompts[i][n:] for i in rows], pad_id, device)
        cache, mask, positions = open_cache(model, rest_mask, prefix)
        last = trunk(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                     use_cache=True).last_hidden_state[:, -1]
        # rows 2k and 2k + 1: the chosen and the rejected response to prompt k
        cache.batch_repeat_interleave(2)
        responses = [list(examples[i][key]) for i in rows for key in ("chosen_ids", "rejected_ids")]
        r_width = max(1, max(len(r) for r in responses))
        r_ids = torch.tensor([r + [pad_id] * (r_width - len(r)) for r in responses], device=device)
        r_valid = torch.tensor([[1] * len(r) + [0] * (r_width - len(r)) for r in responses], device=device)
        r_mask = torch.cat([mask.repeat_interleave(2, dim=0), r_valid], dim=-1)
        r_pos = positions[:, -1:].repeat_interleave(2, dim=0) + 1 + torch.arange(r_width, device=device)
        hidden = trunk(input_ids=r_ids, attention_mask=r_mask, position_ids=r_pos, past_key_values=cache,
                       use_cache=True).last_hidden_state
        # response token j is predicted by the hidden state before it: the prompt's last one for j = 0
        before = torch.cat([last.repeat_interleave(2, dim=0)[:, None], hidden[:, :-1]], dim=1)
        scored = r_valid.bool()
        tok = lm.token_logprobs(before[scored], head, r_ids[scored], chunk)
        seq = torch.arange(len(responses), device=device)[:, None].expand_as(scored)[scored]
        sums = torch.zeros(len(responses), device=device).index_add(0, seq, tok).float().cpu()
        out[0, rows], out[1, rows] = sums[0::2], sums[1::2]
    model.train(was_training)
    return out[0], out[1]


def pair_rewards(model: torch.nn.Module, examples: list[dict[str, Any]], pad_id: int, batch_size: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward-model scores of the chosen and the rejected response of every pair, (N,) each."""
    def score(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        r = sequence_rewards(model, batch["input_ids"], batch["attention_mask"])
        return r[: r.shape[0] // 2], r[r.shape[0] // 2 :]

    return _over_pairs(model, examples, pad_id, batch_size, device, score)


@contextlib.contextmanager
def reference_of(model: torch.nn.Module, ref_model: torch.nn.Module | None) -> Iterator[torch.nn.Module]:
    """The reference policy: the adapter switched off, or a separate frozen copy for full fine-tunes."""
    if ref_model is not None:
        yield ref_model
        return
    model = distributed.unwrap(model)  # the switch lives on the PeftModel inside a DDP wrapper
    with model.disable_adapter():
        yield model


# ---------------------------------------------------------------------------
# Reward model
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


def sequence_rewards(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scalar reward of each sequence, (B, T) -> (B,) float32, read at its last valid token.

    Runs the trunk and applies the head to that one position only (a PEFT model's adapters and
    trained head copy are used). The position comes from the attention mask, not from pad ids: in
    many chat models pad == EOS, and transformers' own pooling would read the wrong token.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trunk = getattr(base, base.base_model_prefix)
    hidden = trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                   use_cache=False).last_hidden_state
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    last = hidden[rows, last_index(attention_mask)]
    return base.score(last).squeeze(-1).float()


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
