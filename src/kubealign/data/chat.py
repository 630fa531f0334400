"""Chat formatting with the tokenizer's own chat template, and which tokens carry the loss.

Works with any Hugging Face tokenizer that has a `chat_template`; nothing here knows a template's
markup. Which tokens belong to an assistant turn is found by rendering prefixes of the conversation:

    before  = render(messages[:i], add_generation_prompt=True)   # ... <|im_start|>assistant\n
    through = render(messages[:i + 1])                            # ... <|im_start|>assistant\nHi<|im_end|>\n

`through[len(before):]` is turn i as the model must produce it: its content plus the template's
end-of-turn tokens (so the model learns to stop), and nothing of the next turn's header. That holds
only if each rendering extends the previous one token for token ("prefix property"); templates that
rewrite earlier turns break it, and then we stop with an error rather than mask the wrong tokens.

Control tokens typed inside message text (`<|im_end|>` in a user message) are encoded as plain text
(`sanitize_control_tokens`), so data cannot forge turn boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

IGNORE_INDEX = -100  # label value that torch's cross-entropy skips

Messages = Sequence[Mapping[str, str]]


def render_ids(tokenizer: Any, messages: Messages, add_generation_prompt: bool = False) -> list[int]:
    """Token ids of `messages` rendered with the tokenizer's chat template (no extra special tokens)."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise ValueError(f"tokenizer {name!r} has no chat_template; an instruct/chat tokenizer is needed")
    out = tokenizer.apply_chat_template(
        [dict(m) for m in messages],
        tokenize=True,
        add_generation_prompt=add_generation_prompt,
        return_dict=False,
        sanitize_control_tokens=True,
    )
    # transformers returns a BatchEncoding for return_dict=True (the default in v5) and a list
    # otherwise; accept both so other tokenizer versions/wrappers work too.
    if isinstance(out, Mapping) or hasattr(out, "keys"):
        out = out["input_ids"]
    if hasattr(out, "tolist"):
        out = out.tolist()
    if out and isinstance(out[0], list):  # a batch of one
        out = out[0]
    return [int(t) for t in out]


def tokenize_prompt(tokenizer: Any, prompt_messages: Messages) -> list[int]:
    """The prompt as the model sees it before generating: ends with the assistant header."""
    return render_ids(tokenizer, prompt_messages, add_generation_prompt=True)


def _check_prefix(tokenizer: Any, shorter: list[int], longer: list[int], what: str) -> None:
    if longer[: len(shorter)] == shorter:
        return
    at = next((i for i, (a, b) in enumerate(zip(shorter, longer, strict=False)) if a != b), len(longer))
    got = tokenizer.decode(longer[at : at + 8]) if at < len(longer) else "(end)"
    want = tokenizer.decode(shorter[at : at + 8])
    raise ValueError(
        f"chat template of {getattr(tokenizer, 'name_or_path', '') or 'the tokenizer'!r} breaks the prefix "
        f"property: {what}; first difference at token {at}: expected {want!r}, got {got!r}. Response-only "
        "masks need a template where adding a turn only appends tokens (templates that rewrite earlier "
        "turns, e.g. drop past reasoning, do not qualify)."
    )


def assistant_spans(tokenizer: Any, messages: Messages) -> tuple[list[int], list[tuple[int, int]]]:
    """Full token ids of the conversation and the [start, end) token span of every assistant turn."""
    full = render_ids(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if i == 0:
            raise ValueError("messages[0] is an assistant turn; a conversation starts with system or user")
        before = render_ids(tokenizer, messages[:i], add_generation_prompt=True)
        through = full if i == len(messages) - 1 else render_ids(tokenizer, messages[:i + 1])
        _check_prefix(
            tokenizer, before, through,
            f"messages[:{i}] with add_generation_prompt=True is not a prefix of messages[:{i + 1}]",
        )
        _check_prefix(tokenizer, through, full, f"messages[:{i + 1}] is not a prefix of the whole conversation")
        spans.append((len(before), len(through)))
    return full, spans


def tokenize_sft(tokenizer: Any, messages: Messages, max_length: int) -> dict[str, list[int]]:
    """`{"input_ids", "labels"}`, both of length <= max_length (truncated on the right).

    labels[t] = input_ids[t] on assistant turns (content + end-of-turn tokens), IGNORE_INDEX on
    system/user turns and on the assistant headers; the model shifts labels itself.
    """
    full, spans = assistant_spans(tokenizer, messages)
    labels = [IGNORE_INDEX] * len(full)
    for start, end in spans:
        labels[start:end] = full[start:end]
    return {"input_ids": full[:max_length], "labels": labels[:max_length]}


def tokenize_preference(
    tokenizer: Any, prompt: Messages, chosen: Messages, rejected: Messages, max_length: int
) -> dict[str, list[int]]:
    """`{"prompt_ids", "chosen_ids", "rejected_ids"}`: the templated prompt and each response's tokens.

    A response's tokens are render(prompt + response) minus tokenize_prompt(prompt), so they include
    the end-of-turn tokens; each is cut so that len(prompt_ids) + len(response_ids) <= max_length.
    """
    prompt_ids = tokenize_prompt(tokenizer, prompt)
    room = max_length - len(prompt_ids)
    if room < 1:
        raise ValueError(
            f"the templated prompt is {len(prompt_ids)} tokens, leaving no room for a response within "
            f"max_length {max_length} (data_prep rejects such records as no_room_for_response)"
        )
    out = {"prompt_ids": prompt_ids}
    for name, response in (("chosen", chosen), ("rejected", rejected)):
        full = render_ids(tokenizer, [*prompt, *response])
        _check_prefix(tokenizer, prompt_ids, full, f"the prompt with add_generation_prompt=True is not a prefix "
                      f"of prompt + {name}")
        out[f"{name}_ids"] = full[len(prompt_ids):][:room]
    return out


__all__ = [
    "IGNORE_INDEX",
    "assistant_spans",
    "render_ids",
    "tokenize_preference",
    "tokenize_prompt",
    "tokenize_sft",
]
