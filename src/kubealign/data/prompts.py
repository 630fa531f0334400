"""Evaluation prompt sets: JSONL files at any fsspec URI, one `{"prompt": str, ...}` per line.

The refusal rate reads a harmful set, the over-refusal rate a benign-but-edgy set; a team replaces
either with its own file (`EvalConfig.harmful_prompts`, `benign_edgy_prompts`, `helpful_prompts`).
The packaged sets (PROVENANCE.md beside them says where each comes from) are the defaults.

A row may carry a stratum field (the packaged harmful set: `risk_area`; the others: `category`):
a sample of `limit` prompts then keeps each stratum's share of the file (largest-remainder rounding,
ties broken by a seeded order, prompts drawn at random within each stratum), and the same
(set name, limit, seed) always gives the same prompts. A file without the field is one stratum.

Every bad row is reported with the file, its row number and the field; none is skipped silently.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from kubealign.data.io import DataInputError, iter_rows
from kubealign.data.records import Rejection

PACKAGED_DIR: Path = Path(__file__).resolve().parent / "prompt_sets"

# set name -> (packaged file, field used as the stratum when sampling)
PROMPT_SETS: dict[str, tuple[str, str]] = {
    "harmful": ("harmful.jsonl", "risk_area"),
    "benign_edgy": ("benign_edgy.jsonl", "category"),
    "helpful": ("helpful.jsonl", "category"),
}

_MAX_LISTED = 20  # bad rows named in one error; the count covers the rest


class PromptSetError(DataInputError):
    """A prompt set that cannot be used; the message names the file and every bad row and field."""


def packaged_uri(name: str) -> str:
    """Path of the packaged prompt set `name`."""
    _check_name(name)
    return str(PACKAGED_DIR / PROMPT_SETS[name][0])


def _check_name(name: str) -> None:
    if name not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {name!r}; valid names: {', '.join(sorted(PROMPT_SETS))}")


def _row_problem(rec: Any, stratum: str) -> tuple[str, str] | None:
    """(field, what was expected) for a bad record, None for a good one."""
    if not isinstance(rec, dict):
        return "(record)", f"expected a JSON object, got {type(rec).__name__}"
    prompt = rec.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        got = "nothing" if "prompt" not in rec else repr(prompt)[:60]
        return "prompt", f"expected a non-empty string, got {got}"
    if stratum in rec and not isinstance(rec[stratum], str):
        return stratum, f"expected a string (the sampling stratum), got {type(rec[stratum]).__name__}"
    return None


def read_prompt_set(uri: str, stratum: str = "category") -> list[dict[str, Any]]:
    """Every record of the prompt-set file at `uri`; raises PromptSetError naming each bad row."""
    rows, problems = [], []
    for row, rec in iter_rows(uri):
        if isinstance(rec, Rejection):
            problems.append(f"row {row}: field {rec.field or '(record)'}: {rec.reason}: {rec.message}")
            continue
        bad = _row_problem(rec, stratum)
        if bad:
            problems.append(f"row {row}: field {bad[0]}: {bad[1]}")
        else:
            rows.append(rec)
    if problems:
        more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise PromptSetError(f"{uri}: {len(problems)} bad row(s): " + "; ".join(problems[:_MAX_LISTED]) + more)
    if not rows:
        raise PromptSetError(f"{uri}: no prompts (expected one {{\"prompt\": ...}} object per line)")
    return rows


def stratified_sample(rows: list[dict[str, Any]], limit: int | None, seed: int, stratum: str,
                      name: str) -> list[dict[str, Any]]:
    """`limit` rows keeping each stratum's share (see the module docstring), in file order; copies."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit is None or limit >= len(rows):
        return [dict(r) for r in rows]
    strata: dict[str, list[int]] = {}
    for idx, row in enumerate(rows):
        strata.setdefault(str(row.get(stratum, "")), []).append(idx)
    rng = random.Random(f"{name}:{limit}:{seed}")
    keys = sorted(strata)
    tiebreak = keys[:]
    rng.shuffle(tiebreak)
    rank = {k: i for i, k in enumerate(tiebreak)}
    exact = {k: limit * len(strata[k]) / len(rows) for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - quota[k]), rank[k]))
    for k in by_remainder[: limit - sum(quota.values())]:
        quota[k] += 1
    chosen: list[int] = []
    for k in keys:
        chosen.extend(rng.sample(strata[k], quota[k]))
    return [dict(rows[i]) for i in sorted(chosen)]


def load_prompt_set(name: str, uri: str | None = None, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Prompt set `name` ("harmful", "benign_edgy", "helpful") from `uri`, or the packaged one when
    None, as a seeded stratified sample of `limit` records (all of them when None)."""
    _check_name(name)
    stratum = PROMPT_SETS[name][1]
    rows = read_prompt_set(uri or packaged_uri(name), stratum)
    return stratified_sample(rows, limit, seed, stratum, name)


def as_conversations(rows: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """Each prompt as a one-turn user conversation, the shape generation takes."""
    return [[{"role": "user", "content": r["prompt"]}] for r in rows]
