"""Evaluation prompt sets as inputs: a team's own JSONL (local or s3://), the packaged sets by default.

Real: files on disk, s3fs against moto in server mode on 127.0.0.1, the packaged prompt sets.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kubealign import storage
from kubealign.data import prompts


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_own_set_is_read_and_sampled_by_stratum(tmp_path: Path) -> None:
    rows = [{"prompt": f"question {i}", "category": "a" if i < 6 else "b"} for i in range(8)]
    uri = _write(tmp_path / "own.jsonl", [json.dumps(r) for r in rows])
    assert prompts.load_prompt_set("benign_edgy", uri) == rows
    sample = prompts.load_prompt_set("benign_edgy", uri, limit=4, seed=1)
    # 6 of 8 are "a": 4 * 6/8 = 3 of them, 4 * 2/8 = 1 "b"; the same seed gives the same sample
    assert Counter(r["category"] for r in sample) == {"a": 3, "b": 1}
    assert sample == prompts.load_prompt_set("benign_edgy", uri, limit=4, seed=1)
    assert prompts.as_conversations(sample[:1]) == [[{"role": "user", "content": sample[0]["prompt"]}]]


def test_a_set_without_stratum_field_is_one_stratum(tmp_path: Path) -> None:
    uri = _write(tmp_path / "plain.jsonl", [json.dumps({"prompt": f"p{i}"}) for i in range(5)])
    assert len(prompts.load_prompt_set("harmful", uri, limit=2, seed=0)) == 2


def test_packaged_sets_are_the_default() -> None:
    assert prompts.load_prompt_set("helpful") == prompts.read_prompt_set(prompts.packaged_uri("helpful"))
    assert len(prompts.load_prompt_set("helpful")) == 112  # 80 MT-Bench + 32 written for kubealign (>= 100)


def test_every_bad_row_is_named_with_file_row_and_field(tmp_path: Path) -> None:
    uri = _write(tmp_path / "bad.jsonl", [
        json.dumps({"prompt": "fine", "risk_area": "x"}),
        json.dumps({"text": "no prompt field"}),
        json.dumps({"prompt": "   "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"prompt": "ok", "risk_area": 3}),
        '{"prompt": "cut off',
    ])
    with pytest.raises(prompts.PromptSetError) as err:
        prompts.load_prompt_set("harmful", uri)
    msg = str(err.value)
    assert msg.startswith(f"{uri}: 5 bad row(s): ")
    assert "row 2: field prompt: expected a non-empty string, got nothing" in msg
    assert "row 3: field prompt: expected a non-empty string, got '   '" in msg
    assert "row 4: field (record): wrong_type: expected a JSON object" in msg  # io.iter_rows rejects it
    assert "row 5: field risk_area: expected a string (the sampling stratum), got int" in msg
    assert "row 6: field (record): unparseable_line" in msg and "row 1:" not in msg


def test_empty_set_and_unknown_name(tmp_path: Path) -> None:
    uri = _write(tmp_path / "empty.jsonl", [""])
    with pytest.raises(prompts.PromptSetError, match="empty.jsonl: no prompts"):
        prompts.load_prompt_set("harmful", uri)
    with pytest.raises(ValueError, match="unknown prompt set 'nope'; valid names: benign_edgy, harmful, helpful"):
        prompts.load_prompt_set("nope")


def test_set_on_s3(s3_bucket: str) -> None:
    uri = f"{s3_bucket}/eval/harmful.jsonl"
    storage.write_bytes(uri, b'{"prompt": "on s3", "risk_area": "r"}\n')
    assert prompts.load_prompt_set("harmful", uri) == [{"prompt": "on s3", "risk_area": "r"}]
