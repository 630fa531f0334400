"""Batched generation: length-sorted batches, answers back in the caller's order, every EOS id.

Real: the tiny tokenizer (tests/conftest.py) and its chat template. Stand-in: a model whose `generate`
echoes each row's unpadded prompt as its "response" (the tiny random model answers every prompt with
the same empty text, which could not show a mix-up), so each answer names the prompt it belongs to.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from kubealign.data.chat import tokenize_prompt
from kubealign.generate import generate, length_batches, stop_ids


class EchoModel(torch.nn.Module):
    """`generate` appends each row's own prompt tokens (padding dropped) after the padded prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.widths: list[int] = []

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int,
                 **_: Any) -> torch.Tensor:
        self.widths.append(input_ids.shape[1])
        rows = [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask, strict=True)]
        longest = max(len(r) for r in rows)
        tails = torch.stack([torch.cat([r, torch.full((longest - len(r),), pad_token_id)]) for r in rows])
        return torch.cat([input_ids, tails], dim=1)


def test_answers_come_back_in_the_callers_order_with_less_padding(tiny_tokenizer: Any) -> None:
    asks = ["hi", "What is the capital of france and why is it that city?", "two plus two", "Why is the sky blue?",
            "Write a short poem about a cat in the sun on a long summer day.", "ok"]
    model = EchoModel()
    out = generate(model, tiny_tokenizer, [[{"role": "user", "content": a}] for a in asks], 4, 2, torch.device("cpu"))
    assert len(out) == len(asks)
    for ask, answer in zip(asks, out, strict=True):
        assert ask.lower().split()[0] in answer.lower() and ask.lower().split()[-1].strip("?.") in answer.lower()
    # sorted: the two longest prompts share the first batch, the two shortest the last
    lengths = sorted((len(tokenize_prompt(tiny_tokenizer, [{"role": "user", "content": a}])) for a in asks),
                     reverse=True)
    assert model.widths == [lengths[0], lengths[2], lengths[4]]


def test_length_batches_group_similar_lengths_longest_first() -> None:
    assert length_batches([3, 9, 1, 9, 5], 2) == [[1, 3], [4, 0], [2]]
    assert length_batches([], 4) == []


def test_length_batches_cap_padded_tokens() -> None:
    # budget 20 slots: two rows of 9 fit (18), a third would not; 5,3,1 fit three to a batch (15)
    assert length_batches([3, 9, 1, 9, 5], 4, max_tokens=20) == [[1, 3], [4, 0, 2]]
    # a row longer than the budget still gets a batch of its own
    assert length_batches([30, 2, 2], 4, max_tokens=20) == [[0], [1, 2]]


def test_stop_ids_merge_tokenizer_and_generation_config() -> None:
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 7]))
    assert stop_ids(model, SimpleNamespace(eos_token_id=7)) == [7, 2]  # type: ignore[arg-type]
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=None))
    assert stop_ids(model, SimpleNamespace(eos_token_id=5)) == [5]  # type: ignore[arg-type]
