"""The DPO graph: compiled by the real KFP compiler and run by KFP's own local runner.

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
    "dpo": {"merge-lora", "data-prep-2"},
    "merge-lora-2": {"merge-lora", "dpo"},
    "evaluate": {"merge-lora", "merge-lora-2", "data-prep-2"},
    "gate": {"evaluate"},
    "condition-1": {"gate", "merge-lora-2"},
}


def _compile(tmp_path: Path, *extra: str) -> pipeline_spec_pb2.PipelineSpec:
    out = tmp_path / "dpo.yaml"
    assert main(["compile", "dpo", "-o", str(out), *extra]) == 0
    docs = list(yaml.safe_load_all(out.read_text()))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(docs[0], spec, ignore_unknown_fields=False)  # strict: unknown fields fail
    return spec


def test_compiled_dag(tmp_path: Path) -> None:
    spec = _compile(tmp_path)
    assert spec.pipeline_info.name == "kubealign-dpo"
    tasks = spec.root.dag.tasks
    assert set(tasks) == {"data-prep", "data-prep-2", *EXPECTED_EDGES}
    for task, upstream in EXPECTED_EDGES.items():
        assert set(tasks[task].dependent_tasks) == upstream, task
    # artifacts flow along the edges, not just ordering
    dpo_in = tasks["dpo"].inputs.artifacts
    assert dpo_in["sft_model"].task_output_artifact.producer_task == "merge-lora"
    assert dpo_in["data"].task_output_artifact.producer_task == "data-prep-2"
    params = spec.root.input_definitions.parameters
    assert {"base_model", "sft_data", "preference_data", "lora_rank", "sft_learning_rate", "dpo_learning_rate",
            "dpo_beta", "dpo_epochs", "max_length", "seed"} <= set(params)
    assert params["dpo_beta"].default_value.number_value == pytest.approx(0.1)
    assert params["dpo_loss_type"].default_value.string_value == "sigmoid"
    # every executor is a Python function calling into kubealign, on the trainer image
    for name, ex in spec.deployment_spec["executors"].items():
        container = ex["container"]
        assert container["image"].startswith("ghcr.io/kubealign/trainer-"), name
        assert "from kubealign" in container["args"][-1] or "kubealign" in " ".join(container["command"]), name
        # the image carries kfp and kubealign: no task pip-installs anything when it starts
        assert "pip install" not in " ".join(container["command"]), name
    assert tasks["evaluate"].caching_options.enable_cache is False  # evaluate writes the W&B report
    # publish runs only when a registry is given AND the gate passed: two nested dsl.If conditions
    outer = tasks["condition-1"]
    assert "registry_root" in outer.trigger_policy.condition and "!= ''" in outer.trigger_policy.condition
    inner = spec.components["comp-condition-1"].dag.tasks["condition-2"]
    assert "gate-Output" in inner.trigger_policy.condition and "== 'pass'" in inner.trigger_policy.condition
    # every gate threshold is a pipeline parameter wired into the gate task
    gate_in = tasks["gate"].inputs.parameters
    for threshold in ("max_unsafe_rate", "max_over_refusal", "min_win_rate", "min_harmful_refusal"):
        assert gate_in[threshold].component_input_parameter == f"gate_{threshold}", threshold
        assert params[f"gate_{threshold}"].default_value.number_value == -1.0  # off unless set
    publish = spec.components["comp-condition-2"].dag.tasks["publish"]
    assert publish.inputs.artifacts["model"].component_input_artifact == "pipelinechannel--merge-lora-2-merged"


def test_run_rejects_bad_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "dpo", "--set", "base_model=x", "--set", "sft_data=a.jsonl", "--set", "preference_data=b.jsonl"]
    assert main([*args, "--set", "dpo_beta=-1"]) == 2
    assert "parameters (dpo_*): beta: Input should be greater than 0 (got -1.0)" in capsys.readouterr().err
    assert main([*args, "--set", "lora_rank=many"]) == 2
    assert "parameter lora_rank: expected an integer, got 'many'" in capsys.readouterr().err
    assert main([*args, "--set", "dpo_betta=0.2"]) == 2
    assert "unknown parameter 'dpo_betta'" in capsys.readouterr().err
    assert main(args) == 2  # valid settings, but the inputs are not there: caught before anything runs
    assert "parameter base_model: x does not exist" in capsys.readouterr().err




def test_local_run_end_to_end(tiny_model_dir: Path, tiny_data: dict[str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    settings = {
        "base_model": str(tiny_model_dir), "sft_data": tiny_data["sft"], "preference_data": tiny_data["pref"],
        "lora_rank": 4, "sft_max_steps": 3, "dpo_max_steps": 3, "batch_size": 4, "max_length": 64,
        "sft_learning_rate": 0.01, "dpo_learning_rate": 0.01, "eval_fraction": 0.25, "eval_max_new_tokens": 4,
        "eval_num_samples": 2, "eval_num_harmful": 2, "eval_num_benign_edgy": 2, "eval_num_jailbreak": 2,
        "eval_num_winrate_prompts": 4, "wandb_mode": "disabled",
        "registry_root": str(tmp_path / "registry"), "model_version": "v1", "gate_max_over_refusal": 1.0,
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["run", "dpo", "--config", str(config), "--set", "dpo_beta=0.2",
                 "--pipeline-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "total wall time" in out and "evaluation report:" in out

    run_dir = next(p for p in root.iterdir() if p.is_dir() and p.name.startswith("kubealign-dpo"))
    tasks = {p.name for p in run_dir.iterdir() if p.is_dir()}
    assert {"data-prep", "data-prep-2", "sft", "merge-lora", "dpo", "merge-lora-2", "evaluate"} <= tasks
    splits = run_dir / "data-prep-2" / "splits"
    assert json.loads((splits / "report.json").read_text())["eval"] == 3  # 12 pairs, 25% held out
    merged = run_dir / "merge-lora-2" / "merged"
    assert (merged / "model.safetensors").exists() and (merged / "training_summary.json").exists()
    # KFP Metrics artifacts: what the Kubeflow UI shows on the run page
    dpo_metrics = task_metrics(run_dir / "dpo")
    assert dpo_metrics["steps"] == 3 and 0 <= dpo_metrics["eval.rewards.accuracies"] <= 1
    assert task_metrics(run_dir / "evaluate")["pairs.count"] == 3
    assert "dpo" in out and "rewards/accuracies" in out  # the summary table shows key metrics per stage
    assert 50 < dpo_metrics["peak_rss_mib"] < 64 * 1024  # each stage reports its own peak memory
    dpo_row = next(line for line in out.splitlines() if line.startswith("dpo "))
    assert f"{dpo_metrics['peak_rss_mib']:5.0f} MiB" in dpo_row
    # the gate passed (over-refusal <= 1.0 always holds), so the model was published with its manifest
    manifest = json.loads((tmp_path / "registry" / "kubealign-dpo" / "v1" / "MANIFEST.json").read_text())
    assert "model.safetensors" in {f["path"] for f in manifest["files"]}
    html = (run_dir / "evaluate" / "report").read_text()
    assert "SFT vs aligned" in html and "<svg" in html  # summary table and training curves
