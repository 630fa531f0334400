"""Padding and batch layout of the collators (pure tensors, hand-written token ids)."""

from __future__ import annotations

import pytest
import torch

from kubealign.data.chat import IGNORE_INDEX
from kubealign.data.collate import collate_preference, collate_sft

PAD = 0
X = IGNORE_INDEX


def test_collate_sft_right_pads() -> None:
    batch = collate_sft(
        [
            {"input_ids": [5, 6, 7], "labels": [X, 6, 7]},
            {"input_ids": [8], "labels": [8]},
        ],
        pad_id=PAD,
    )
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert all(t.dtype == torch.long and t.shape == (2, 3) for t in batch.values())
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[X, 6, 7], [8, X, X]]


def test_collate_preference_puts_chosen_first_then_rejected() -> None:
    examples = [
        {"prompt_ids": [1, 2], "chosen_ids": [10, 11, 12], "rejected_ids": [20]},
        {"prompt_ids": [3], "chosen_ids": [13], "rejected_ids": [21, 22]},
    ]
    batch = collate_preference(examples, pad_id=PAD)
    assert all(t.dtype == torch.long and t.shape == (4, 5) for t in batch.values())  # (2B, T)
    assert batch["input_ids"].tolist() == [
        [1, 2, 10, 11, 12],  # example 0, chosen
        [3, 13, PAD, PAD, PAD],  # example 1, chosen
        [1, 2, 20, PAD, PAD],  # example 0, rejected
        [3, 21, 22, PAD, PAD],  # example 1, rejected
    ]
    assert batch["attention_mask"].tolist() == [[1] * 5, [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]
    # Only response tokens are labelled: never the prompt, never padding.
    assert batch["labels"].tolist() == [
        [X, X, 10, 11, 12],
        [X, 13, X, X, X],
        [X, X, 20, X, X],
        [X, 21, 22, X, X],
    ]


def test_collate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        collate_sft([], pad_id=PAD)
    with pytest.raises(ValueError, match="example 0: 2 input_ids but 1 labels"):
        collate_sft([{"input_ids": [1, 2], "labels": [1]}], pad_id=PAD)
