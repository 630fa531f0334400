"""The throughput settings change speed and memory, not results: per-step losses agree across them.

Real: the SFT and DPO stages end to end on the tiny Llama (2 layers, 64 wide, fp32) from
tests/conftest.py, the shared loop, checkpoints on the local filesystem, summary.json files.
The DPO "SFT model" is the tiny base model itself (any causal LM folder with a tokenizer will do).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubealign.config import DPOConfig, SFTConfig
from kubealign.stages import dpo, sft

OFF = {"mode": "disabled"}
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}
LONG = "I cannot help with that, but here is a long and careful explanation of why, step by step. " * 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Short chosen and several-fold longer rejected answers, as in safety data."""
    d = tmp_path_factory.mktemp("data")
    qa = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."), ("Why is the sky blue?", "Scattering."),
          ("Say hi.", "Hi."), ("Count to three.", "1, 2, 3."), ("What is water?", "H2O.")]
    pref = [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": a}],
             "rejected": [{"role": "assistant", "content": LONG[: 60 + 40 * i]}]} for i, (q, a) in enumerate(qa)]
    chat = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a * (1 + i)}]}
            for i, (q, a) in enumerate(qa)]
    (d / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pref))
    (d / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    return {"pref": str(d / "pref.jsonl"), "sft": str(d / "sft.jsonl")}


def _losses(out: Path) -> list[float]:
    return [h["loss"] for h in json.loads((out / "summary.json").read_text())["history"]]


def _dpo(tmp: Path, name: str, **kw) -> DPOConfig:
    base = {"learning_rate": 5e-3, "max_steps": 4, "batch_size": 3, "warmup_ratio": 0.0, "max_length": 96,
            "beta": 0.5, "lora": LORA, "tracking": OFF, "pack_length": 96}
    return DPOConfig.model_validate({**base, **kw})


def count_scored_pairs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A pass-through spy on the DPO stage's `pair_logprobs`: the number of pairs of each call."""
    scored: list[int] = []
    real = dpo.pair_logprobs

    def counting(model, examples, *args, **kw):  # noqa: ANN001, ANN202
        scored.append(len(examples))
        return real(model, examples, *args, **kw)

    monkeypatch.setattr(dpo, "pair_logprobs", counting)
    return scored


def test_dpo_precomputed_reference_equals_on_the_fly(tiny_model_dir: Path, data: dict[str, str],
                                                     tmp_path: Path) -> None:
    runs = {}
    for mode in ("precomputed", "on_the_fly"):
        out = tmp_path / mode
        dpo.run(_dpo(tmp_path, mode, reference_logps=mode), str(tiny_model_dir), data["pref"], str(out))
        runs[mode] = _losses(out)
    assert len(runs["precomputed"]) == 4 and runs["precomputed"][0] == pytest.approx(0.6931, abs=1e-3)
    assert runs["precomputed"] == pytest.approx(runs["on_the_fly"], abs=1e-6, rel=0)
    assert runs["precomputed"][-1] < runs["precomputed"][0] - 0.05  # it trained: equality is not vacuous


@pytest.mark.parametrize("stage", ["dpo", "sft"])
def test_packed_and_padded_runs_give_the_same_losses(stage: str, tiny_model_dir: Path, data: dict[str, str],
                                                     tmp_path: Path) -> None:
    runs = {}
    for padding_free in (True, False):
        out = tmp_path / str(padding_free)
        if stage == "dpo":
            dpo.run(_dpo(tmp_path, "x", padding_free=padding_free), str(tiny_model_dir), data["pref"], str(out))
        else:
            cfg = SFTConfig.model_validate({"learning_rate": 3e-2, "max_steps": 4, "batch_size": 3, "max_length": 96,
                                            "lora": LORA, "tracking": OFF, "padding_free": padding_free,
                                            "pack_length": 64})
            sft.run(cfg, str(tiny_model_dir), data["sft"], str(out), eval_uri=data["sft"])
        runs[padding_free] = _losses(out)
    assert len(runs[True]) == 4
    assert runs[True] == pytest.approx(runs[False], abs=1e-5, rel=0)


def test_dpo_resume_reads_the_reference_scores_instead_of_scoring_again(
        tiny_model_dir: Path, data: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _dpo(tmp_path, "r", save_every=1, checkpoint_uri=str(tmp_path / "ckpt"))
    scored = count_scored_pairs(monkeypatch)

    def stop_at_2(step: int) -> None:
        if step == 2:
            raise KeyboardInterrupt("simulated preemption")

    with pytest.raises(KeyboardInterrupt):
        dpo.run(cfg, str(tiny_model_dir), data["pref"], str(tmp_path / "a"), on_step=stop_at_2)
    assert scored == [6]  # the six training pairs, once
    assert len(list((tmp_path / "ckpt").glob("*/reference_logps.pt"))) == 1
    seen: list[int] = []
    dpo.run(cfg, str(tiny_model_dir), data["pref"], str(tmp_path / "a"), on_step=seen.append)
    assert seen == [3, 4] and scored == [6]  # resumed, and the reference was not run again
    dpo.run(_dpo(tmp_path, "u"), str(tiny_model_dir), data["pref"], str(tmp_path / "b"))
    assert _losses(tmp_path / "a") == pytest.approx(_losses(tmp_path / "b"), abs=1e-6, rel=0)


def test_gradient_checkpointing_changes_no_loss(tiny_model_dir: Path, data: dict[str, str], tmp_path: Path) -> None:
    runs = {}
    for checkpointing in (True, False):
        out = tmp_path / str(checkpointing)
        dpo.run(_dpo(tmp_path, "g", gradient_checkpointing=checkpointing), str(tiny_model_dir), data["pref"], str(out))
        runs[checkpointing] = _losses(out)
    assert runs[True] == pytest.approx(runs[False], abs=1e-6, rel=0)


def test_dpo_scores_the_reference_only_for_the_pairs_its_steps_draw(
        tiny_model_dir: Path, data: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scored = count_scored_pairs(monkeypatch)
    dpo.run(_dpo(tmp_path, "v", max_steps=1), str(tiny_model_dir), data["pref"], str(tmp_path / "p"))
    assert scored == [3]  # one step of 3 pairs out of 6: the other 3 are never drawn, never scored
    dpo.run(_dpo(tmp_path, "v", max_steps=1, reference_logps="on_the_fly"), str(tiny_model_dir), data["pref"],
            str(tmp_path / "f"))
    assert _losses(tmp_path / "p") == pytest.approx(_losses(tmp_path / "f"), abs=1e-6, rel=0)
