"""Record schemas: what an SFT, preference or safety record must look like, and its normalised form.

Normalised forms (what data_prep writes and every later stage reads):
- SFT: `{"messages": [...]}`: an optional leading system message, then user/assistant turns
  alternating, starting with user and ending with assistant.
- preference: `{"prompt": [...], "chosen": [{"role": "assistant", "content": ...}], "rejected": [...]}`:
  the prompt is an optional leading system message then alternating turns ending with user; a
  string prompt or response becomes a one-message list.
- safety: `{"messages": [...], "judge_role": "user"|"assistant", "label": "safe"|"unsafe",
  "categories": [...]}`: the classifier judges the last message (see `normalise_safety`).
Every message is exactly `{"role": str, "content": str}`; other keys of a record are dropped.

A normaliser either returns the normalised record or raises `Invalid` with a reason code, the field
(`messages[2].role`) and what was expected; the validator turns that into a `Rejection` with the row.
Pure Python: no tokenizer, no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Reason(str, Enum):
    """Why a record was rejected. The values are what reports and messages show."""

    UNPARSEABLE_LINE = "unparseable_line"  # not JSON, a number over 4300 digits, or nested too deep
    DUPLICATE_KEY = "duplicate_key"  # an object names a key twice (JSON parsers differ on which wins)
    INVALID_UTF8 = "invalid_utf8"
    MISSING_FIELD = "missing_field"
    EMPTY_FIELD = "empty_field"
    WRONG_TYPE = "wrong_type"
    BAD_ROLES = "bad_roles"  # unknown role name, misplaced system message, or turns not alternating
    PROMPT_NOT_USER_LAST = "prompt_not_user_last"
    IDENTICAL_CHOSEN_REJECTED = "identical_chosen_rejected"  # as text, or after tokenization+truncation
    NO_ROOM_FOR_RESPONSE = "no_room_for_response"
    TEMPLATE_MISMATCH = "template_mismatch"  # the chat template re-tokenizes the turn (prefix property)
    DUPLICATE = "duplicate"
    TRAIN_EVAL_OVERLAP = "train_eval_overlap"
    BAD_LABEL = "bad_label"  # safety: label not safe/unsafe, or categories that contradict the label
    UNKNOWN_CATEGORY = "unknown_category"  # safety: a category code the taxonomy does not have

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rejection:
    """One rejected record: its row (1-based line in JSONL, 1-based record in Parquet) and why."""

    row: int
    reason: str
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Invalid(ValueError):
    """Raised by a normaliser; carries the reason code, the offending field and what was expected."""

    def __init__(self, reason: Reason, field: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message

    def at(self, row: int) -> Rejection:
        return Rejection(row=row, reason=self.reason.value, field=self.field, message=self.message)


ROLES = ("system", "user", "assistant")
Message = dict[str, str]


EXPECTED = {
    "messages": "a list of {role, content} messages ending with an assistant turn",
    "prompt": "a string or a list of messages ending with a user turn",
    "chosen": "a string or one assistant message",
    "rejected": "a string or one assistant message",
    "label": "'safe' or 'unsafe'",
}


def _require(record: dict[str, Any], field: str) -> Any:
    if record.get(field) is None:
        state = "missing" if field not in record else "null"
        raise Invalid(Reason.MISSING_FIELD, field, f"field '{field}' is {state}; expected {EXPECTED[field]}")
    return record[field]


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Invalid(Reason.WRONG_TYPE, field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise Invalid(Reason.EMPTY_FIELD, field, "expected non-blank text, got " + json.dumps(value))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # JSON escapes can spell lone surrogates such as "\ud800"
        bad = value[err.start]
        raise Invalid(
            Reason.INVALID_UTF8, field, f"expected valid Unicode text, got a lone surrogate U+{ord(bad):04X}"
        ) from None
    return value


def _message(value: Any, field: str) -> Message:
    if not isinstance(value, dict):
        raise Invalid(
            Reason.WRONG_TYPE, field, f"expected an object with 'role' and 'content', got {type(value).__name__}"
        )
    if value.get("role") is None:
        raise Invalid(Reason.MISSING_FIELD, f"{field}.role", "field 'role' is missing or null")
    role = value["role"]
    if not isinstance(role, str):
        raise Invalid(Reason.WRONG_TYPE, f"{field}.role", f"expected a string, got {type(role).__name__}")
    if role not in ROLES:
        raise Invalid(Reason.BAD_ROLES, f"{field}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
    if value.get("content") is None:
        raise Invalid(Reason.MISSING_FIELD, f"{field}.content", "field 'content' is missing or null")
    return {"role": role, "content": _text(value["content"], f"{field}.content")}


def _messages(value: Any, field: str) -> list[Message]:
    if not isinstance(value, list):
        raise Invalid(Reason.WRONG_TYPE, field, f"expected a list of messages, got {type(value).__name__}")
    if not value:
        raise Invalid(Reason.EMPTY_FIELD, field, "expected at least one message, got []")
    return [_message(m, f"{field}[{i}]") for i, m in enumerate(value)]


def _check_turns(messages: list[Message], field: str) -> None:
    """Optional system first, then user/assistant alternating from user."""
    start = 1 if messages[0]["role"] == "system" else 0
    for i, m in enumerate(messages[start:], start):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if m["role"] == "system":
            raise Invalid(Reason.BAD_ROLES, f"{field}[{i}].role", "expected a system message only as the first")
        if m["role"] != expected:
            raise Invalid(
                Reason.BAD_ROLES,
                f"{field}[{i}].role",
                f"expected {expected!r} (turns alternate user, assistant, ... after an optional system "
                f"message), got {m['role']!r}",
            )


def _conversation_or_text(value: Any, field: str, text_role: str) -> list[Message]:
    if isinstance(value, str):
        return [{"role": text_role, "content": _text(value, field)}]
    if isinstance(value, list):
        return _messages(value, field)
    raise Invalid(
        Reason.WRONG_TYPE, field, f"expected a string or a list of messages, got {type(value).__name__}"
    )


def normalise_sft(record: dict[str, Any]) -> dict[str, Any]:
    """`{"messages": [...]}` ending with an assistant turn; raises Invalid otherwise."""
    messages = _messages(_require(record, "messages"), "messages")
    _check_turns(messages, "messages")
    if messages[-1]["role"] != "assistant":
        last = len(messages) - 1
        raise Invalid(
            Reason.BAD_ROLES,
            f"messages[{last}].role",
            f"expected the conversation to end with 'assistant', got {messages[-1]['role']!r}",
        )
    return {"messages": messages}


def _response(value: Any, field: str) -> list[Message]:
    messages = _conversation_or_text(value, field, "assistant")
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise Invalid(Reason.BAD_ROLES, field, f"expected one assistant message, got roles {roles}")
    return messages


def normalise_preference(record: dict[str, Any]) -> dict[str, Any]:
    """`{"prompt": [... user], "chosen": [assistant], "rejected": [assistant]}`; raises Invalid otherwise."""
    for field in ("prompt", "chosen", "rejected"):
        _require(record, field)
    prompt = _conversation_or_text(record["prompt"], "prompt", "user")
    _check_turns(prompt, "prompt")
    if prompt[-1]["role"] != "user":
        raise Invalid(
            Reason.PROMPT_NOT_USER_LAST,
            f"prompt[{len(prompt) - 1}].role",
            f"expected the prompt to end with a 'user' turn, got {prompt[-1]['role']!r}",
        )
    chosen = _response(record["chosen"], "chosen")
    rejected = _response(record["rejected"], "rejected")
    if chosen == rejected:
        raise Invalid(Reason.IDENTICAL_CHOSEN_REJECTED, "rejected", "expected a response different from 'chosen'")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


SAFETY_LABELS = ("safe", "unsafe")
JUDGE_ROLES = ("user", "assistant")


def _safety_categories(record: dict[str, Any], label: str, codes: Sequence[str]) -> list[str]:
    value = record.get("categories")
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise Invalid(Reason.WRONG_TYPE, "categories", f"expected a list of category codes, got {json.dumps(value)[:60]}")
    if label == "unsafe" and not value:
        raise Invalid(Reason.EMPTY_FIELD, "categories",
                      "expected at least one violated category for an unsafe record, e.g. [\"S1\"]")
    if label == "safe" and value:
        raise Invalid(Reason.BAD_LABEL, "categories",
                      f"expected no categories for a safe record, got {value} (label it 'unsafe' or drop them)")
    for i, code in enumerate(value):
        if code not in codes:
            raise Invalid(Reason.UNKNOWN_CATEGORY, f"categories[{i}]",
                          f"expected a code of the taxonomy ({', '.join(codes)}), got {code!r}")
    return [c for c in codes if c in value]  # taxonomy order, duplicates dropped


def normalise_safety(record: dict[str, Any], codes: Sequence[str] | None = None) -> dict[str, Any]:
    """`{"messages", "judge_role", "label", "categories"}` for the safety classifier; raises Invalid otherwise.

    messages: optional system message then alternating user/assistant turns from user, ending with the
    message to judge; judge_role: "user" or "assistant", default the role of the last message, and it
    must be that role; label: "safe" or "unsafe"; categories: violated codes, non-empty iff unsafe, each
    in the taxonomy (`codes`; default Llama Guard 3's S1-S14), normalised to taxonomy order.
    """
    if codes is None:
        from kubealign.safety.taxonomy import DEFAULT_TAXONOMY

        codes = DEFAULT_TAXONOMY.codes
    messages = _messages(_require(record, "messages"), "messages")
    _check_turns(messages, "messages")
    last = len(messages) - 1
    if messages[-1]["role"] not in JUDGE_ROLES:
        raise Invalid(Reason.BAD_ROLES, f"messages[{last}].role",
                      "expected the conversation to end with the user or assistant message to judge")
    judge_role = record.get("judge_role")
    if judge_role is None:
        judge_role = messages[-1]["role"]
    if not isinstance(judge_role, str):
        raise Invalid(Reason.WRONG_TYPE, "judge_role", f"expected a string, got {type(judge_role).__name__}")
    if judge_role not in JUDGE_ROLES:
        raise Invalid(Reason.BAD_ROLES, "judge_role", f"expected 'user' or 'assistant', got {judge_role!r}")
    if judge_role != messages[-1]["role"]:
        raise Invalid(Reason.BAD_ROLES, "judge_role",
                      f"expected the role of the last message ({messages[-1]['role']!r}): the classifier judges "
                      f"the last message; got {judge_role!r}")
    label = _require(record, "label")
    if label not in SAFETY_LABELS:
        raise Invalid(Reason.BAD_LABEL, "label", f"expected 'safe' or 'unsafe', got {json.dumps(label)[:60]}")
    categories = _safety_categories(record, label, codes)
    return {"messages": messages, "judge_role": judge_role, "label": label, "categories": categories}


def safety_prompt(record: dict[str, Any]) -> list[Message]:
    """The conversation before the judged agent reply (or through the judged user message).

    A harmful request judged on its own and the same request with a refusal judged as the agent's
    reply share this key, so the split keeps them on the same side.
    """
    messages = record["messages"]
    return messages[:-1] if record["judge_role"] == "assistant" else messages


def sft_prompt(record: dict[str, Any]) -> list[Message]:
    """The conversation up to (not including) the last assistant turn."""
    return record["messages"][:-1]


def preference_prompt(record: dict[str, Any]) -> list[Message]:
    return record["prompt"]


def canonical(obj: Any) -> str:
    """A stable text key for exact comparisons (duplicates, prompt groups)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def loose_key(messages: list[Message]) -> str:
    """Prompt key that ignores case and whitespace: catches near-copies across the split."""
    return canonical([[m["role"], " ".join(m["content"].casefold().split())] for m in messages])


__all__ = [
    "Invalid",
    "Message",
    "Reason",
    "Rejection",
    "canonical",
    "loose_key",
    "normalise_preference",
    "normalise_safety",
    "normalise_sft",
    "preference_prompt",
    "safety_prompt",
    "sft_prompt",
]
