"""`kubealign judge refusal IN.jsonl --out OUT.jsonl [--backend NAME] [--model URI]`.

Rows `{"prompt", "response"}` in (plus any other fields, kept); the same rows plus `"verdict"` and
`"refusal"` out, in order. A bad row (not JSON, not an object, a missing or non-string field, a label
that is neither a verdict name nor a bool) is reported as `FILE: row N: field: expected ..., got ...`
on stderr and skipped; the rest are judged. With a `"label"` column, accuracy, precision, recall and F1
of refusal-vs-not are printed with n and 95% bootstrap intervals (`kubealign.stats`), plus the
agreement on the four verdicts where the labels name them.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import fsspec

from kubealign import stats
from kubealign.refusal import judge_refusals
from kubealign.refusal.verdict import VERDICTS, label_to_refusal


def _check_row(line: str) -> tuple[dict[str, Any] | None, str]:
    """(row, "") for a good line, (None, "field: expected ..., got ...") for a bad one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"(line): expected a JSON object, got invalid JSON ({err.msg} at column {err.colno})"
    if not isinstance(row, dict):
        return None, f"(line): expected a JSON object, got {type(row).__name__}"
    for field in ("prompt", "response"):
        value = row.get(field)
        if not isinstance(value, str) or (field == "prompt" and not value.strip()):
            got = "nothing (missing)" if field not in row else json.dumps(value)[:60]
            kind = "a non-empty string" if field == "prompt" else "a string"
            return None, f"{field}: expected {kind}, got {got}"
    if "label" in row:
        try:
            label_to_refusal(row["label"])
        except ValueError as err:
            return None, f"label: {err}"
    return row, ""


def read_rows(path: str, err: TextIO | None = None) -> tuple[list[dict[str, Any]], int]:
    """The good rows of a JSONL file (local path or fsspec URI) and the number of bad ones (reported)."""
    err = err or sys.stderr
    rows, bad = [], 0
    with fsspec.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            row, problem = _check_row(line)
            if row is None:
                bad += 1
                print(f"{path}: row {i}: {problem}; row skipped", file=err)
            else:
                rows.append(row)
    return rows, bad


def format_report(rows: list[dict[str, Any]]) -> str:
    """The agreement table for rows that have both a label and a readable verdict."""
    scored = [r for r in rows if "label" in r and r["verdict"] is not None]
    if not scored:
        return "no labelled rows with a readable verdict: nothing to score"
    truth = [label_to_refusal(r["label"]) for r in scored]
    report = stats.binary_report(truth, [r["refusal"] for r in scored])
    lines = [f"refusal vs not, n={len(scored)} (95% bootstrap intervals, {stats.DEFAULT_RESAMPLES} resamples):"]
    lines += [f"  {name:<9} {ivl}" for name, ivl in report.items()]
    named = [r for r in scored if isinstance(r["label"], str)]
    if named:
        four = stats.rate_interval([r["label"] == r["verdict"] for r in named])
        lines.append(f"  verdict agreement ({', '.join(VERDICTS)}): {four}")
    unread = sum(1 for r in rows if "label" in r and r["verdict"] is None)
    if unread:
        lines.append(f"  {unread} labelled rows had no readable verdict and are not scored")
    return "\n".join(lines)


def judge_command(in_path: str, out_path: str, backend: str = "heuristic", model: str | None = None,
                  api_key_env: str | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout  # read at call time: tests and callers swap sys.stdout
    rows, bad = read_rows(in_path, err)
    if not rows:
        raise ValueError(f"{in_path}: no row to judge ({bad} bad rows, see above); expected JSONL rows "
                         '{"prompt": ..., "response": ...}')
    options = {"api_key_env": api_key_env or None} if backend == "endpoint" and api_key_env is not None else {}
    verdicts = judge_refusals([r["prompt"] for r in rows], [r["response"] for r in rows], backend, model, **options)
    for row, v in zip(rows, verdicts, strict=True):
        row["verdict"], row["refusal"] = v.verdict, v.refusal
    with fsspec.open(out_path, "wt", encoding="utf-8", auto_mkdir=True) as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    counts = {name: sum(r["verdict"] == name for r in rows) for name in VERDICTS}
    unread = sum(r["verdict"] is None for r in rows)
    print(f"judged {len(rows)} rows with the {backend} backend ({bad} bad rows skipped) -> {out_path}", file=out)
    print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()) + (f", unreadable: {unread}" if unread else ""),
          file=out)
    if any("label" in r for r in rows):
        print(format_report(rows), file=out)
    return 0


__all__ = ["format_report", "judge_command", "read_rows"]
