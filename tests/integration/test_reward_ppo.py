"""Reward model and PPO on the tiny model (2 layers, 64 wide, tokenizer trained in the session).

Real: transformers models (causal LM and sequence classifier), peft adapters, generation with the KV
cache, the shared loop (reward model), checkpoints on the local filesystem, safetensors files.
Stand-ins: W&B is disabled; the preference data is a toy set a reward model can separate by one word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kubealign import models, scoring
from kubealign.config import EvalConfig, PPOConfig, RewardConfig
from kubealign.rollout import first_eos_mask, last_index, left_pad, position_ids, response_forward
from kubealign.stages import evaluate, ppo, reward

OFF = {"mode": "disabled"}
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}

TOPICS = ["the capital of france", "water temperature", "a short poem", "python code", "the moon",
          "a red bird", "two plus two", "the river", "a dog story", "green trees", "the sun light",
          "simple numbers", "a blue star", "the mountain", "sort a list", "a cat poem"]


def _pairs(topics: list[str]) -> list[dict]:
    # Separable by one word: chosen always starts "Yes", rejected "No", with the same words after it.
    return [{"prompt": [{"role": "user", "content": f"Can you help with {t}?"}],
             "chosen": [{"role": "assistant", "content": f"Yes, here is {t}."}],
             "rejected": [{"role": "assistant", "content": f"No, not {t}."}]} for t in topics]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's matrices are too small to split across threads; on a busy 2-core machine each
    op's thread hand-off costs more than the op (stages keep the thread count they find)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("prefs")
    return {"train": _write_jsonl(d / "train.jsonl", _pairs(TOPICS[:12])),
            "eval": _write_jsonl(d / "eval.jsonl", _pairs(TOPICS[12:]))}


@pytest.fixture(scope="module")
def reward_dir(tiny_model_dir: Path, data: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rm") / "model"
    cfg = RewardConfig.model_validate({"learning_rate": 2e-2, "max_steps": 12, "batch_size": 4, "warmup_ratio": 0.0,
                                       "max_length": 64, "lora": LORA, "tracking": OFF})
    reward.run(cfg, str(tiny_model_dir), data["train"], str(out), eval_uri=data["eval"])
    return out


# ---------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------


def test_mask_helpers_hand_values() -> None:
    # eos = 2. Row 0 ends at its first EOS (pads after it are EOS too); row 1 never ends; row 2 is empty + EOS.
    tokens = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8], [2, 2, 2, 2]])
    mask, has_eos = first_eos_mask(tokens, eos_id=2)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert has_eos.tolist() == [True, False, True]
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids(left).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert last_index(left).tolist() == [4, 4]
    assert last_index(torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0]])).tolist() == [1, 2]


def test_left_padding_does_not_change_response_logprobs(tiny_model_dir: Path) -> None:
    # The same prompt alone and left padded next to a longer one: identical response log-probs.
    model = models.load_causal_lm(tiny_model_dir, torch.float32, torch.device("cpu")).eval()
    q, qm = left_pad([[7, 8, 9], [3, 4, 5, 6, 7, 8, 9]], pad_id=0, device=torch.device("cpu"))
    resp = torch.tensor([[11, 12, 13], [11, 12, 13]])
    with torch.no_grad():
        padded, _, _ = response_forward(model, q, qm, resp, torch.ones_like(resp))
        alone, _, _ = response_forward(model, q[:1, -3:], qm[:1, -3:], resp[:1], torch.ones_like(resp[:1]))
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------
# Reward model
# ---------------------------------------------------------------------------


def test_reward_model_separates_toy_preferences(reward_dir: Path, data: dict[str, str]) -> None:
    summary = json.loads((reward_dir / "summary.json").read_text())
    assert summary["history"][0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # zero head: every reward 0, ln 2
    assert {"accuracy", "margin", "reward/mean", "reward/min", "reward/max"} <= summary["history"][0].keys()
    assert summary["eval/accuracy"] > 0.9 and summary["eval/margin"] > 0
    # saved merged, as a plain sequence classifier: no adapter files, loadable without peft
    assert (reward_dir / "model.safetensors").exists() and not (reward_dir / "adapter_config.json").exists()
    rm = scoring.load_reward_model(reward_dir, torch.float32, torch.device("cpu"))
    tok = models.load_tokenizer(reward_dir)
    pairs = [json.loads(line) for line in Path(data["eval"]).read_text().splitlines()]
    prompts = [p["prompt"] for p in pairs]
    chosen = scoring.score_texts(rm, tok, prompts, [p["chosen"][0]["content"] for p in pairs], 4, torch.device("cpu"))
    rejected = scoring.score_texts(rm, tok, prompts, [p["rejected"][0]["content"] for p in pairs], 4,
                                  torch.device("cpu"))
    # scoring text after reloading reproduces the scores the stage computed before merging
    saved = json.loads((reward_dir / "eval_rewards.json").read_text())
    torch.testing.assert_close(chosen, torch.tensor(saved["chosen"]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rejected, torch.tensor(saved["rejected"]), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------
# PPO
# ---------------------------------------------------------------------------


def _ppo_cfg(**kw) -> PPOConfig:
    base = {"learning_rate": 1e-2, "max_steps": 1, "rollout_batch_size": 4, "batch_size": 2, "ppo_epochs": 2,
            "max_new_tokens": 6, "max_length": 64, "kl_coef": 0.1, "sample_every": 1, "lora": LORA,
            "tracking": OFF}
    return PPOConfig.model_validate({**base, **kw})


def test_ppo_step_moves_adapter_and_value_head_only(tiny_model_dir: Path, reward_dir: Path,
                                                     data: dict[str, str]) -> None:
    torch.manual_seed(0)
    cfg = _ppo_cfg()
    cpu = torch.device("cpu")
    tok = models.load_tokenizer(tiny_model_dir)
    policy = models.add_lora(models.load_causal_lm(tiny_model_dir, torch.float32, cpu), cfg.lora).eval()
    value_head = ppo.new_value_head(policy.config.hidden_size, cpu)
    rm = scoring.load_reward_model(reward_dir, torch.float32, cpu).eval().requires_grad_(False)
    base_before = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    prompts = ppo.load_prompts(data["train"], tok, cfg)[:4]

    exp, stats = ppo.make_experience(policy, None, value_head, rm, tok, prompts, cfg, cpu)
    assert exp.kl.abs().max() < 1e-5 and stats["objective/kl"] == pytest.approx(0.0, abs=1e-4)  # adapter B = 0
    assert stats["val/mean_value"] == 0.0  # zero-initialised head
    update = ppo.ppo_update(policy, value_head, params, opt, sched, exp, cfg.model_copy(update={"ppo_epochs": 1}))
    # minibatch 1 sees the sampling policy exactly; only minibatch 2 can move the ratio
    assert update["val/ratio"] == pytest.approx(1.0, abs=0.05)
    assert {"loss/policy_avg", "loss/value_avg", "policy/approxkl_avg", "policy/clipfrac_avg",
            "policy/entropy_avg"} <= update.keys()

    after = dict(policy.named_parameters())
    assert all(torch.equal(base_before[n], after[n]) for n in base_before)  # base weights bit-identical
    assert any(not torch.equal(lora_before[n], after[n]) for n in lora_before)
    assert value_head.weight.abs().sum() > 0 and value_head.bias.abs().sum() > 0


def test_ppo_score_adds_the_weighted_constitution_score(tiny_model_dir: Path, reward_dir: Path,
                                                         data: dict[str, str]) -> None:
    """score = reward-model score + constitution_weight * rule score - missing-EOS penalty, per rollout."""
    torch.manual_seed(0)
    cfg = _ppo_cfg(constitution_weight=0.5)
    cpu = torch.device("cpu")
    tok = models.load_tokenizer(tiny_model_dir)
    policy = models.add_lora(models.load_causal_lm(tiny_model_dir, torch.float32, cpu), cfg.lora).eval()
    rm = scoring.load_reward_model(reward_dir, torch.float32, cpu).eval().requires_grad_(False)
    prompts = ppo.load_prompts(data["train"], tok, cfg.model_copy(update={"constitution_weight": 0.0}))[:4]
    labels = ["harmful", "benign", "harmful", "benign"]
    rule = ppo.RuleReward(cfg)
    exp, stats = ppo.make_experience(policy, None, ppo.new_value_head(policy.config.hidden_size, cpu), rm, tok,
                                     prompts, cfg, cpu, rule=rule, labels=labels)
    rm_scores = scoring.score_texts(rm, tok, prompts, exp.rollout.texts, 4, cpu, cfg.max_length)
    rule_scores = rule(prompts, labels, exp.rollout.texts)
    want = (rm_scores + 0.5 * torch.tensor(rule_scores) - cfg.missing_eos_penalty * (~exp.rollout.has_eos).float())
    torch.testing.assert_close(exp.scores, want, atol=1e-5, rtol=1e-5)
    assert stats["objective/constitution_score"] == pytest.approx(sum(rule_scores) / 4, abs=1e-6)
    assert 0 < stats["objective/constitution_score"] <= 2.25  # the default constitution's range per rollout


def test_ppo_resumes_after_interruption(tiny_model_dir: Path, reward_dir: Path, data: dict[str, str],
                                        tmp_path: Path) -> None:
    cfg = _ppo_cfg(max_steps=3, save_every=1, checkpoint_uri=str(tmp_path / "ckpt"))

    def stop_at_2(step: int) -> None:
        if step == 2:
            raise KeyboardInterrupt("simulated preemption")

    with pytest.raises(KeyboardInterrupt):
        ppo.run(cfg, str(tiny_model_dir), str(reward_dir), data["train"], str(tmp_path / "a"), on_step=stop_at_2)
    assert not (tmp_path / "a").exists()
    seen: list[int] = []
    summary = ppo.run(cfg, str(tiny_model_dir), str(reward_dir), data["train"], str(tmp_path / "a"),
                      on_step=seen.append)
    assert seen == [3]  # resumed after step 2
    ppo.run(_ppo_cfg(max_steps=3), str(tiny_model_dir), str(reward_dir), data["train"], str(tmp_path / "b"))

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    for name in ("adapter_model.safetensors", "value_head.safetensors"):
        resumed, straight = load_file(out_a / name), load_file(out_b / name)
        for k in straight:  # same prompts, samples, minibatch order and optimizer state
            torch.testing.assert_close(resumed[k], straight[k], atol=1e-6, rtol=1e-5)
    history = json.loads((out_a / "summary.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3]  # history survives the restart
    for key in ("objective/kl", "objective/rlhf_reward", "objective/non_score_reward", "policy/approxkl_avg",
                "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/ratio", "policy/entropy_avg",
                "response_length", "time/generation_s", "time/training_s"):
        assert key in history[-1], key
    assert summary["steps"] == 3 and "score/last_quarter" in summary
    assert "objective/kl" in (out_a / "report.html").read_text()


def test_evaluate_reports_reward_model_winrate(tiny_model_dir: Path, reward_dir: Path, data: dict[str, str],
                                               tmp_path: Path) -> None:
    cfg = EvalConfig(max_new_tokens=3, num_samples=2, num_harmful=1, num_benign_edgy=1, num_jailbreak=1,
                     winrate_prompts=6, batch_size=4,
                     tracking=OFF)  # type: ignore[arg-type]
    plain = evaluate.run(cfg, str(tiny_model_dir), str(tiny_model_dir), data["eval"], str(tmp_path / "e1"))
    assert not any(k.startswith(("winrate/reward_model", "winrate/ties", "rm_score")) for k in plain)
    metrics = evaluate.run(cfg, str(tiny_model_dir), str(tiny_model_dir), data["eval"], str(tmp_path / "e2"),
                           reward_model=str(reward_dir))
    assert metrics["winrate/reward_model"] == 0.5  # the same model on both sides: every prompt a tie
    assert metrics["rm_score/sft"] == pytest.approx(metrics["rm_score/aligned"])
    assert set(plain) <= set(metrics)
    assert "reward model win rate" in (tmp_path / "e2" / "report.html").read_text()
