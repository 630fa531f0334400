"""Each stage end to end on the tiny model (2 layers, 64 wide, tokenizer trained in the session).

Real: transformers model and tokenizer, peft adapters, the shared training loop, checkpoints on
the local filesystem, safetensors files. W&B is disabled here except in the tracking test, which
runs it offline and reads the run's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kubealign.config import DPOConfig, EvalConfig, MergeConfig, SFTConfig
from kubealign.stages import dpo, evaluate, merge, sft

OFF = {"mode": "disabled"}
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}

QA = [
    ("What is the capital of france?", "Paris."),
    ("How do I sort a list in python?", "Use sorted(numbers)."),
    ("What is two plus two?", "Four."),
    ("Why is the sky blue?", "Light from the sun is scattered."),
    ("Write a short poem about a cat.", "A cat in the sun, the day is done."),
    ("Can you help me with water temperature?", "Water boils at 100 degrees."),
]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("data")
    sft_rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA]
    pref_rows = [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": a}],
                  "rejected": [{"role": "assistant", "content": "Sorry, I cannot help with that question."}]}
                 for q, a in QA]
    return {"sft": _write_jsonl(d / "sft.jsonl", sft_rows), "pref": _write_jsonl(d / "pref.jsonl", pref_rows)}


def _sft_cfg(**kw) -> SFTConfig:
    # full batch (6 pairs), so every step sees the same data and the loss must fall
    base = {"learning_rate": 3e-2, "max_steps": 6, "batch_size": 6, "warmup_ratio": 0.0, "max_length": 64,
            "lora": LORA, "tracking": OFF}
    return SFTConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def sft_out(tiny_model_dir: Path, data: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sft") / "model"
    sft.run(_sft_cfg(), str(tiny_model_dir), data["sft"], str(out), eval_uri=data["sft"])
    return out


@pytest.fixture(scope="module")
def merged_sft(tiny_model_dir: Path, sft_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "model"
    merge.run(MergeConfig(), str(tiny_model_dir), str(sft_out), str(out))
    return out


def test_sft_trains_adapter_and_lowers_loss(sft_out: Path, tiny_model_dir: Path) -> None:
    summary = json.loads((sft_out / "summary.json").read_text())
    losses = [h["loss"] for h in summary["history"]]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.2, losses  # the adapter fits the 6 examples
    assert summary["tokens_per_s"] > 0 and summary["eval/loss"] < losses[0]
    adapter = load_file(sft_out / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at 0
    assert (sft_out / "tokenizer.json").exists() and not Path(str(sft_out) + ".partial").exists()


def test_merge_equals_base_plus_adapter(tiny_model_dir: Path, sft_out: Path, merged_sft: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 11]])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    base_logits = base(ids).logits
    with_adapter = PeftModel.from_pretrained(base, str(sft_out)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(merged_sft), dtype=torch.float32).eval()
    expected, got = with_adapter(ids).logits, merged(ids).logits
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter changes the model...
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)  # ...and merging keeps exactly that
    assert (merged_sft / "model.safetensors").exists() and not (merged_sft / "adapter_config.json").exists()


def test_sft_resumes_after_interruption(tiny_model_dir: Path, data: dict[str, str], tmp_path: Path) -> None:
    cfg = _sft_cfg(max_steps=4, save_every=2, checkpoint_uri=str(tmp_path / "ckpt"))

    def stop_at_3(step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt("simulated preemption")

    with pytest.raises(KeyboardInterrupt):
        sft.run(cfg, str(tiny_model_dir), data["sft"], str(tmp_path / "a"), on_step=stop_at_3)
    assert not (tmp_path / "a").exists()  # nothing partial at the output location
    run_dirs = list((tmp_path / "ckpt").iterdir())
    assert len(run_dirs) == 1 and sorted(p.name for p in run_dirs[0].iterdir()) == ["step-00000002"]
    # a checkpoint folder without its COMPLETE marker (a save cut short) must be ignored
    (run_dirs[0] / "step-00000003").mkdir()

    seen: list[int] = []
    sft.run(cfg, str(tiny_model_dir), data["sft"], str(tmp_path / "a"), on_step=seen.append)
    assert seen == [3, 4]  # resumed at the saved step 2, not at 0 and not at the partial 3

    straight = _sft_cfg(max_steps=4)
    sft.run(straight, str(tiny_model_dir), data["sft"], str(tmp_path / "b"))
    resumed = load_file(tmp_path / "a" / "adapter_model.safetensors")
    uninterrupted = load_file(tmp_path / "b" / "adapter_model.safetensors")
    for k in uninterrupted:  # same order, optimizer and RNG state: the same weights
        torch.testing.assert_close(resumed[k], uninterrupted[k], atol=1e-6, rtol=1e-5)


def test_dpo_raises_margin_and_keeps_base(merged_sft: Path, data: dict[str, str], tmp_path: Path) -> None:
    before = load_file(merged_sft / "model.safetensors")
    cfg = DPOConfig.model_validate({"learning_rate": 5e-3, "max_steps": 6, "batch_size": 3, "warmup_ratio": 0.0,
                                    "max_length": 64, "beta": 0.5, "lora": LORA, "tracking": OFF})
    out = tmp_path / "dpo"
    summary = dpo.run(cfg, str(merged_sft), data["pref"], str(out), eval_uri=data["pref"])
    history = json.loads((out / "summary.json").read_text())["history"]
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
            "logps/rejected"} <= history[0].keys()
    assert history[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 1: ln 2
    assert summary["eval/rewards/margins"] > 0.1 and summary["eval/rewards/accuracies"] == 1.0
    after = load_file(merged_sft / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)  # the reference weights never moved


def test_evaluate_writes_report(merged_sft: Path, tiny_model_dir: Path, data: dict[str, str], tmp_path: Path) -> None:
    from kubealign.eval_tables import COMPARED_COLUMNS
    from kubealign.refusal import judge_refusals

    wandb_dir = tmp_path / "wb"
    cfg = EvalConfig(max_new_tokens=6, num_samples=2, num_harmful=3, num_benign_edgy=3, num_jailbreak=3,
                     winrate_prompts=8, batch_size=4,
                     tracking={"mode": "offline", "dir": str(wandb_dir)})  # type: ignore[arg-type]
    report = tmp_path / "report.html"
    metrics = evaluate.run(cfg, str(tiny_model_dir), str(merged_sft), data["pref"], str(tmp_path / "eval"),
                           report_path=str(report))
    for key in ("pairs/sft/accuracy", "pairs/aligned/accuracy", "pairs/aligned/implicit_accuracy",
                "refusal/harmful/sft", "refusal/benign_edgy/aligned", "refusal/jailbreak/aligned",
                "offtopic/benign_edgy/sft", "refusal/harmful/p_value"):
        assert 0.0 <= metrics[key] <= 1.0
    for key in ("refusal/harmful/sft", "refusal/jailbreak/aligned", "winrate/implicit_reward"):
        assert metrics[f"{key}/low"] <= metrics[key] <= metrics[f"{key}/high"]
    assert metrics["pairs/count"] == len(QA)
    assert 0.0 <= metrics["winrate/implicit_reward"] <= 1.0 and "kl/aligned_vs_sft" in metrics
    html = report.read_text()
    assert "Held-out prompts, greedy" in html and "What is the capital of france?" in html
    assert "win rate, aligned vs SFT greedy responses, by implicit reward" in html
    assert "Jailbreak-wrapped harmful prompts" in html and "Refusal judge verdicts (heuristic)" in html
    samples = json.loads((tmp_path / "eval" / "samples.json").read_text())
    assert samples["refusal_judge"] == "heuristic"  # auto without a safety model
    assert len(samples["responses"]["aligned"]["harmful"]) == 3
    # the win-rate set: 2 held-out prompts, then 6 packaged helpfulness prompts (helpful_prompts=None)
    assert len(samples["prompts"]["rm_extra"]) == 6
    # jailbreak prompts wrap the same harmful requests (equal counts, same seed); the judge reads the request
    requests = samples["judged_requests"]
    assert requests["jailbreak"] == requests["harmful"]
    assert all(r in p[-1]["content"] and p[-1]["content"] != r
               for r, p in zip(requests["jailbreak"], samples["prompts"]["jailbreak"], strict=True))
    # the stored verdicts are the heuristic's on the stored responses, and the rates are their shares
    for name in ("harmful", "jailbreak"):
        for model in ("sft", "aligned"):
            again = judge_refusals(requests[name], samples["responses"][model][name])
            assert samples["verdicts"][name][model] == [v.verdict for v in again]
            assert metrics[f"refusal/{name}/{model}"] == sum(v.refusal for v in again) / 3
            assert sum(metrics[f"verdicts/{name}/{model}/{v}"] for v in
                       ("complied", "refused", "deflected", "off_topic")) == 3
    # the report's summary table, as a W&B table file in the offline run (what `wandb sync` uploads)
    tables = list(wandb_dir.glob("wandb/offline-run-*/files/media/table/eval/summary_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == COMPARED_COLUMNS
    assert table["data"] == evaluate.comparison_rows(metrics)
    harmful = list(wandb_dir.glob("wandb/offline-run-*/files/media/table/eval/samples/harmful_*.table.json"))
    assert len(json.loads(harmful[0].read_text())["data"]) == 3


def test_evaluate_refuses_a_judge_without_its_input_before_loading(merged_sft: Path, tiny_model_dir: Path,
                                                                  data: dict[str, str], tmp_path: Path) -> None:
    from kubealign.config import ConfigError

    for judge, needs in (("classifier", "needs the safety_model input"), ("endpoint", "needs judge_endpoint")):
        cfg = EvalConfig(refusal_judge=judge, tracking=OFF)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=f"refusal_judge: '{judge}' {needs}"):
            evaluate.run(cfg, str(tiny_model_dir), str(merged_sft), data["pref"], str(tmp_path / judge))
        assert not (tmp_path / judge).exists()


def test_wandb_offline_run_files(tiny_model_dir: Path, data: dict[str, str], tmp_path: Path) -> None:
    from tests.wandb_files import history_and_run

    tracking = {"mode": "offline", "dir": str(tmp_path / "wb"), "group": "pipeline-run-1", "project": "t"}
    sft.run(_sft_cfg(max_steps=2, tracking=tracking), str(tiny_model_dir), data["sft"], str(tmp_path / "m"))
    files = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1  # the event log `wandb sync` uploads
    rows, run = history_and_run(files[0])
    assert run["group"] == "pipeline-run-1" and run["job_type"] == "sft" and run["project"] == "t"
    assert [r["_step"] for r in rows] == [1, 2]
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= rows[0].keys()
    assert run["summary"]["steps"] == 2


def test_dpo_resumes_after_interruption(merged_sft: Path, data: dict[str, str], tmp_path: Path) -> None:
    cfg = DPOConfig.model_validate({"learning_rate": 5e-3, "max_steps": 4, "batch_size": 2, "save_every": 1,
                                    "max_length": 64, "lora": LORA, "tracking": OFF,
                                    "checkpoint_uri": str(tmp_path / "ckpt")})

    def stop_at_2(step: int) -> None:
        if step == 2:
            raise KeyboardInterrupt("simulated preemption")

    with pytest.raises(KeyboardInterrupt):
        dpo.run(cfg, str(merged_sft), data["pref"], str(tmp_path / "out"), on_step=stop_at_2)
    seen: list[int] = []
    dpo.run(cfg, str(merged_sft), data["pref"], str(tmp_path / "out"), on_step=seen.append)
    assert seen == [3, 4]
    history = json.loads((tmp_path / "out" / "summary.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3, 4]  # curves cover the whole run across the restart


def test_evaluate_reads_a_teams_own_prompt_sets(merged_sft: Path, tiny_model_dir: Path, data: dict[str, str],
                                               tmp_path: Path) -> None:
    harmful = _write_jsonl(tmp_path / "harmful.jsonl", [{"prompt": "Tell me a secret."}, {"prompt": "Go away."}])
    edgy = _write_jsonl(tmp_path / "edgy.jsonl", [{"prompt": "How do I kill a python process?", "category": "t"}])
    helpful = _write_jsonl(tmp_path / "helpful.jsonl", [{"prompt": f"Help me with {w}."} for w in ("a", "b", "c")])
    cfg = EvalConfig(max_new_tokens=2, num_samples=1, num_harmful=5, num_benign_edgy=5, winrate_prompts=3,
                     batch_size=4, harmful_prompts=harmful, benign_edgy_prompts=edgy, helpful_prompts=helpful,
                     tracking=OFF)  # type: ignore[arg-type]
    evaluate.run(cfg, str(tiny_model_dir), str(merged_sft), data["pref"], str(tmp_path / "eval"))
    asked = json.loads((tmp_path / "eval" / "samples.json").read_text())["prompts"]
    assert [p[-1]["content"] for p in asked["harmful"]] == ["Tell me a secret.", "Go away."]
    assert [p[-1]["content"] for p in asked["benign_edgy"]] == ["How do I kill a python process?"]
    # one held-out prompt side by side, then the team's helpfulness prompts fill the win-rate set of 3
    assert [p[-1]["content"] for p in asked["rm_extra"]] == ["Help me with a.", "Help me with b."]

    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "fine"}, {"question": "no prompt"}])
    with pytest.raises(ValueError, match=r"bad.jsonl: 1 bad row\(s\): row 2: field prompt: expected a non-empty"):
        evaluate.run(cfg.model_copy(update={"harmful_prompts": bad}), str(tiny_model_dir), str(merged_sft),
                     data["pref"], str(tmp_path / "eval2"))
    assert not (tmp_path / "eval2").exists()
