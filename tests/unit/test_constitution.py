"""The constitution file (schema, errors), pair selection on hand-made scores, and the train / held-out
prompt split. Real: pydantic, YAML files on disk, the packaged prompt sets; no model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubealign.cli import main
from kubealign.config import ConfigError
from kubealign.constitution import load_constitution, parse_constitution, select_pair, weighted_totals
from kubealign.data.prompts import load_prompt_set, read_prompt_set
from kubealign.prompt_split import split_prompt_sets


def _principle(**over: object) -> dict[str, object]:
    base = {"name": "refuse", "text": "Decline harm.", "applies_to": "harmful", "judge": "refusal",
            "prefers": "refuse", "weight": 2.0}
    return {**base, **over}


def test_default_constitution_loads() -> None:
    c = load_constitution()
    assert [p.name for p in c.principles] == ["refuse-harmful", "serve-benign", "concise"]
    assert [p.name for p in c.for_label("harmful")] == ["refuse-harmful", "concise"]
    assert [p.name for p in c.for_label("benign")] == ["serve-benign", "concise"]
    assert c.judges() == {"refusal", "length"}


@pytest.mark.parametrize(("principle", "expected"), [
    (_principle(judge="oracle"), "my.yaml: principles.0.judge: Input should be 'refusal', 'safety', 'reward', "
                                 "'endpoint' or 'length' (got \"oracle\")"),
    (_principle(judge="safety", prefers="refuse"),
     "my.yaml: principles.0: Value error, judge 'safety' cannot score prefers='refuse'; expected one of harmless"),
    (_principle(weight=0), "my.yaml: principles.0.weight: Input should be greater than 0 (got 0)"),
    (_principle(applies_to="everyone"), "my.yaml: principles.0.applies_to: Input should be 'harmful', 'benign' or "
                                        "'all' (got \"everyone\")"),
    (_principle(colour="red"), "my.yaml: principles.0.colour: Extra inputs are not permitted"),
    ({k: v for k, v in _principle().items() if k != "text"}, "my.yaml: principles.0.text: Field required"),
])
def test_schema_errors_name_file_and_field(principle: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_constitution({"principles": [principle]}, "my.yaml")
    assert expected in str(err.value)


def test_duplicate_names_and_empty_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"principles.1.name: 'refuse' is used twice"):
        parse_constitution({"principles": [_principle(), _principle()]}, "c.yaml")
    with pytest.raises(ConfigError, match=r"c.yaml: principles: List should have at least 1 item"):
        parse_constitution({"principles": []}, "c.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("principles: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML"):
        load_constitution(str(bad))
    with pytest.raises(ConfigError, match=r"missing.yaml: constitution file not found"):
        load_constitution(str(tmp_path / "missing.yaml"))


def test_cli_check_reports_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"principles": [_principle(prefers="concise")]}))
    assert main(["preferences", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: principles.0: Value error, judge 'refusal' cannot score prefers='concise'" in err
    assert "Traceback" not in err


def test_weighted_totals_by_hand() -> None:
    c = parse_constitution({"principles": [
        _principle(), _principle(name="serve", applies_to="benign", prefers="serve", weight=3.0),
        _principle(name="short", applies_to="all", judge="length", prefers="concise", weight=0.5)]}, "c")
    scores = {"refuse": [1.0, 0.0, 1.0], "serve": [0.0, 1.0, 1.0], "short": [0.2, 0.8, 0.4]}
    # harmful: 2*refuse + 0.5*short = [2.1, 0.4, 2.2]; benign: 3*serve + 0.5*short = [0.1, 3.4, 3.2]
    assert weighted_totals(c, "harmful", scores) == pytest.approx([2.1, 0.4, 2.2])
    assert weighted_totals(c, "benign", scores) == pytest.approx([0.1, 3.4, 3.2])


def test_select_pair_margin_ties_and_weights() -> None:
    assert select_pair([2.1, 0.4, 2.2], margin=0.0) == (2, 1)
    assert select_pair([2.1, 0.4, 2.2], margin=1.7) == (2, 1)  # 1.8 > 1.7
    assert select_pair([2.0, 0.5, 1.0], margin=1.5) is None  # 1.5 is not more than 1.5
    assert select_pair([1.0, 3.0, 3.0, 0.0, 0.0], margin=0.0) == (1, 3)  # ties: the earliest best and worst
    assert select_pair([1.0, 1.0, 1.0], margin=0.0) is None  # nothing to prefer
    assert select_pair([1.0], margin=0.0) is None
    # the weights decide: raising concise's weight flips which response wins on a harmful prompt
    light = parse_constitution({"principles": [_principle(weight=1.0), _principle(
        name="short", applies_to="all", judge="length", prefers="concise", weight=0.5)]}, "c")
    heavy = parse_constitution({"principles": [_principle(weight=1.0), _principle(
        name="short", applies_to="all", judge="length", prefers="concise", weight=3.0)]}, "c")
    scores = {"refuse": [1.0, 0.0], "short": [0.1, 0.9]}  # a long refusal vs a short compliance
    assert select_pair(weighted_totals(light, "harmful", scores), 0.0) == (0, 1)  # 1.05 vs 0.45
    assert select_pair(weighted_totals(heavy, "harmful", scores), 0.0) == (1, 0)  # 1.3 vs 2.7


def test_split_keeps_held_out_prompts_out_of_training(tmp_path: Path) -> None:
    counts = split_prompt_sets(tmp_path, held_out_fraction=0.3, seed=0)
    train = read_prompt_set(str(tmp_path / "train.jsonl"), "label")
    train_prompts = {r["prompt"] for r in train}
    sizes = {"harmful": 938, "benign_edgy": 150, "helpful": 112}  # lines in the packaged files
    for name, size in sizes.items():
        held = read_prompt_set(str(tmp_path / "held_out" / f"{name}.jsonl"), "x")
        assert counts[name]["train"] + counts[name]["held_out"] == size
        assert 0.2 * size < len(held) < 0.4 * size  # ~30% by hash
        assert not {r["prompt"] for r in held} & train_prompts, name
    assert {r["label"] for r in train if r["set"] == "harmful"} == {"harmful"}
    assert {r["label"] for r in train if r["set"] != "harmful"} == {"benign"}
    # what evaluate samples from the held-out files (its stratified sampler) never reached training
    for name, limit in (("harmful", 24), ("benign_edgy", 24), ("helpful", 16)):
        sample = load_prompt_set(name, str(tmp_path / "held_out" / f"{name}.jsonl"), limit=limit, seed=0)
        assert len(sample) == limit and not {r["prompt"] for r in sample} & train_prompts
    # the split is a function of (seed, text): the same again, and a different seed moves prompts
    again = tmp_path / "again"
    assert split_prompt_sets(again, 0.3, 0) == counts
    assert (again / "train.jsonl").read_text() == (tmp_path / "train.jsonl").read_text()
    assert split_prompt_sets(tmp_path / "other", 0.3, 1) != counts


def test_split_default_fractions_hold_out_100_per_set_and_leak_nothing(tmp_path: Path) -> None:
    counts = split_prompt_sets(tmp_path)  # DEFAULT_HELD_OUT: harmful 0.3, benign_edgy 0.7, helpful 0.9
    assert {n: c["held_out"] for n, c in counts.items()} == {"harmful": 309, "benign_edgy": 110, "helpful": 99}
    train_prompts = {r["prompt"].strip() for r in read_prompt_set(str(tmp_path / "train.jsonl"), "label")}
    held = {r["prompt"].strip() for n in counts
            for r in read_prompt_set(str(tmp_path / "held_out" / f"{n}.jsonl"), "x")}
    assert train_prompts and not held & train_prompts
    assert split_prompt_sets(tmp_path / "one", {"benign_edgy": 0.5})["benign_edgy"]["held_out"] < 110
    with pytest.raises(ValueError, match=r"held_out_fraction\[helpful\]: expected a number between 0 and 1"):
        split_prompt_sets(tmp_path / "bad", {"helpful": 1.0})
    with pytest.raises(ValueError, match="unknown prompt set 'toxic'"):
        split_prompt_sets(tmp_path / "bad", {"toxic": 0.5})


def test_split_cli_fractions_parse_to_per_set_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a bare number sets every set; set=number pairs after it override one set
    assert main(["preferences", "split", "--out", str(tmp_path / "a"), "--held-out-fraction", "0.3,harmful=0.5"]) == 0
    assert split_prompt_sets(tmp_path / "b", {"harmful": 0.5, "benign_edgy": 0.3, "helpful": 0.3}) == {
        name: {"train": int(t), "held_out": int(h)} for name, t, h in
        re.findall(r"(\w+): (\d+) train, (\d+) held out", capsys.readouterr().out)}
    assert main(["preferences", "split", "--out", str(tmp_path / "c"), "--held-out-fraction", "abc"]) == 2
    assert "--held-out-fraction: expected a number or set=number pairs, got 'abc'" in capsys.readouterr().err


def test_accuracy_by_label_by_hand() -> None:
    from kubealign.constitution import accuracy_by_label

    labels = ["harmful", "harmful", "harmful", "benign", "benign", None]
    chosen = [1.0, 2.0, 0.0, 1.0, 0.0, 5.0]
    rejected = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # harmful: right, right, wrong; benign: right, tie (= wrong)
    out = accuracy_by_label(labels, chosen, rejected)
    assert out["eval/accuracy/harmful"] == pytest.approx(2 / 3) and out["eval/accuracy/harmful/n"] == 3
    assert out["eval/accuracy/benign"] == pytest.approx(1 / 2) and out["eval/accuracy/benign/n"] == 2
    for label in ("harmful", "benign"):
        assert 0 <= out[f"eval/accuracy/{label}/low"] <= out[f"eval/accuracy/{label}"] <= \
            out[f"eval/accuracy/{label}/high"] <= 1
    assert out["eval/accuracy/benign/low"] == 0.0 and out["eval/accuracy/benign/high"] == 1.0  # n = 2: 0..1
    assert not any("None" in k for k in out)  # unlabelled pairs are left out


def test_balance_by_label_repeats_the_rarer_kind_round_robin() -> None:
    from kubealign.constitution import balance_by_label

    h = [{"prompt": f"h{i}", "label": "harmful"} for i in range(5)]
    b = [{"prompt": f"b{i}", "label": "benign"} for i in range(2)]
    plain = {"prompt": "p"}  # no label: kept once
    out = balance_by_label([h[0], b[0], plain, h[1], h[2], b[1], h[3], h[4]])
    assert [r["prompt"] for r in out] == ["p", "b0", "b1", "b0", "b1", "b0", "h0", "h1", "h2", "h3", "h4"]
    assert sum(r.get("label") == "benign" for r in out) == sum(r.get("label") == "harmful" for r in out) == 5
    # one kind only, or none: unchanged
    assert balance_by_label(h[:3]) == h[:3]
    assert balance_by_label([plain, plain]) == [plain, plain]
    assert balance_by_label([]) == []
