"""Rollouts for PPO: sample responses with the KV cache, then score their tokens with one forward pass.

Layout of a rollout batch (B prompts, P = longest templated prompt, R = longest response):

    query     (B, P)  prompt ids, LEFT padded (decoder-only generation needs the prompts to end together)
    response  (B, R)  sampled ids, RIGHT padded: valid through the first EOS, pad after it

`torch.cat([query, response], 1)` is the sequence the policy saw, and `logits[:, P - 1 : P + R - 1]`
predict the response tokens. Position ids come from the attention mask, as `generate` computes them,
so a plain forward pass gives the same log-probs as sampling did (ratio 1 at the first PPO epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kubealign.data.chat import Messages, tokenize_prompt
from kubealign.ops import entropy_from_logits, logprobs_from_logits

# ---------------------------------------------------------------------------
# Pure mask helpers
# ---------------------------------------------------------------------------


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token counted over valid tokens only: (B, T) mask -> (B, T) long.

    Left padding shifts the real tokens right; counting from the first valid token keeps the
    rotary positions equal to those of an unpadded sequence. Padding positions get 0.
    """
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last valid position of each row, (B, T) mask -> (B,) long; works for left or right padding.

    A row with no valid position gives 0.
    """
    positions = torch.arange(mask.shape[-1], device=mask.device)
    return (positions * mask.long()).argmax(-1)


def first_eos_mask(tokens: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which sampled tokens belong to the response: everything up to and including the first EOS.

    Args:
        tokens: (B, R) sampled ids; `generate` keeps writing pad (often == EOS) after a row has ended.
        eos_id: end-of-sequence id.

    Returns:
        (mask (B, R) bool, has_eos (B,) bool). A row with no EOS is valid throughout (it was cut off
        at the length limit).
    """
    is_eos = tokens == eos_id
    eos_before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS tokens strictly before t
    return eos_before == 0, is_eos.any(-1)


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


@dataclass
class Rollout:
    prompts: list[Messages]
    query: torch.Tensor  # (B, P) left padded
    query_mask: torch.Tensor  # (B, P)
    response: torch.Tensor  # (B, R) right padded with pad after the first EOS
    response_mask: torch.Tensor  # (B, R) 1 through the first EOS
    has_eos: torch.Tensor  # (B,) bool
    texts: list[str]  # decoded responses, special tokens dropped


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask, each (B, longest row)."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


@torch.no_grad()
def sample(model: torch.nn.Module, tokenizer: Any, prompts: list[Messages], max_new_tokens: int,
           temperature: float, device: torch.device) -> Rollout:
    """One response per prompt: pure sampling (top_k 0, top_p 1) at `temperature`, KV cache on."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    query, query_mask = left_pad([tokenize_prompt(tokenizer, p) for p in prompts], pad, device)
    out = model.generate(input_ids=query, attention_mask=query_mask, max_new_tokens=max_new_tokens,
                         do_sample=True, temperature=temperature, top_k=0, top_p=1.0, use_cache=True,
                         eos_token_id=eos, pad_token_id=pad)
    response = out[:, query.shape[1]:]
    mask, has_eos = first_eos_mask(response, eos)
    response = response.masked_fill(~mask, pad)
    texts = [t.strip() for t in tokenizer.batch_decode(response, skip_special_tokens=True)]
    return Rollout(list(prompts), query, query_mask, response, mask.long(), has_eos, texts)


# ---------------------------------------------------------------------------
# Scoring the sampled tokens
# ---------------------------------------------------------------------------


def response_forward(model: torch.nn.Module, query: torch.Tensor, query_mask: torch.Tensor,
                     response: torch.Tensor, response_mask: torch.Tensor, temperature: float = 1.0,
                     value_head: torch.nn.Module | None = None, with_entropy: bool = False,
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Log-probs of the response tokens, and optionally values and entropies, from one forward pass.

    Args:
        model: causal LM (a PEFT model works; its active adapter is used).
        query, query_mask: (B, P) left-padded prompts.
        response, response_mask: (B, R) right-padded responses.
        temperature: the sampling temperature; logits are divided by it, as sampling did.
        value_head: maps the trunk's last hidden state (B, R, H) to values (B, R, 1); None = no values.
        with_entropy: also return the per-token entropy of the policy (B, R), detached.

    Returns:
        (logprobs (B, R) float32, values (B, R) float32 or None, entropy (B, R) or None). The value at
        response step t is V(prompt, response[:t]), read at the position that predicts token t.
    """
    input_ids = torch.cat([query, response], dim=1)
    mask = torch.cat([query_mask, response_mask.to(query_mask.dtype)], dim=1)
    n = response.shape[1]
    # logits_to_keep = n + 1 keeps the positions P - 1 .. P + R - 1; the last predicts past the end.
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask), use_cache=False,
                output_hidden_states=value_head is not None, logits_to_keep=n + 1)
    logits = out.logits[:, :-1].float() / temperature
    logprobs = logprobs_from_logits(logits, response)
    values = None
    if value_head is not None:
        hidden = out.hidden_states[-1][:, -n - 1 : -1]
        values = value_head(hidden.float()).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits.detach())
    return logprobs, values, entropy


__all__ = ["Rollout", "first_eos_mask", "last_index", "left_pad", "position_ids", "response_forward", "sample"]
