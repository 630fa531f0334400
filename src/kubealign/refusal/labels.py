"""The shipped, hand-labelled refusal set and its seeded train / held-out split.

File: `kubealign/data/prompt_sets/refusal_labels.jsonl` (package data, next to the evaluation prompt
sets; documented in REFUSAL_LABELS.md there). One row per pair:
`{"prompt", "response", "label": verdict, "style", "harmful_prompt": bool}`.

The split is a function of the prompt text alone (sha256 of "<seed>:<prompt>"), so the same prompt is
always on the same side, a row added later does not move the others, and the heuristic's threshold
and the classifier's training records come only from the train side.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from kubealign.refusal.verdict import VERDICTS

SPLIT_SEED = "refusal-labels-v1"
HELD_OUT_PERCENT = 30
TRAIN, HELD_OUT = "train", "held_out"


def labels_path() -> Path:
    return Path(str(resources.files("kubealign.data") / "prompt_sets" / "refusal_labels.jsonl"))


def split_of(prompt: str, seed: str = SPLIT_SEED, held_out_percent: int = HELD_OUT_PERCENT) -> str:
    """`train` or `held_out` for a prompt, by a seeded hash (about `held_out_percent`% held out)."""
    bucket = int(hashlib.sha256(f"{seed}:{prompt}".encode()).hexdigest()[:8], 16) % 100
    return HELD_OUT if bucket < held_out_percent else TRAIN


def load_labelled(split: str | None = None, path: str | Path | None = None) -> list[dict[str, Any]]:
    """The labelled rows (all, or only `train` / `held_out`), each with its `split` added."""
    if split not in (None, TRAIN, HELD_OUT):
        raise ValueError(f"split: expected {TRAIN!r}, {HELD_OUT!r} or None, got {split!r}")
    path = Path(path) if path else labels_path()
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in VERDICTS:
            raise ValueError(f"{path}: line {i}: label: expected one of {', '.join(VERDICTS)}, got {row.get('label')!r}")
        row["split"] = split_of(row["prompt"])
        if split is None or row["split"] == split:
            rows.append(row)
    return rows


__all__ = ["HELD_OUT", "HELD_OUT_PERCENT", "SPLIT_SEED", "TRAIN", "labels_path", "load_labelled", "split_of"]
