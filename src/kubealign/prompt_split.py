"""Train / held-out split of prompt sets by a seeded hash of each prompt's text.

    split_prompt_sets("out/rlaif-prompts", held_out_fraction={"harmful": 0.3}, seed=0)

writes `train.jsonl` (every train-side prompt of every set, labelled `harmful` or `benign` for the
constitution) and `held_out/<set>.jsonl` (the held-out side of each set, rows as in the set, so
evaluate's stratified sampling still works). The side depends only on (seed, prompt text, the set's
fraction), and a prompt held out in any set is kept out of train.jsonl in all of them, so a held-out
prompt can never reach preference data, whatever sample of the train side a round draws.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubealign.data.prompts import PROMPT_SETS, load_prompt_set

# packaged set -> the label the constitution reads
SET_LABELS = {"harmful": "harmful", "benign_edgy": "benign", "helpful": "benign"}
# Held-out share per set: enough held-out prompts for evaluate's 100-per-set defaults (harmful 938 -> ~300,
# benign-but-edgy 150 -> ~100, helpful 112 -> ~100 win-rate prompts); the rest is training prompts.
DEFAULT_HELD_OUT = {"harmful": 0.3, "benign_edgy": 0.7, "helpful": 0.9}


def hash_unit(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by (seed, text): blake2b of both, first 8 bytes over 2**64."""
    digest = hashlib.blake2b(f"{seed}\x00{text.strip()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_held_out(prompt: str, held_out_fraction: float, seed: int) -> bool:
    return hash_unit(prompt, seed) < held_out_fraction


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def fractions_for(held_out_fraction: float | Mapping[str, float]) -> dict[str, float]:
    """Per-set held-out fractions: one number for every set, or {set: fraction} over DEFAULT_HELD_OUT."""
    given = ({n: held_out_fraction for n in PROMPT_SETS} if isinstance(held_out_fraction, int | float)
             else {**DEFAULT_HELD_OUT, **held_out_fraction})
    for name, frac in given.items():
        if name not in PROMPT_SETS:
            raise ValueError(f"held_out_fraction: unknown prompt set {name!r}; expected one of {', '.join(PROMPT_SETS)}")
        if not 0 < frac < 1:
            raise ValueError(f"held_out_fraction[{name}]: expected a number between 0 and 1, got {frac}")
    return given


def split_prompt_sets(out_dir: str | Path, held_out_fraction: float | Mapping[str, float] = DEFAULT_HELD_OUT,
                      seed: int = 0, uris: dict[str, str] | None = None) -> dict[str, dict[str, int]]:
    """Split each prompt set (`uris[name]`, else the packaged one); returns {set: {"train": n, "held_out": n}}.

    A prompt is held out when its hash falls under its set's fraction; a prompt that is held out in any
    set is left out of train.jsonl everywhere (sets with different fractions may share a prompt)."""
    fractions = fractions_for(held_out_fraction)
    out = Path(out_dir)
    rows = {name: load_prompt_set(name, (uris or {}).get(name)) for name in PROMPT_SETS}
    held = {name: [r for r in rs if is_held_out(r["prompt"], fractions[name], seed)] for name, rs in rows.items()}
    held_texts = {r["prompt"].strip() for rs in held.values() for r in rs}
    train: list[dict[str, Any]] = []
    counts = {}
    for name in PROMPT_SETS:
        kept = [r for r in rows[name] if r["prompt"].strip() not in held_texts]
        _write(out / "held_out" / f"{name}.jsonl", held[name])
        train += [{"prompt": r["prompt"], "label": SET_LABELS[name], "set": name} for r in kept]
        counts[name] = {"train": len(kept), "held_out": len(held[name])}
    _write(out / "train.jsonl", train)
    return counts
