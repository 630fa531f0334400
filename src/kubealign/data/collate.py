"""Batching tokenized examples into padded tensors (right padding, labels IGNORE_INDEX on padding).

Shapes: B = examples in the batch, T = longest sequence in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from kubealign.data.chat import IGNORE_INDEX


def _pad(rows: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    if not rows:
        raise ValueError("cannot collate an empty batch")
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    label_ids = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, lab) in enumerate(zip(rows, labels, strict=True)):
        if len(ids) != len(lab):
            raise ValueError(f"example {i}: {len(ids)} input_ids but {len(lab)} labels")
        n = len(ids)
        input_ids[i, :n] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, :n] = 1
        label_ids[i, :n] = torch.tensor(lab, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_ids}


def collate_sft(examples: Sequence[Mapping[str, Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Examples from `tokenize_sft` -> input_ids, attention_mask, labels, each (B, T) long."""
    return _pad([e["input_ids"] for e in examples], [e["labels"] for e in examples], pad_id)


def collate_preference(examples: Sequence[Mapping[str, Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Examples from `tokenize_preference` -> input_ids, attention_mask, labels, each (2B, T) long.

    Rows 0..B-1 are prompt + chosen, rows B..2B-1 prompt + rejected of the same examples, so one
    forward pass scores both and `logps[:B]`, `logps[B:]` split them. Labels are IGNORE_INDEX on the
    prompt and the padding: only response tokens count in the sequence log-probability.
    """
    rows, labels = [], []
    for key in ("chosen_ids", "rejected_ids"):
        for e in examples:
            prompt, response = list(e["prompt_ids"]), list(e[key])
            rows.append(prompt + response)
            labels.append([IGNORE_INDEX] * len(prompt) + response)
    return _pad(rows, labels, pad_id)


__all__ = ["collate_preference", "collate_sft"]
