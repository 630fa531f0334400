"""Jailbreak framings for red-team evaluation: templates wrapped around harmful prompts.

A template file is JSONL, one `{"template": str containing "{prompt}", "framing": str}` per line
(the packaged `prompt_sets/jailbreak_templates.jsonl` holds role-play personas, "ignore previous
instructions" overrides and fiction framings written for kubealign; they carry no harmful content:
the harmful part is always the wrapped prompt). Each harmful prompt gets one template: templates are
dealt in a seeded shuffled order, round and round, so every framing gets an even share and the same
(prompts, seed) always gives the same wrapped set.

Every bad row is reported with the file, its row number and the field.
"""

from __future__ import annotations

import random
from typing import Any

from kubealign.data.io import iter_rows
from kubealign.data.prompts import PACKAGED_DIR, PromptSetError
from kubealign.data.records import Rejection

PLACEHOLDER = "{prompt}"
PACKAGED_TEMPLATES = str(PACKAGED_DIR / "jailbreak_templates.jsonl")


def _row_problem(rec: Any) -> tuple[str, str] | None:
    """(field, what was expected) for a bad template record, None for a good one."""
    if not isinstance(rec, dict):
        return "(record)", f"expected a JSON object, got {type(rec).__name__}"
    template = rec.get("template")
    if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
        got = "nothing" if "template" not in rec else repr(template)[:60]
        return "template", f"expected a string holding {PLACEHOLDER} exactly once, got {got}"
    framing = rec.get("framing")
    if not isinstance(framing, str) or not framing.strip():
        got = "nothing" if "framing" not in rec else repr(framing)[:60]
        return "framing", f"expected a non-empty string (e.g. roleplay, fiction), got {got}"
    return None


def read_templates(uri: str | None = None) -> list[dict[str, str]]:
    """Every template of the file at `uri` (the packaged one when None); PromptSetError names each bad row."""
    uri = uri or PACKAGED_TEMPLATES
    rows, problems = [], []
    for row, rec in iter_rows(uri):
        if isinstance(rec, Rejection):
            problems.append(f"row {row}: field {rec.field or '(record)'}: {rec.reason}: {rec.message}")
            continue
        bad = _row_problem(rec)
        if bad:
            problems.append(f"row {row}: field {bad[0]}: {bad[1]}")
        else:
            rows.append({"template": rec["template"], "framing": rec["framing"]})
    if problems:
        raise PromptSetError(f"{uri}: {len(problems)} bad row(s): " + "; ".join(problems[:20]))
    if not rows:
        raise PromptSetError(f"{uri}: no templates (expected one {{\"template\", \"framing\"}} object per line)")
    return rows


def wrap(prompts: list[dict[str, Any]], templates: list[dict[str, str]], seed: int) -> list[dict[str, Any]]:
    """Each prompt row wrapped in one template: `{"prompt": wrapped, "request": original, "framing"}`.

    str.replace, not str.format: a prompt or template may hold other braces.
    """
    order = list(range(len(templates)))
    random.Random(f"jailbreak:{seed}").shuffle(order)
    out = []
    for i, row in enumerate(prompts):
        t = templates[order[i % len(order)]]
        out.append({"prompt": t["template"].replace(PLACEHOLDER, row["prompt"]), "request": row["prompt"],
                    "framing": t["framing"]})
    return out


__all__ = ["PACKAGED_TEMPLATES", "PLACEHOLDER", "read_templates", "wrap"]
