"""Locate the demo data files and load the evaluation prompt sets.

Everything here is pure standard library and reads only files shipped inside
this package, so it works offline and in tests.

* :data:`DATA_DIR` - folder holding ``sft.jsonl``, ``preference.jsonl`` and
  ``eval/``.
* :func:`demo_sft_path` / :func:`demo_preference_path` - paths of the demo
  training sets (as ``str`` so they can go straight into configs and CLIs).
* :func:`load_prompt_set` - the ``harmful``, ``benign_edgy`` and ``helpful``
  evaluation prompts, optionally as a deterministic stratified sample.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

__all__ = [
    "DATA_DIR",
    "EVAL_DIR",
    "PROMPT_SETS",
    "demo_preference_path",
    "demo_sft_path",
    "load_prompt_set",
]

DATA_DIR: Path = Path(__file__).resolve().parent / "data"
"""Folder with the demo data files (inside the installed package)."""

EVAL_DIR: Path = DATA_DIR / "eval"

# name -> (file name, field used as the stratum when sampling)
PROMPT_SETS: dict[str, tuple[str, str]] = {
    "harmful": ("harmful.jsonl", "risk_area"),
    "benign_edgy": ("benign_edgy.jsonl", "category"),
    "helpful": ("helpful.jsonl", "category"),
}


def demo_sft_path() -> str:
    """Path of the demo SFT set (``{"messages": [...]}`` per line)."""
    return str(DATA_DIR / "sft.jsonl")


def demo_preference_path() -> str:
    """Path of the demo preference set (``{"prompt", "chosen", "rejected"}``)."""
    return str(DATA_DIR / "preference.jsonl")


@cache
def _read_jsonl(path: str) -> tuple[dict, ...]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return tuple(rows)


def load_prompt_set(name: str, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Load an evaluation prompt set.

    Args:
        name: one of ``"harmful"`` (Do-Not-Answer prompts, stratum
            ``risk_area``), ``"benign_edgy"`` (over-refusal probes, stratum
            ``category``) or ``"helpful"`` (MT-Bench first turns, stratum
            ``category``).
        limit: if given and smaller than the set, return a stratified sample
            of exactly ``limit`` records: each stratum gets a share
            proportional to its size (largest-remainder rounding, ties broken
            by a ``seed``-dependent order), then records are drawn at random
            within each stratum. ``None`` (or a limit >= the set size)
            returns every record.
        seed: seed for the sample; the same ``(name, limit, seed)`` always
            gives the same records.

    Returns:
        New dicts (safe to mutate), in the order they appear in the file.

    Raises:
        ValueError: for an unknown ``name`` or a negative ``limit``.
    """
    if name not in PROMPT_SETS:
        valid = ", ".join(sorted(PROMPT_SETS))
        raise ValueError(f"unknown prompt set {name!r}; valid names: {valid}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    file_name, stratum_key = PROMPT_SETS[name]
    rows = _read_jsonl(str(EVAL_DIR / file_name))
    if limit is None or limit >= len(rows):
        return [dict(r) for r in rows]

    strata: dict[str, list[int]] = {}
    for idx, row in enumerate(rows):
        strata.setdefault(str(row.get(stratum_key, "")), []).append(idx)

    rng = random.Random(f"{name}:{limit}:{seed}")
    keys = sorted(strata)
    tiebreak = keys[:]
    rng.shuffle(tiebreak)
    rank = {k: i for i, k in enumerate(tiebreak)}

    total = len(rows)
    exact = {k: limit * len(strata[k]) / total for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    remaining = limit - sum(quota.values())
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - quota[k]), rank[k]))
    for k in by_remainder[:remaining]:
        quota[k] += 1

    chosen: list[int] = []
    for k in keys:
        chosen.extend(rng.sample(strata[k], quota[k]))
    return [dict(rows[i]) for i in sorted(chosen)]
