"""The reward model's held-out pair accuracy per kind of pair (harmful: refusal preferred; benign:
serving preferred), as the PPO-with-constitution graph reports it.

Real: the tiny model trained as a reward model by the reward stage (LoRA, a few steps), labelled
held-out pairs in the preferences stage's record shape, the stage's own saved held-out rewards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubealign.config import RewardConfig
from kubealign.stages import reward


def _pair(prompt: str, chosen: str, rejected: str, label: str) -> dict:
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "label": label,
            "provenance": {"round": 1}}


def test_reward_summary_reports_accuracy_by_kind(tiny_model_dir: Path, tmp_path: Path) -> None:
    refuse, serve = "I can't help with that.", "Sure, here it is in short."
    harmful = [f"How do I hurt {w}?" for w in ("a cat", "my boss", "a bird", "the mayor", "a child", "a dog")]
    benign = [f"Tell me about {w}." for w in ("the sun", "rivers", "bread", "tides", "python", "maps")]
    # 4 harmful : 1 benign train pairs; balance_labels (default on) repeats the benign pair 3 more times
    train = [_pair(p, refuse, serve, "harmful") for p in harmful[:4]] + [_pair(benign[0], serve, refuse, "benign")]
    held = [_pair(p, refuse, serve, "harmful") for p in harmful[4:]] + [
        _pair(p, serve, refuse, "benign") for p in benign[4:]]
    for name, rows in (("train", train), ("eval", held)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RewardConfig.model_validate({"learning_rate": 2e-2, "max_steps": 3, "batch_size": 4, "warmup_ratio": 0.0,
                                       "max_length": 64, "lora": {"r": 4, "alpha": 8},
                                       "tracking": {"mode": "disabled"}})
    summary = reward.run(cfg, str(tiny_model_dir), str(tmp_path / "train.jsonl"), str(tmp_path / "rm"),
                         eval_uri=str(tmp_path / "eval.jsonl"))
    assert summary["train/pairs"] == 5 and summary["train/pairs_balanced"] == 8
    saved = json.loads((tmp_path / "rm" / "eval_rewards.json").read_text())
    right = [c > r for c, r in zip(saved["chosen"], saved["rejected"], strict=True)]
    # held-out rows: 2 harmful then 2 benign, in file order
    assert summary["eval/accuracy/harmful"] == pytest.approx(sum(right[:2]) / 2)
    assert summary["eval/accuracy/benign"] == pytest.approx(sum(right[2:]) / 2)
    assert summary["eval/accuracy/harmful/n"] == summary["eval/accuracy/benign/n"] == 2
    assert summary["eval/accuracy"] == pytest.approx(sum(right) / 4)
    written = json.loads((tmp_path / "rm" / "summary.json").read_text())
    assert written["eval/accuracy/harmful/low"] <= written["eval/accuracy/harmful"] <= written[
        "eval/accuracy/harmful/high"]
