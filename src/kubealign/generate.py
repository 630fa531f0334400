"""Batched generation from chat prompts with the KV cache (left padding, as decoder-only models need)."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from kubealign.data.chat import tokenize_prompt


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int,
             batch_size: int, device: torch.device, do_sample: bool = False, temperature: float = 1.0,
             top_p: float = 1.0, desc: str | None = None) -> list[str]:
    """Responses (decoded, special tokens dropped) for each prompt, a list of chat messages.

    With `desc`, a progress bar counts the prompts done.
    """
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    pad = tokenizer.pad_token_id
    bar = tqdm(total=len(prompts), desc=desc, unit="prompt", disable=desc is None, mininterval=2.0)
    for i in range(0, len(prompts), batch_size):
        ids = [tokenize_prompt(tokenizer, p) for p in prompts[i : i + batch_size]]
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        kwargs: dict[str, Any] = {"do_sample": do_sample}
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=pad, **kwargs)
        outputs += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        bar.update(len(ids))
    bar.close()
    model.train(was_training)
    return [o.strip() for o in outputs]
