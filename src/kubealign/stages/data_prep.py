"""Data prep stage: validate -> split -> remove train/eval overlap -> gate -> write.

Outputs under `out_dir` (any fsspec URI):
- train.jsonl, eval.jsonl: normalised records (see `data.records`), in source order;
- report.json: every rejected row with its reason, counts per reason, split sizes, and
  `source_rows` {"train": [...], "eval": [...]} aligned line by line with the two files.
When more than `max_reject_fraction` of the records is rejected, only report.json is written (stale
train/eval files from an earlier run there are removed) and DataPrepError says why.

The split keeps all records that share a prompt on one side: a prompt with four preference pairs
lands whole in train or in eval, rather than leaking into both and being thrown away. Which side is
decided by a seeded hash of the prompt, so the split is reproducible and mostly stable when new
records are appended (a recurring retrain keeps evaluating on the same prompts). Overlap that
survives this (the same prompt up to case and whitespace) is removed from train and reported.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any

from kubealign.config import ConfigError, DataPrepConfig
from kubealign.data.io import DataInputError, write_jsonl
from kubealign.data.records import Message, Reason, Rejection, canonical, loose_key
from kubealign.data.validate import (
    ValidationResult,
    format_counts,
    format_rejection,
    kind_spec,
    no_records_message,
    summary_line,
    validate,
)
from kubealign.storage import StorageError, join, remove, write_json

Accepted = list[tuple[int, dict[str, Any]]]
OUTPUT_FILES = ("train.jsonl", "eval.jsonl")


class DataPrepError(ValueError):
    """The data cannot be used as it is; the message says which file, how much and why."""


def load_tokenizer(uri: str) -> Any:
    """The tokenizer at a local folder or any fsspec URI (s3://, gs://, hf://; copied locally once)."""
    from kubealign import models

    return models.load_tokenizer(models.local_copy(uri))


def _bucket(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def split(
    accepted: Accepted, eval_fraction: float, seed: int, prompt_of: Callable[[dict[str, Any]], list[Message]]
) -> tuple[Accepted, Accepted]:
    """Deterministic train/eval split that keeps records sharing a prompt together.

    Eval gets about eval_fraction of the records, and at least one when eval_fraction > 0 and there
    are two or more prompts; train always keeps at least one prompt. Both keep source order.
    """
    n = len(accepted)
    target = 0 if eval_fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * eval_fraction)))
    groups: dict[str, list[int]] = {}
    for i, (_, record) in enumerate(accepted):
        groups.setdefault(canonical(prompt_of(record)), []).append(i)
    order = sorted(groups, key=lambda k: _bucket(k, seed))
    chosen: list[str] = []
    count = 0
    for key in order:
        if count >= target:
            break
        if count + len(groups[key]) <= target:
            chosen.append(key)
            count += len(groups[key])
    if target and not chosen and len(groups) >= 2:  # every prompt group is bigger than the target
        chosen.append(min(order, key=lambda k: len(groups[k])))
    eval_idx = {i for key in chosen for i in groups[key]}
    train = [a for i, a in enumerate(accepted) if i not in eval_idx]
    held = [a for i, a in enumerate(accepted) if i in eval_idx]
    return train, held


def remove_overlap(
    train: Accepted, held: Accepted, prompt_of: Callable[[dict[str, Any]], list[Message]], field: str, unit: str
) -> tuple[Accepted, list[Rejection]]:
    """Drop train records whose prompt (ignoring case and whitespace) is also an eval prompt."""
    eval_rows = {}
    for row, record in held:
        eval_rows.setdefault(loose_key(prompt_of(record)), row)
    kept, dropped = [], []
    for row, record in train:
        first = eval_rows.get(loose_key(prompt_of(record)))
        if first is None:
            kept.append((row, record))
        else:
            msg = f"same prompt (ignoring case and whitespace) as eval {unit} {first}; kept out of train"
            dropped.append(Rejection(row, Reason.TRAIN_EVAL_OVERLAP.value, field, msg))
    return kept, dropped


def _gate_message(result: ValidationResult, cfg: DataPrepConfig, report_uri: str) -> str:
    first = result.sorted_rejections()[0]
    where = f"{result.row_unit} {first.row}" + (f" field {first.field!r}" if first.field else "")
    return (
        f"{result.uri}: {len(result.rejected)} of {result.total} records rejected "
        f"({100 * result.reject_fraction:.1f}%) > max_reject_fraction {100 * cfg.max_reject_fraction:g}%: "
        f"{format_counts(result.counts())}; first: {where}: {first.message} ({first.reason}); "
        f"every rejected row is in {report_uri}"
    )


def run(cfg: DataPrepConfig, input_uri: str, out_dir: str, tokenizer: Any = None) -> dict[str, Any]:
    """Validate, split and write `input_uri` into `out_dir`; returns the report (also in report.json)."""
    # setup
    spec = kind_spec(cfg.kind)
    if tokenizer is None and cfg.tokenizer:
        tokenizer = load_tokenizer(cfg.tokenizer)
    report_uri = join(out_dir, "report.json")

    # validate and split
    try:
        result = validate(input_uri, cfg.kind, tokenizer, cfg.max_length)
    except (DataInputError, StorageError) as err:
        raise DataPrepError(str(err)) from None
    train, held = split(result.accepted, cfg.eval_fraction, cfg.seed, spec.prompt_of)
    train, overlap = remove_overlap(train, held, spec.prompt_of, spec.prompt_field, result.row_unit)
    result.accepted = sorted(train + held, key=lambda a: a[0])
    result.rejected.extend(overlap)

    report = result.report() | {
        "train": len(train),
        "eval": len(held),
        "source_rows": {"train": [row for row, _ in train], "eval": [row for row, _ in held]},
        "settings": cfg.model_dump(),
        "tokenizer_checks": tokenizer is not None,
    }
    failure = None
    if result.total == 0:
        failure = no_records_message(input_uri)
    elif result.reject_fraction > cfg.max_reject_fraction:
        failure = _gate_message(result, cfg, report_uri)
    elif not train:
        failure = f"{input_uri}: no records left for train ({len(held)} eval, {len(result.rejected)} rejected)"

    # save: on failure only the report, so nothing at out_dir looks like usable data
    report["ok"] = failure is None
    if failure:
        for name in OUTPUT_FILES:
            remove(join(out_dir, name))
        write_json(report_uri, report)
        raise DataPrepError(failure)
    write_jsonl(join(out_dir, "train.jsonl"), (r for _, r in train))
    write_jsonl(join(out_dir, "eval.jsonl"), (r for _, r in held))
    write_json(report_uri, report)  # last: its presence with ok=true marks a complete output
    _print_summary(result, report, out_dir)
    return report


def _print_summary(result: ValidationResult, report: dict[str, Any], out_dir: str) -> None:
    print(f"data_prep ({result.kind}): {summary_line(result)}")
    print(f"  train {report['train']}  eval {report['eval']}  -> {out_dir} (train.jsonl, eval.jsonl, report.json)")
    for r in result.sorted_rejections()[:5]:
        print("  " + format_rejection(result.uri, r))
    if len(result.rejected) > 5:
        print(f"  ... {len(result.rejected) - 5} more in report.json")


def validate_command(
    kind: str, path: str, report_path: str | None = None, tokenizer: Any = None, max_length: int = 512
) -> int:
    """`kubealign validate KIND PATH [--report FILE]`: 0 all accepted, 1 any rejected, 2 unreadable input.

    A file with no records at all is unusable input (2), as data prep also refuses it.

    `tokenizer` may be a tokenizer object or a URI to load one from; without it only the
    tokenizer-free checks run.
    """
    try:
        if isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer)
        result = validate(path, kind, tokenizer, max_length if tokenizer is not None else None)
    except (DataInputError, StorageError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if report_path:
        write_json(report_path, result.report())
    if result.total == 0:
        print(f"error: {no_records_message(path)}", file=sys.stderr)
        return 2
    for r in result.sorted_rejections():
        print(format_rejection(path, r))
    print(summary_line(result))
    return 1 if result.rejected else 0


__all__ = ["DataPrepError", "load_tokenizer", "remove_overlap", "run", "split", "validate_command"]
