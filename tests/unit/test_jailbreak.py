"""Jailbreak framings around harmful prompts: the packaged templates, the seeded wrapping, bad rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kubealign.data import jailbreak
from kubealign.data.prompts import PromptSetError


def test_packaged_templates_cover_three_framings_evenly() -> None:
    templates = jailbreak.read_templates()
    assert Counter(t["framing"] for t in templates) == {"roleplay": 3, "ignore_instructions": 3, "fiction": 3}
    assert all(t["template"].count("{prompt}") == 1 for t in templates)


def test_wrap_is_seeded_and_deals_every_template_in_turn() -> None:
    templates = [{"template": "A: {prompt}", "framing": "a"}, {"template": "{prompt} (B)", "framing": "b"},
                 {"template": "C {prompt} C", "framing": "c"}]
    rows = [{"prompt": f"q{i} {{x}}"} for i in range(6)]
    wrapped = jailbreak.wrap(rows, templates, seed=3)
    assert wrapped == jailbreak.wrap(rows, templates, seed=3)
    assert [w["request"] for w in wrapped] == [r["prompt"] for r in rows]
    # six prompts, three templates: each template twice, the same order in both rounds
    assert Counter(w["framing"] for w in wrapped) == {"a": 2, "b": 2, "c": 2}
    assert [w["framing"] for w in wrapped[:3]] == [w["framing"] for w in wrapped[3:]]
    first = {"a": "A: q0 {x}", "b": "q0 {x} (B)", "c": "C q0 {x} C"}[wrapped[0]["framing"]]
    assert wrapped[0]["prompt"] == first  # braces in a prompt survive (str.replace, not format)


def test_bad_template_rows_are_named_with_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([json.dumps({"template": "ok {prompt}", "framing": "f"}),
                               json.dumps({"template": "no placeholder", "framing": "f"}),
                               json.dumps({"template": "x {prompt}"})]) + "\n")
    with pytest.raises(PromptSetError) as err:
        jailbreak.read_templates(str(path))
    msg = str(err.value)
    assert f"{path}: 2 bad row(s)" in msg
    assert "row 2: field template: expected a string holding {prompt} exactly once" in msg
    assert "row 3: field framing: expected a non-empty string" in msg
