"""The PPO graph: compiled by the real KFP compiler and run by KFP's own local runner.

Real: kfp's compiler, the PipelineSpec proto (strict parse), kfp.local.SubprocessRunner running
every component in a subprocess, the tiny model and tokenizer, files on disk. W&B is disabled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubealign.cli import main
from tests.pipeline.kfp_outputs import SFT_BRANCH_EDGES, task_metrics

EXPECTED_EDGES = {
    **SFT_BRANCH_EDGES,
    "reward-model": {"merge-lora", "data-prep-2"},
    "ppo": {"merge-lora", "reward-model", "data-prep-2"},
    "merge-lora-2": {"merge-lora", "ppo"},
    "evaluate": {"merge-lora", "merge-lora-2", "reward-model", "data-prep-2"},
    "gate": {"evaluate"},
    "condition-1": {"gate", "merge-lora-2"},  # publish, when a registry is set and the gate passed
}


def test_compiled_dag(tmp_path: Path) -> None:
    out = tmp_path / "ppo.yaml"
    assert main(["compile", "ppo", "-o", str(out)]) == 0
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(next(yaml.safe_load_all(out.read_text())), spec, ignore_unknown_fields=False)
    assert spec.pipeline_info.name == "kubealign-ppo"
    tasks = spec.root.dag.tasks
    assert set(tasks) == {"data-prep", "data-prep-2", *EXPECTED_EDGES}
    for task, upstream in EXPECTED_EDGES.items():
        assert set(tasks[task].dependent_tasks) == upstream, task
    ppo_in = tasks["ppo"].inputs.artifacts
    assert ppo_in["reward_model"].task_output_artifact.producer_task == "reward-model"
    assert ppo_in["sft_model"].task_output_artifact.producer_task == "merge-lora"
    assert tasks["evaluate"].inputs.artifacts["reward_model"].task_output_artifact.producer_task == "reward-model"
    params = spec.root.input_definitions.parameters
    assert {"ppo_kl_coef", "ppo_clip_range", "ppo_rollout_batch_size", "ppo_max_new_tokens", "ppo_epochs",
            "reward_learning_rate", "reward_max_steps", "ppo_kl_estimator", "ppo_missing_eos_penalty"} <= set(params)
    assert params["ppo_kl_coef"].default_value.number_value == pytest.approx(0.05)
    assert tasks["evaluate"].caching_options.enable_cache is False


def test_run_rejects_bad_ppo_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "ppo", "--set", "base_model=x", "--set", "sft_data=a.jsonl", "--set", "preference_data=b.jsonl"]
    assert main([*args, "--set", "ppo_kl_estimator=k9"]) == 2
    assert "parameters (ppo_*): kl_estimator: Input should be 'k1', 'k2' or 'k3'" in capsys.readouterr().err
    assert main([*args, "--set", "ppo_rollout_batch_size=6"]) == 2
    assert "rollout_batch_size (6) must be a multiple of batch_size" in capsys.readouterr().err




def test_local_run_end_to_end(tiny_model_dir: Path, tiny_data: dict[str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Each task is a subprocess; one torch thread each: the tiny model's ops are too small to split, and
    # on a busy 2-core machine the thread hand-off per op costs more than the op itself.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = tmp_path / "root"
    settings = {
        "base_model": str(tiny_model_dir), "sft_data": tiny_data["sft"], "preference_data": tiny_data["pref"],
        "lora_rank": 4, "sft_max_steps": 2, "reward_max_steps": 3, "ppo_max_steps": 2, "batch_size": 4,
        "max_length": 64, "sft_learning_rate": 0.01, "reward_learning_rate": 0.01, "ppo_learning_rate": 0.01,
        "ppo_rollout_batch_size": 4, "ppo_batch_size": 2, "ppo_epochs": 2, "ppo_max_new_tokens": 4,
        "ppo_sample_every": 1, "eval_fraction": 0.25, "eval_max_new_tokens": 4, "eval_num_samples": 2,
        "eval_num_winrate_prompts": 3, "eval_num_harmful": 2, "eval_num_benign_edgy": 2, "eval_num_jailbreak": 2,
        "wandb_mode": "disabled",
        "gate_min_win_rate": 0.0,  # reads winrate/reward_model: passes only if the metric was measured
        "gate_min_harmful_refusal": 0.0,  # likewise for refusal/harmful/aligned
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["run", "ppo", "--config", str(config), "--set", "ppo_kl_coef=0.1", "--pipeline-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "total wall time" in out

    run_dir = next(p for p in root.iterdir() if p.is_dir() and p.name.startswith("kubealign-ppo"))
    tasks = {p.name for p in run_dir.iterdir() if p.is_dir()}
    assert {"data-prep", "data-prep-2", "sft", "merge-lora", "reward-model", "ppo", "merge-lora-2",
            "evaluate", "gate"} <= tasks
    rm = run_dir / "reward-model" / "model"
    assert (rm / "model.safetensors").exists() and not (rm / "adapter_config.json").exists()
    assert 0 <= task_metrics(run_dir / "reward-model")["eval.accuracy"] <= 1  # held-out accuracy is a KFP metric
    policy = run_dir / "ppo" / "model"
    assert (policy / "adapter_model.safetensors").exists() and (policy / "value_head.safetensors").exists()
    ppo_metrics = task_metrics(run_dir / "ppo")
    assert ppo_metrics["steps"] == 2 and "objective.kl" in ppo_metrics
    assert "objective/kl" in (run_dir / "ppo" / "report").read_text()
    merged = run_dir / "merge-lora-2" / "merged"
    history = json.loads((merged / "training_summary.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2] and "objective/rlhf_reward" in history[0]
    ev = task_metrics(run_dir / "evaluate")
    # 3 win-rate prompts: 2 held out, then packaged helpfulness prompts; those too long for max_length 64
    # are left out and counted
    assert 0 <= ev["winrate.reward_model"] <= 1 and ev["winrate.prompts"] + ev["winrate.prompts_too_long"] == 3
    assert ev["winrate.prompts"] >= 2
    html = (run_dir / "evaluate" / "report").read_text()
    assert "reward model win rate" in html and "PPO objective/kl" in html
    # both thresholds (>= 0) read metrics that evaluate measured, so the gate passed
    assert json.loads((run_dir / "gate" / "executor_output.json").read_text()) == {"parameterValues": {"Output": "pass"}}
    assert "gate: 2 of 2 threshold(s) met" in out
