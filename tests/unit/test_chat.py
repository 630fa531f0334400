"""Chat templating and the assistant-only loss mask, on a real templated conversation.

Real: the tiny byte-level BPE tokenizer with a ChatML template (tests/conftest.py), rendered by
transformers' own `apply_chat_template`.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from kubealign.data.chat import (
    IGNORE_INDEX,
    render_ids,
    tokenize_preference,
    tokenize_prompt,
    tokenize_sft,
)

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And what is 2+2?"},
    {"role": "assistant", "content": "2+2=4."},
]


def labelled_spans(tokenizer, input_ids: list[int], labels: list[int]) -> list[str]:
    """Decode each maximal run of label-positive tokens."""
    spans, run = [], []
    for tok, lab in zip(input_ids, labels, strict=True):
        if lab != IGNORE_INDEX:
            assert lab == tok  # labels are the inputs themselves; the model shifts them
            run.append(tok)
        elif run:
            spans.append(tokenizer.decode(run))
            run = []
    if run:
        spans.append(tokenizer.decode(run))
    return spans


def test_sft_mask_covers_exactly_the_assistant_turns(tiny_tokenizer) -> None:
    out = tokenize_sft(tiny_tokenizer, CONVERSATION, max_length=512)
    assert out["input_ids"] == render_ids(tiny_tokenizer, CONVERSATION)
    assert tiny_tokenizer.decode(out["input_ids"]) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n"
        "<|im_start|>user\nAnd what is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n2+2=4.<|im_end|>\n"
    )
    # Each assistant turn as the model must produce it: content, end-of-turn token and the newline the
    # template puts inside the turn; nothing from system/user turns or the assistant header.
    assert labelled_spans(tiny_tokenizer, out["input_ids"], out["labels"]) == [
        "The capital of France is Paris.<|im_end|>\n",
        "2+2=4.<|im_end|>\n",
    ]
    end_ids = [i for i, t in enumerate(out["input_ids"]) if t == tiny_tokenizer.eos_token_id]
    assert [out["labels"][i] != IGNORE_INDEX for i in end_ids] == [False, False, True, False, True]


def test_sft_truncates_on_the_right(tiny_tokenizer) -> None:
    full = tokenize_sft(tiny_tokenizer, CONVERSATION, max_length=512)
    cut = tokenize_sft(tiny_tokenizer, CONVERSATION, max_length=40)
    assert len(cut["input_ids"]) == len(cut["labels"]) == 40
    assert cut["input_ids"] == full["input_ids"][:40] and cut["labels"] == full["labels"][:40]


def test_control_tokens_in_content_stay_text(tiny_tokenizer) -> None:
    messages = [{"role": "user", "content": "Say <|im_end|> please."}, {"role": "assistant", "content": "Ok."}]
    ids = render_ids(tiny_tokenizer, messages)
    assert ids.count(tiny_tokenizer.eos_token_id) == 2  # only the template's own end-of-turn tokens
    assert "Say <|im_end|> please." in tiny_tokenizer.decode(ids)


def test_preference_splits_prompt_and_responses(tiny_tokenizer) -> None:
    prompt = CONVERSATION[:2]
    chosen = [{"role": "assistant", "content": "Paris."}]
    rejected = [{"role": "assistant", "content": "It is London, I think."}]
    out = tokenize_preference(tiny_tokenizer, prompt, chosen, rejected, max_length=512)
    assert out["prompt_ids"] == tokenize_prompt(tiny_tokenizer, prompt)
    assert tiny_tokenizer.decode(out["prompt_ids"]).endswith("France?<|im_end|>\n<|im_start|>assistant\n")
    assert tiny_tokenizer.decode(out["chosen_ids"]) == "Paris.<|im_end|>\n"
    assert tiny_tokenizer.decode(out["rejected_ids"]) == "It is London, I think.<|im_end|>\n"
    assert out["prompt_ids"] + out["chosen_ids"] == render_ids(tiny_tokenizer, prompt + chosen)

    n = len(out["prompt_ids"])
    short = tokenize_preference(tiny_tokenizer, prompt, chosen, rejected, max_length=n + 3)
    assert short["prompt_ids"] == out["prompt_ids"]
    assert short["chosen_ids"] == out["chosen_ids"][:3] and short["rejected_ids"] == out["rejected_ids"][:3]
    with pytest.raises(ValueError, match="no room for a response"):
        tokenize_preference(tiny_tokenizer, prompt, chosen, rejected, max_length=n)


def test_template_that_rewrites_history_is_refused(tiny_tokenizer_dir) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)  # a private copy to change the template of
    # Drops earlier assistant turns' content (as reasoning templates drop past thinking): adding a
    # turn changes tokens already rendered, so a response-only mask cannot be derived.
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}...{% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(ValueError, match="breaks the prefix property"):
        tokenize_sft(tok, CONVERSATION, max_length=512)


def test_tokenizer_without_template_is_a_clear_error(tiny_tokenizer_dir) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tok.chat_template = None
    with pytest.raises(ValueError, match="has no chat_template"):
        render_ids(tok, CONVERSATION[:2])
