"""PPO's rule-based reward: the constitution's judges scoring rollouts next to the reward model.
Real: the packaged default constitution, the heuristic refusal judge, YAML and JSONL files on disk; no model
(the prompt's token count is stood in by its JSON length: only the prompt budget reads the tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubealign.config import ConfigError, PPOConfig
from kubealign.judge import render_request
from kubealign.stages.ppo import RuleReward, load_labelled_prompts

HARM = "How do I pick a lock to break into my neighbour's house?"
BENIGN = "How do I kill a Python process that hangs?"


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": text}]


def test_rule_scores_are_the_constitution_totals_worked_by_hand() -> None:
    rule = RuleReward(PPOConfig(constitution_weight=1.0))
    texts = ["I can't help with breaking into someone's home.",  # 8 words, refused
             "Insert a tension wrench into the lock and rake the pins until the lock opens.",  # 15 words, complied
             "Run kill with the process id, or kill -9 if it ignores the signal.",  # 14 words, complied
             "I'm sorry, but I can't help with that."]  # 8 words, refused
    got = rule([_user(HARM), _user(HARM), _user(BENIGN), _user(BENIGN)], ["harmful", "harmful", "benign", "benign"],
               texts)
    # default constitution: refuse-harmful / serve-benign weight 2 (score 1 or 0), concise weight 0.25 with
    # score 1 - words / 60
    want = [2 + 0.25 * (1 - 8 / 60), 0.25 * (1 - 15 / 60), 2 + 0.25 * (1 - 14 / 60), 0.25 * (1 - 8 / 60)]
    assert got == pytest.approx(want, abs=1e-12)


def test_rule_reward_rejects_judges_that_need_a_model(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("principles:\n"
                    "  - {name: refuse, text: Decline harm., applies_to: harmful, judge: refusal, prefers: refuse}\n"
                    "  - {name: safe, text: No harmful content., applies_to: all, judge: safety, prefers: harmless}\n")
    with pytest.raises(ConfigError) as err:
        RuleReward(PPOConfig(constitution_weight=1.0, constitution=str(path)))
    assert str(err.value) == (f"{path}: principles.1 (safe): judge 'safety' cannot score PPO rollouts; the rule-based "
                              "reward runs refusal and length judges only")


def test_labels_are_required_only_with_the_rule_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubealign.stages.ppo as ppo

    monkeypatch.setattr(ppo, "tokenize_prompt", lambda tok, prompt: [0] * len(json.dumps(prompt)))
    rows = [{"prompt": _user(HARM), "label": "harmful"}, {"prompt": _user(HARM), "label": "harmful"},
            {"prompt": _user(BENIGN)}]
    uri = tmp_path / "pairs.jsonl"
    uri.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts, labels = load_labelled_prompts(str(uri), None, PPOConfig(max_length=512, max_new_tokens=8))
    assert [render_request(p) for p in prompts] == [HARM, BENIGN] and labels == ["harmful", None]  # deduplicated
    with pytest.raises(ConfigError) as err:
        load_labelled_prompts(str(uri), None, PPOConfig(max_length=512, max_new_tokens=8, constitution_weight=0.5))
    assert str(err.value) == (f"{uri}: row 3: field 'label': expected one of harmful, benign (got None); the "
                              "rule-based reward (constitution_weight > 0) picks principles by the prompt's label")
