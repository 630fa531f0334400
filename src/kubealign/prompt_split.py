"""Train / held-out split of prompt sets by a seeded hash of each prompt's text.

    split_prompt_sets("out/rlaif-prompts", held_out_fraction=0.3, seed=0)

writes `train.jsonl` (every train-side prompt of every set, labelled `harmful` or `benign` for the
constitution) and `held_out/<set>.jsonl` (the held-out side of each set, rows as in the set, so
evaluate's stratified sampling still works). The side depends only on (seed, prompt text): the same
prompt lands on the same side in every set and every run, so a held-out prompt can never reach
preference data, whatever sample of the train side a round draws.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kubealign.data.prompts import PROMPT_SETS, load_prompt_set

# packaged set -> the label the constitution reads
SET_LABELS = {"harmful": "harmful", "benign_edgy": "benign", "helpful": "benign"}


def hash_unit(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by (seed, text): blake2b of both, first 8 bytes over 2**64."""
    digest = hashlib.blake2b(f"{seed}\x00{text.strip()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_held_out(prompt: str, held_out_fraction: float, seed: int) -> bool:
    return hash_unit(prompt, seed) < held_out_fraction


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def split_prompt_sets(out_dir: str | Path, held_out_fraction: float = 0.3, seed: int = 0,
                      uris: dict[str, str] | None = None) -> dict[str, dict[str, int]]:
    """Split each prompt set (`uris[name]`, else the packaged one); returns {set: {"train": n, "held_out": n}}."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction: expected a number between 0 and 1, got {held_out_fraction}")
    out = Path(out_dir)
    train: list[dict[str, Any]] = []
    counts = {}
    for name in PROMPT_SETS:
        rows = load_prompt_set(name, (uris or {}).get(name))
        held = [r for r in rows if is_held_out(r["prompt"], held_out_fraction, seed)]
        kept = [r for r in rows if not is_held_out(r["prompt"], held_out_fraction, seed)]
        _write(out / "held_out" / f"{name}.jsonl", held)
        train += [{"prompt": r["prompt"], "label": SET_LABELS[name], "set": name} for r in kept]
        counts[name] = {"train": len(kept), "held_out": len(held)}
    _write(out / "train.jsonl", train)
    return counts
