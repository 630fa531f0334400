"""Batched generation from chat prompts with the KV cache (left padding, as decoder-only models need).

Why it is fast enough for evaluation sets of hundreds of prompts on a CPU:
- prompts are tokenized once and sorted by length before batching, so a batch pads to a width close to
  its own prompts' (padding tokens cost a full forward each step); batches are wide (a decode step is a
  skinny matrix product per layer: more rows use the matrix units better) but capped in tokens, so long
  prompts go in fewer rows; the responses come back in the caller's order;
- `model.generate` reuses the KV cache, so each new token is one forward over one position;
- it stops at the end-of-turn token: every EOS id the tokenizer and the model's generation config name
  (chat models end a turn with a token other than the tokenizer's `eos_token`, e.g. `<|im_end|>`), and
  a batch ends as soon as all its rows have.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from kubealign.data.chat import tokenize_prompt

# A generation batch holds at most batch_size rows and batch_size * TOKENS_PER_ROW prompt + response slots,
# so short prompts go 64 at a time and long ones (a 300-token MT-Bench passage) in smaller batches: the KV
# cache a decode step copies and attends over grows with rows x length. 128 = a ~80-token chat prompt
# plus 48 new tokens, the evaluation sets' typical row.
TOKENS_PER_ROW = 128


def stop_ids(model: torch.nn.Module, tokenizer: Any) -> list[int]:
    """Every end-of-sequence id the tokenizer or the model's generation config names, tokenizer's first."""
    ids: list[int] = []
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for eos in (tokenizer.eos_token_id, *(config_eos if isinstance(config_eos, list) else [config_eos])):
        if eos is not None and eos not in ids:
            ids.append(int(eos))
    return ids


def length_batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices into `lengths` grouped into batches of similar length (longest first: memory peaks early).

    A batch holds at most `batch_size` rows and, with `max_tokens`, at most that many padded slots
    (rows x the batch's longest length; a row longer than `max_tokens` still gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and (
                max_tokens is None or (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int,
             batch_size: int, device: torch.device, do_sample: bool = False, temperature: float = 1.0,
             top_p: float = 1.0, desc: str | None = None) -> list[str]:
    """Responses (decoded, special tokens dropped, stripped) for each prompt, a list of chat messages, in order.

    With `desc`, a progress bar counts the prompts done.
    """
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id
    eos = stop_ids(model, tokenizer)
    encoded = [tokenize_prompt(tokenizer, p) for p in prompts]
    outputs: list[str] = [""] * len(prompts)
    kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    bar = tqdm(total=len(prompts), desc=desc, unit="prompt", disable=desc is None, mininterval=2.0)
    budget = batch_size * TOKENS_PER_ROW
    for batch in length_batches([len(x) + max_new_tokens for x in encoded], batch_size, budget):
        ids = [encoded[i] for i in batch]
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             eos_token_id=eos, pad_token_id=pad, use_cache=True, **kwargs)
        for i, text in zip(batch, tokenizer.batch_decode(out[:, width:], skip_special_tokens=True), strict=True):
            outputs[i] = text.strip()
        bar.update(len(ids))
    bar.close()
    model.train(was_training)
    return outputs
