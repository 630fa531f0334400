"""Shared by the two graphs' tests: a small SFT + preference dataset."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """12 SFT conversations and 12 preference pairs (chosen: an answer; rejected: a refusal) as JSONL."""
    d = tmp_path_factory.mktemp("e2e-data")
    topics = ["the sun", "a river", "the moon", "a tree", "my dog", "the city", "python code", "a cat",
              "water", "a bird", "the sky", "a list"]
    sft = [{"messages": [{"role": "user", "content": f"Write a short line about {t}."},
                         {"role": "assistant", "content": f"Here is {t}, simple and short."}]} for t in topics]
    pref = [{"prompt": f"Explain {t} in one line.", "chosen": f"{t.capitalize()} is simple.",
             "rejected": "Sorry, I cannot help with that question at all."} for t in topics]
    (d / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    (d / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pref))
    return {"sft": str(d / "sft.jsonl"), "pref": str(d / "pref.jsonl")}
