"""Check every record of a file; accept the good ones, report each bad one with its row and reason.

Per record, in order (the first failing check is the one reported):
1. readable: UTF-8, JSON, an object (`io.iter_rows`);
2. schema of its kind, normalised (`records.normalise_*`): fields, types, roles, prompt ends with user,
   chosen differs from rejected;
3. not an exact duplicate of an earlier accepted record (compared after normalisation);
4. with a tokenizer only: the templated prompt leaves room for a response within max_length, and
   chosen still differs from rejected after tokenization and truncation.
Train/eval overlap needs the split, so `stages.data_prep` adds that reason.

Kinds are looked up in `KINDS`; each adds one `KindSpec`. The safety kind checks category codes
against Llama Guard 3's S1-S14; `safety_spec(taxonomy)` builds the same checks for another taxonomy.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubealign.config import ConfigError
from kubealign.data.chat import render_ids, tokenize_preference, tokenize_prompt
from kubealign.data.io import iter_rows, row_unit
from kubealign.data.records import (
    Invalid,
    Message,
    Reason,
    Rejection,
    canonical,
    normalise_preference,
    normalise_safety,
    normalise_sft,
    preference_prompt,
    safety_prompt,
    sft_prompt,
)

TokenCheck = Callable[[Any, dict[str, Any], int], None]  # (tokenizer, record, max_length); raises Invalid


@dataclass(frozen=True)
class KindSpec:
    """How to check one record kind."""

    normalise: Callable[[dict[str, Any]], dict[str, Any]]  # raises Invalid
    prompt_of: Callable[[dict[str, Any]], list[Message]]  # what must not appear in both train and eval
    prompt_field: str  # the field named in train_eval_overlap rejections
    token_check: TokenCheck | None = None


def _check_room(tokenizer: Any, prompt: list[Message], max_length: int, field: str) -> list[int]:
    prompt_ids = tokenize_prompt(tokenizer, prompt)
    if len(prompt_ids) >= max_length - 1:
        raise Invalid(
            Reason.NO_ROOM_FOR_RESPONSE,
            field,
            f"expected the templated prompt to leave room for a response: it is {len(prompt_ids)} tokens "
            f"and max_length is {max_length}",
        )
    return prompt_ids


def _check_extends(tokenizer: Any, before: list[int], after: list[int], field: str, text: str) -> None:
    """Training masks a reply as `after[len(before):]`, which is right only if `before` is a prefix of `after`.

    Byte-level BPE breaks that when the reply starts with whitespace that merges with the assistant
    header's newline (a reply of "\\n\\nHi" after "assistant\\n"); `data.chat` then stops training.
    """
    if after[: len(before)] == before:
        return
    at = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), len(after))
    raise Invalid(
        Reason.TEMPLATE_MISMATCH,
        field,
        f"expected the chat template to render this turn by appending tokens to the conversation before it; "
        f"token {at} changes from {tokenizer.decode(before[at:at + 4])!r} to {tokenizer.decode(after[at:at + 4])!r} "
        f"(the text starts {text[:12]!r}; leading whitespace is the usual cause: strip it)",
    )


def _sft_token_check(tokenizer: Any, record: dict[str, Any], max_length: int) -> None:
    messages = record["messages"]
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    _check_room(tokenizer, messages[:first], max_length, "messages")
    full = render_ids(tokenizer, messages)
    for i in range(first, len(messages), 2):  # the same checks as data.chat.assistant_spans
        field, text = f"messages[{i}].content", messages[i]["content"]
        through = render_ids(tokenizer, messages[: i + 1])
        _check_extends(tokenizer, tokenize_prompt(tokenizer, messages[:i]), through, field, text)
        if i + 1 < len(messages):  # the next turn must not re-tokenize this one's end either
            _check_extends(tokenizer, through, full, f"messages[{i + 1}].content", messages[i + 1]["content"])


def _preference_token_check(tokenizer: Any, record: dict[str, Any], max_length: int) -> None:
    prompt_ids = _check_room(tokenizer, record["prompt"], max_length, "prompt")
    for name in ("chosen", "rejected"):  # the check data.chat.tokenize_preference stops on
        response = record[name]
        full = render_ids(tokenizer, [*record["prompt"], *response])
        _check_extends(tokenizer, prompt_ids, full, f"{name}[0].content", response[0]["content"])
    ids = tokenize_preference(tokenizer, record["prompt"], record["chosen"], record["rejected"], max_length)
    if ids["chosen_ids"] == ids["rejected_ids"]:
        raise Invalid(
            Reason.IDENTICAL_CHOSEN_REJECTED,
            "rejected",
            f"expected a response different from 'chosen'; the two are identical after tokenization and "
            f"truncation to max_length {max_length} ({len(ids['prompt_ids'])} prompt tokens)",
        )


KINDS: dict[str, KindSpec] = {
    "sft": KindSpec(normalise_sft, sft_prompt, "messages", _sft_token_check),
    "preference": KindSpec(normalise_preference, preference_prompt, "prompt", _preference_token_check),
}


def _safety_token_check(tokenizer: Any, record: dict[str, Any], max_length: int, taxonomy: Any = None) -> None:
    """The classifier example (prompt with every category listed + target) fits in max_length."""
    from kubealign.data.chat import render_ids
    from kubealign.safety.prompt import chat_messages, render_target
    from kubealign.safety.taxonomy import DEFAULT_TAXONOMY

    taxonomy = taxonomy or DEFAULT_TAXONOMY
    target = render_target(record["label"], record["categories"], taxonomy)
    n = len(render_ids(tokenizer, chat_messages(record["messages"], record["judge_role"], taxonomy, target)))
    if n > max_length:
        raise Invalid(
            Reason.NO_ROOM_FOR_RESPONSE,
            "messages",
            f"expected the classifier example (prompt listing {len(taxonomy.categories)} categories, the "
            f"conversation and the target) to fit in max_length {max_length}; it is {n} tokens",
        )


def safety_spec(taxonomy: Any = None) -> KindSpec:
    """The safety kind checked against `taxonomy` (a `kubealign.safety.taxonomy.Taxonomy`; None = S1-S14)."""
    codes = taxonomy.codes if taxonomy is not None else None
    return KindSpec(
        lambda record: normalise_safety(record, codes),
        safety_prompt,
        "messages",
        lambda tokenizer, record, max_length: _safety_token_check(tokenizer, record, max_length, taxonomy),
    )


KINDS["safety"] = safety_spec()


def kind_spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigError(f"kind: no validator for {kind!r}; expected one of {', '.join(KINDS)}") from None


@dataclass
class ValidationResult:
    """Accepted records (with their source rows, in file order) and every rejection."""

    uri: str
    kind: str
    row_unit: str  # "line" (JSONL) or "record" (Parquet, JSON array)
    accepted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.rejected)

    @property
    def reject_fraction(self) -> float:
        return len(self.rejected) / self.total if self.total else 0.0

    def counts(self) -> dict[str, int]:
        """Rejections per reason, most frequent first."""
        return dict(Counter(r.reason for r in self.rejected).most_common())

    def sorted_rejections(self) -> list[Rejection]:
        return sorted(self.rejected, key=lambda r: r.row)

    def report(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "kind": self.kind,
            "row_unit": self.row_unit,
            "total": self.total,
            "accepted": len(self.accepted),
            "rejected": [r.to_dict() for r in self.sorted_rejections()],
            "counts": self.counts(),
        }


def validate(uri: str, kind: str, tokenizer: Any = None, max_length: int | None = None) -> ValidationResult:
    """Read and check every record at `uri`. Raises io.DataInputError only if the file itself is unreadable."""
    spec = kind_spec(kind)
    if tokenizer is not None and max_length is None:
        raise ConfigError("max_length: required when a tokenizer is given (for the tokenizer-aware checks)")
    result = ValidationResult(uri=uri, kind=kind, row_unit=row_unit(uri))
    seen: dict[bytes, int] = {}  # digest of the normalised record -> row of its first occurrence
    for row, item in iter_rows(uri):
        if isinstance(item, Rejection):
            result.rejected.append(item)
            continue
        try:
            record = spec.normalise(item)
            key = hashlib.blake2b(canonical(record).encode("utf-8"), digest_size=16).digest()
            if key in seen:
                raise Invalid(Reason.DUPLICATE, None, f"same record as {result.row_unit} {seen[key]}")
            if tokenizer is not None and spec.token_check is not None:
                spec.token_check(tokenizer, record, max_length)
        except Invalid as err:
            result.rejected.append(err.at(row))
            continue
        seen[key] = row
        result.accepted.append((row, record))
    return result


def no_records_message(uri: str) -> str:
    """The error for a file without a single record: `kubealign validate` and data prep both refuse it."""
    return f"{uri}: no records (the file is empty or has only blank lines); expected at least one record"


def format_rejection(uri: str, r: Rejection) -> str:
    """`path:row: reason: field: message` (the field part left out when there is none)."""
    where = f": {r.field}" if r.field else ""
    return f"{uri}:{r.row}: {r.reason}{where}: {r.message}"


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items())


def summary_line(result: ValidationResult) -> str:
    n_rej = len(result.rejected)
    line = (
        f"{result.uri}: {result.total} records, {len(result.accepted)} accepted, "
        f"{n_rej} rejected ({100 * result.reject_fraction:.1f}%)"
    )
    return f"{line}: {format_counts(result.counts())}" if n_rej else line


__all__ = [
    "KINDS",
    "KindSpec",
    "ValidationResult",
    "format_counts",
    "format_rejection",
    "kind_spec",
    "no_records_message",
    "safety_spec",
    "summary_line",
    "validate",
]
