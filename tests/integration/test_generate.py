"""Batched generation: length-sorted batches, answers in the caller's order, stop at every EOS id.

Real: the tiny Llama (2 layers, 64 wide) and its tokenizer from tests/conftest.py, transformers' generate.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from kubealign import models
from kubealign.generate import generate, length_batches, stop_ids


def test_length_batches_group_similar_lengths_longest_first() -> None:
    assert length_batches([3, 9, 1, 9, 5], 2) == [[1, 3], [4, 0], [2]]
    assert length_batches([], 4) == []


def test_stop_ids_merge_tokenizer_and_generation_config() -> None:
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 7]))
    assert stop_ids(model, SimpleNamespace(eos_token_id=7)) == [7, 2]  # type: ignore[arg-type]
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=None))
    assert stop_ids(model, SimpleNamespace(eos_token_id=5)) == [5]  # type: ignore[arg-type]


def test_batched_answers_come_back_in_order_and_match_one_at_a_time(tiny_model_dir: Path) -> None:
    tokenizer = models.load_tokenizer(tiny_model_dir)
    model = models.load_causal_lm(tiny_model_dir, torch.float32, torch.device("cpu"))
    asks = ["hi", "What is the capital of france and why is it that city?", "two plus two", "Why is the sky blue?",
            "Write a short poem about a cat in the sun on a long summer day."]
    prompts = [[{"role": "user", "content": a}] for a in asks]
    batched = generate(model, tokenizer, prompts, 8, 2, torch.device("cpu"))
    alone = [generate(model, tokenizer, [p], 8, 1, torch.device("cpu"))[0] for p in prompts]
    assert batched == alone  # greedy, left padding masked: batching and sorting change nothing but speed
    assert len(set(alone)) > 1  # different prompts, different answers: the order is really checked
