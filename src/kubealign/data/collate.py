"""Batching tokenized examples into tensors: padded (right padding) or packed (padding-free).

Padded: B = examples in the batch, T = longest sequence in it; labels IGNORE_INDEX on padding.
Packed: the sequences are laid end to end in R rows of at most `capacity` tokens (first fit, longest
first), `position_ids` restart at 0 for every sequence and there is no attention mask, so the model
attends within each sequence only (transformers builds the block-diagonal mask from the positions).
`segment_ids` gives the sequence (its index in the padded layout) of each token, -1 on the tail
padding of a row; the first token of each sequence carries IGNORE_INDEX, as it does when padded
(nothing before it predicts it), so a label is never predicted across a sequence boundary.

Packed with the prompt shared (`collate_preference(share_prompt=True)`): each pair is laid out once as
prompt, chosen, rejected; the rejected tokens' positions continue from the prompt's, as the chosen ones
do, and a boolean `attention_mask` (R, 1, T, T) lets each token see the earlier tokens of its own pair
except that rejected tokens do not see chosen ones. The prompt runs once instead of twice (in DPO its
activations then take the gradient of both responses: the sum the two separate passes give). As the
first rejected token follows the chosen ones in the row, "hidden state t predicts token t + 1" does not
hold for it: the batch names each scored token instead, `score_index` (flat index into R x T of the
hidden state that predicts it), `score_target` and `score_segment` (its sequence: 0..B-1 chosen,
B..2B-1 rejected).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def _rows_first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Sequence indices per row: longest first, each into the first row with room (first-fit decreasing)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        r = next((k for k, free in enumerate(room) if free >= lengths[i]), None)
        if r is None:
            rows.append([])
            room.append(capacity)
            r = len(rows) - 1
        rows[r].append(i)
        room[r] -= lengths[i]
    return rows


def _pack(seqs: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], pad_id: int,
          capacity: int | None) -> dict[str, torch.Tensor]:
    """Sequences packed into rows of at most `capacity` tokens (None: one row); see the module doc."""
    if not seqs:
        raise ValueError("cannot collate an empty batch")
    lengths = [len(s) for s in seqs]
    for i, (ids, lab) in enumerate(zip(seqs, labels, strict=True)):
        if len(ids) != len(lab):
            raise ValueError(f"example {i}: {len(ids)} input_ids but {len(lab)} labels")
    layout = _rows_first_fit(lengths, max(capacity or sum(lengths), max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in layout)
    out = {"input_ids": torch.full((len(layout), width), pad_id, dtype=torch.long),
           "labels": torch.full((len(layout), width), IGNORE_INDEX, dtype=torch.long),
           "position_ids": torch.zeros((len(layout), width), dtype=torch.long),
           "segment_ids": torch.full((len(layout), width), -1, dtype=torch.long)}
    for r, row in enumerate(layout):
        at = 0
        for i in row:
            n = lengths[i]
            out["input_ids"][r, at : at + n] = torch.tensor(seqs[i], dtype=torch.long)
            out["labels"][r, at + 1 : at + n] = torch.tensor(labels[i][1:], dtype=torch.long)
            out["position_ids"][r, at : at + n] = torch.arange(n)
            out["segment_ids"][r, at : at + n] = i
            at += n
        out["position_ids"][r, at:] = torch.arange(width - at)  # the tail is a sequence of its own, unscored
    return out


def _pack_shared(examples: Sequence[Mapping[str, Any]], pad_id: int, capacity: int | None) -> dict[str, torch.Tensor]:
    """Pairs packed as prompt + chosen + rejected, the prompt once (module doc)."""
    if not examples:
        raise ValueError("cannot collate an empty batch")
    parts = [(list(e["prompt_ids"]), list(e["chosen_ids"]), list(e["rejected_ids"])) for e in examples]
    lengths = [sum(map(len, p)) for p in parts]
    layout = _rows_first_fit(lengths, max(capacity or sum(lengths), max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in layout)
    n = len(examples)
    shape = (len(layout), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    segments = torch.full(shape, -1, dtype=torch.long)
    role = torch.zeros(shape, dtype=torch.long)  # 0 prompt, 1 chosen, 2 rejected
    index: list[int] = []
    target: list[int] = []
    segment: list[int] = []
    for r, row in enumerate(layout):
        at = 0
        for k in row:
            prompt, chosen, rejected = parts[k]
            p, c = len(prompt), len(chosen)
            end = at + lengths[k]
            input_ids[r, at:end] = torch.tensor(prompt + chosen + rejected, dtype=torch.long)
            position_ids[r, at:end] = torch.cat([torch.arange(p + c), torch.arange(p, p + len(rejected))])
            segments[r, at:end] = k
            segments[r, at + p + c:end] = n + k
            role[r, at + p:at + p + c] = 1
            role[r, at + p + c:end] = 2
            base = r * width
            for j, t in enumerate(chosen):
                if p + j > 0:  # nothing predicts the first token of an empty prompt's row, as when padded
                    index.append(base + at + p + j - 1)
                    target.append(t)
                    segment.append(k)
            for j, t in enumerate(rejected):
                before = at + p - 1 if j == 0 else at + p + c + j - 1
                if p + j > 0:
                    index.append(base + before)
                    target.append(t)
                    segment.append(n + k)
            at = end
        position_ids[r, at:] = torch.arange(width - at)
    pair = torch.where(segments >= n, segments - n, segments)  # which pair a token belongs to, -1: padding
    order = torch.arange(width)
    causal = order[None, :] <= order[:, None]
    same = (pair[:, :, None] == pair[:, None, :]) & (pair[:, None, :] >= 0)
    crossing = (role[:, :, None] == 2) & (role[:, None, :] == 1)  # a rejected token reading a chosen one
    mask = (causal & same & ~crossing) | torch.eye(width, dtype=torch.bool)  # padding sees itself: no empty row
    return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask[:, None],
            "segment_ids": segments, "score_index": torch.tensor(index, dtype=torch.long),
            "score_target": torch.tensor(target, dtype=torch.long),
            "score_segment": torch.tensor(segment, dtype=torch.long)}


def collate_sft(examples: Sequence[Mapping[str, Sequence[int]]], pad_id: int, padding_free: bool = False,
                capacity: int | None = None) -> dict[str, torch.Tensor]:
    """Examples from `tokenize_sft` -> input_ids, attention_mask, labels, each (B, T) long.

    `padding_free`: packed instead (input_ids, labels, position_ids, segment_ids, each (R, L) long).
    """
    if padding_free:
        return _pack([e["input_ids"] for e in examples], [e["labels"] for e in examples], pad_id, capacity)
    return _pad([e["input_ids"] for e in examples], [e["labels"] for e in examples], pad_id)


def collate_preference(examples: Sequence[Mapping[str, Any]], pad_id: int, padding_free: bool = False,
                       capacity: int | None = None, share_prompt: bool = False) -> dict[str, torch.Tensor]:
    """Examples from `tokenize_preference` -> input_ids, attention_mask, labels, each (2B, T) long.

    Rows 0..B-1 are prompt + chosen, rows B..2B-1 prompt + rejected of the same examples, so one
    forward pass scores both and `logps[:B]`, `logps[B:]` split them. Labels are IGNORE_INDEX on the
    prompt and the padding: only response tokens count in the sequence log-probability.
    `padding_free`: packed instead, with segment ids 0..B-1 chosen and B..2B-1 rejected (module doc);
    with `share_prompt` too, each pair's prompt once, with a 4-D attention mask (module doc). Examples
    that carry precomputed reference log-probs (`ref_chosen`, `ref_rejected`) add `ref_logps` (2B,)
    float32 in the same order.
    """
    if padding_free and share_prompt:
        out = _pack_shared(examples, pad_id, capacity)
    else:
        rows, labels = [], []
        for key in ("chosen_ids", "rejected_ids"):
            for e in examples:
                prompt, response = list(e["prompt_ids"]), list(e[key])
                rows.append(prompt + response)
                labels.append([IGNORE_INDEX] * len(prompt) + response)
        out = _pack(rows, labels, pad_id, capacity) if padding_free else _pad(rows, labels, pad_id)
    if examples and "ref_chosen" in examples[0]:
        out["ref_logps"] = torch.tensor([e[k] for k in ("ref_chosen", "ref_rejected") for e in examples],
                                        dtype=torch.float32)
    return out


__all__ = ["collate_preference", "collate_sft"]
