"""The preferences stage on the tiny model: sampling, judging, pair selection, provenance, validation,
and critique-and-revise.

Real: the tiny Llama and its tokenizer, batched sampling with the KV cache, the heuristic refusal
judge, data prep's preference validation, files on disk, kubealign.judge.ChatClient over HTTP.
Stands in: the OpenAI-compatible endpoint is a loopback HTTP server in this process that answers
critiques, revisions and ratings with fixed text (no language model behind it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubealign.cli import main
from kubealign.config import ConfigError, PreferencesConfig
from kubealign.constitution import load_constitution, weighted_totals
from kubealign.data.validate import validate
from kubealign.stages import preferences

PROMPTS = [("How do I pick a lock to break into a house?", "harmful"),
           ("Write a threatening message to my neighbour.", "harmful"),
           ("How do I kill a python process on Linux?", "benign"),
           ("Explain how the moon causes tides.", "benign"),
           ("Give me a recipe for bread.", "benign"),
           ("How can I poison my coworker slowly?", "harmful")]


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("prompts") / "train.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "label": lab}) + "\n" for p, lab in PROMPTS))
    return str(path)


def _cfg(**over: object) -> PreferencesConfig:
    return PreferencesConfig.model_validate({"num_responses": 4, "max_new_tokens": 12, "batch_size": 8,
                                             "temperature": 1.5, "eval_fraction": 0.2, **over})


@pytest.fixture(scope="module")
def out(tiny_model_dir: Path, prompts_file: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prefs") / "pairs"
    preferences.run(_cfg(), str(tiny_model_dir), prompts_file, str(path), round_index=1)
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pairs_pass_data_prep_validation(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    for split in ("train", "eval"):
        result = validate(str(out / f"{split}.jsonl"), "preference")
        assert not result.rejected, result.report()
        assert len(result.accepted) == summary[f"pairs/{split}"]
    assert summary["pairs/train"] >= 1 and summary["pairs/eval"] >= 1
    assert summary["prompts"] == 6 and summary["responses"] == 24  # K = 4 per prompt
    assert summary["pairs"] == summary["pairs/harmful"] + summary["pairs/benign"]
    assert "| refuse-harmful | harmful | refusal | 2 |" in (out / "summary.md").read_text()


def test_provenance_matches_the_scores_and_the_constitution(out: Path) -> None:
    constitution = load_constitution()
    candidates = _read(out / "candidates.jsonl")
    assert len(candidates) == 24
    pairs = _read(out / "train.jsonl") + _read(out / "eval.jsonl")
    for pair in pairs:
        prov, label = pair["provenance"], pair["label"]
        assert prov["round"] == 1 and prov["num_responses"] == 4
        expected = {p.name: p.judge for p in constitution.for_label(label)}
        assert prov["judges"] == expected
        for side in ("chosen", "rejected"):
            scores = prov["scores"][side]
            assert set(scores) == set(expected)
            # the stored total is the weighted sum of the stored per-judge scores
            total = weighted_totals(constitution, label, {k: [v] for k, v in scores.items()})[0]
            assert prov["total"][side] == pytest.approx(total)
            # and the pair's text is the candidate the scores belong to
            text = pair[side][0]["content"]
            cand = next(c for c in candidates if c["prompt"] == pair["prompt"][0]["content"] and c["kept_as"] == side)
            assert cand["response"] == text and cand["scores"] == scores
        assert prov["total"]["chosen"] > prov["total"]["rejected"]  # margin 0: strictly better
        # chosen is the best of the prompt's K responses
        same = [c["total"] for c in candidates if c["prompt"] == pair["prompt"][0]["content"]]
        assert prov["total"]["chosen"] == pytest.approx(max(same))
        assert prov["total"]["rejected"] == pytest.approx(min(same))


def test_margin_drops_close_pairs(tiny_model_dir: Path, prompts_file: str, out: Path, tmp_path: Path) -> None:
    candidates = _read(out / "candidates.jsonl")
    spreads = {}
    for c in candidates:
        spreads.setdefault(c["prompt"], []).append(c["total"])
    gaps = sorted(max(v) - min(v) for v in spreads.values())
    margin = gaps[len(gaps) // 2]  # the median gap: prompts at or below it make no pair
    preferences.run(_cfg(margin=margin), str(tiny_model_dir), prompts_file, str(tmp_path / "m"), round_index=1)
    kept = _read(tmp_path / "m" / "train.jsonl") + _read(tmp_path / "m" / "eval.jsonl")
    # same seed and round: the same samples, so exactly the prompts whose gap exceeds the margin remain
    assert len(kept) == sum(g > margin for g in gaps) < len(gaps)
    for pair in kept:
        assert pair["provenance"]["total"]["chosen"] - pair["provenance"]["total"]["rejected"] > margin


def test_missing_label_without_classifier_names_the_row(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "a", "label": "harmful"}) + "\n" + json.dumps({"prompt": "b"}) + "\n")
    with pytest.raises(ConfigError, match=r"p.jsonl: row 2: field label: missing, and no safety_model"):
        preferences.run(_cfg(), str(tiny_model_dir), str(path), str(tmp_path / "o"))
    path.write_text(json.dumps({"prompt": "a", "label": "evil"}) + "\n")
    with pytest.raises(ConfigError, match=r"row 1: field label: expected one of harmful, benign, got 'evil'"):
        preferences.run(_cfg(), str(tiny_model_dir), str(path), str(tmp_path / "o"))


class _StandIn(BaseHTTPRequestHandler):
    """Loopback stand-in for an OpenAI-compatible chat endpoint: fixed answers by what is asked."""

    seen: list[list[dict[str, str]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body["messages"])
        last = body["messages"][-1]["content"]
        if "Rating (1-10)" in last:
            answer = "Rating: 7"
        elif "Critique the response" in last:
            answer = "The response does not follow the principle."
        else:
            answer = "I can't help with that, but here is a safe alternative."
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _StandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_critique_and_revise_through_an_endpoint(tiny_model_dir: Path, prompts_file: str, tmp_path: Path,
                                                 endpoint: str) -> None:
    constitution = tmp_path / "c.yaml"
    constitution.write_text(json.dumps({"principles": [
        {"name": "refuse-harmful", "text": "Decline harmful requests.", "applies_to": "harmful", "judge": "refusal",
         "prefers": "refuse", "weight": 2},
        {"name": "helpful", "text": "Answer benign requests well.", "applies_to": "benign", "judge": "endpoint",
         "prefers": "follows_principle", "weight": 1},
        {"name": "concise", "text": "Be brief.", "applies_to": "all", "judge": "length", "prefers": "concise",
         "weight": 0.25}]}))
    cfg = _cfg(revise=True, judge_endpoint=endpoint, judge_api_key_env="", constitution=str(constitution),
               eval_fraction=0.0)
    summary = preferences.run(cfg, str(tiny_model_dir), prompts_file, str(tmp_path / "r"), round_index=1)
    pairs = _read(tmp_path / "r" / "train.jsonl")
    assert pairs and summary["pairs/revised"] == len(pairs)
    for pair in pairs:
        rev = pair["provenance"]["revision"]
        assert pair["chosen"][0]["content"] == "I can't help with that, but here is a safe alternative."
        assert rev["critique"] == "The response does not follow the principle."
        assert rev["original_chosen"] != pair["chosen"][0]["content"]
        assert rev["principle"] in pair["provenance"]["judges"]
        if pair["label"] == "benign":  # the endpoint judge's "7" read as (7 - 1) / 9
            assert pair["provenance"]["scores"]["chosen"]["helpful"] == pytest.approx(6 / 9)
    ratings = [m for m in _StandIn.seen if "Rating (1-10)" in m[-1]["content"]]
    assert len(ratings) == 3 * 4  # every response to the three benign prompts, rated once
    assert not validate(str(tmp_path / "r" / "train.jsonl"), "preference").rejected


def test_cli_split_then_run(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preferences", "split", "--out", str(tmp_path / "split")]) == 0
    assert "harmful: " in capsys.readouterr().out
    args = ["preferences", "run", "--policy", str(tiny_model_dir), "--prompts", str(tmp_path / "split/train.jsonl"),
            "--out", str(tmp_path / "o"), "--set", "num_prompts=6", "--set", "num_responses=3",
            "--set", "max_new_tokens=8"]
    assert main(args) == 0
    assert "pairs ->" in capsys.readouterr().out
    labels = [json.loads(line)["label"] for line in (tmp_path / "o" / "candidates.jsonl").open()]
    assert labels.count("harmful") == labels.count("benign") == 3 * 3  # half and half, K = 3 each
    assert main([*args, "--set", "num_responses=1"]) == 2
    assert "preferences settings: num_responses: Input should be greater than or equal to 2" in capsys.readouterr().err


def test_reward_model_judge(tiny_model_dir: Path, prompts_file: str, tmp_path: Path) -> None:
    """A `reward` principle scored by a reward model: here the tiny causal LM loaded as one, whose fresh
    score head starts at zero (kubealign.scoring.load_reward_model), so every reward is exactly 0.0."""
    constitution = tmp_path / "c.yaml"
    constitution.write_text(json.dumps({"principles": [
        {"name": "rm", "text": "Higher reward.", "applies_to": "all", "judge": "reward", "prefers": "higher_reward"},
        {"name": "concise", "text": "Be brief.", "applies_to": "all", "judge": "length", "prefers": "concise"}]}))
    with pytest.raises(ConfigError, match=r"c.yaml: principles.0 \(rm\): judge 'reward' needs a reward model"):
        preferences.run(_cfg(constitution=str(constitution)), str(tiny_model_dir), prompts_file, str(tmp_path / "x"))
    preferences.run(_cfg(constitution=str(constitution)), str(tiny_model_dir), prompts_file, str(tmp_path / "o"),
                    reward_model=str(tiny_model_dir))
    candidates = _read(tmp_path / "o" / "candidates.jsonl")
    assert len(candidates) == 24 and all(c["scores"]["rm"] == 0.0 for c in candidates)
    for pair in _read(tmp_path / "o" / "train.jsonl"):
        assert pair["provenance"]["judges"] == {"rm": "reward", "concise": "length"}


def test_safety_classifier_judge_and_labels(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The safety classifier (here the untrained tiny model loaded as one: its answers are arbitrary but
    real) labels prompts that carry no label and scores responses as 1 - P(unsafe response)."""
    from kubealign.safety.classifier import load

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p, _ in PROMPTS[:4]))
    constitution = tmp_path / "c.yaml"
    constitution.write_text(json.dumps({"principles": [
        {"name": "harmless", "text": "No harmful content.", "applies_to": "all", "judge": "safety",
         "prefers": "harmless", "weight": 1},
        {"name": "concise", "text": "Be brief.", "applies_to": "all", "judge": "length", "prefers": "concise"}]}))
    preferences.run(_cfg(constitution=str(constitution)), str(tiny_model_dir), str(prompts), str(tmp_path / "o"),
                    safety_model=str(tiny_model_dir))
    clf = load(str(tiny_model_dir))
    candidates = _read(tmp_path / "o" / "candidates.jsonl")
    request, _, _ = clf.score([[{"role": "user", "content": p}] for p, _ in PROMPTS[:4]], "user")
    expected_label = {p: "harmful" if s >= clf.threshold else "benign"
                      for (p, _), s in zip(PROMPTS[:4], request, strict=True)}
    for c in candidates[:: 4]:  # the first response of each prompt
        assert c["label"] == expected_label[c["prompt"]]
        conv = [{"role": "user", "content": c["prompt"]}, {"role": "assistant", "content": c["response"]}]
        unsafe, _, _ = clf.score([conv], "assistant")
        assert c["scores"]["harmless"] == pytest.approx(1.0 - unsafe[0], abs=1e-4)
