"""The RLAIF graph: rounds unrolled at compile time, compiled by the real KFP compiler, and run by KFP's
own local runner with two rounds on the tiny model.

Real: kfp's compiler and the PipelineSpec proto (strict parse), kfp.local.SubprocessRunner running every
component in a subprocess, the tiny model and tokenizer, the heuristic refusal judge, the packaged
prompt sets split by `kubealign preferences split`, files on disk. W&B is disabled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubealign.cli import main
from tests.pipeline.kfp_outputs import task_metrics


def _compile(tmp_path: Path, *extra: str) -> pipeline_spec_pb2.PipelineSpec:
    out = tmp_path / "rlaif.yaml"
    assert main(["compile", "rlaif", "-o", str(out), *extra]) == 0
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(next(yaml.safe_load_all(out.read_text())), spec, ignore_unknown_fields=False)
    return spec


def _expected_edges(rounds: int) -> dict[str, set[str]]:
    """Task -> upstream tasks, by hand: KFP names the n-th use of a component `<name>-<n>` (n >= 2)."""
    def nth(name: str, n: int) -> str:
        return name if n == 1 else f"{name}-{n}"

    edges = {"content-digest": set(), "content-digest-2": set(),
             "data-prep": {"content-digest", "content-digest-2"}, "sft": {"data-prep", "content-digest"},
             "merge-lora": {"sft", "content-digest"}}
    policy = "merge-lora"
    for r in range(1, rounds + 1):
        prefs, dpo, merge = nth("preferences", r), nth("dpo", r), nth("merge-lora", r + 1)
        edges[prefs] = {policy}  # sampled from the current policy
        edges[dpo] = {policy, prefs}  # trained from (and anchored to) the current policy, on this round's pairs
        edges[merge] = {policy, dpo}
        policy = merge
    edges["evaluate"] = {"merge-lora", policy, "preferences"}  # SFT vs the last round; round 1's held-out pairs
    edges["gate"] = {"evaluate"}
    edges["condition-1"] = {"gate", policy}
    return edges


@pytest.mark.parametrize("rounds", [2, 3])
def test_compiled_dag_per_round(tmp_path: Path, rounds: int) -> None:
    spec = _compile(tmp_path, "--rounds", str(rounds))
    assert spec.pipeline_info.name == "kubealign-rlaif"
    tasks = spec.root.dag.tasks
    expected = _expected_edges(rounds)
    assert set(tasks) == set(expected)
    for task, upstream in expected.items():
        assert set(tasks[task].dependent_tasks) == upstream, task
    for r in range(1, rounds + 1):
        prefs = "preferences" if r == 1 else f"preferences-{r}"
        assert tasks[prefs].task_info.name == f"round {r}: preferences"
        assert tasks[prefs].inputs.parameters["round_index"].runtime_value.constant.number_value == r
        assert tasks[prefs].caching_options.enable_cache is False  # a fresh sample every run
        dpo = "dpo" if r == 1 else f"dpo-{r}"
        assert tasks[dpo].inputs.artifacts["data"].task_output_artifact.producer_task == prefs
        assert tasks[dpo].inputs.artifacts["data"].task_output_artifact.output_artifact_key == "pairs"
    outputs = spec.components["comp-preferences"].output_definitions.artifacts
    assert outputs["pairs"].artifact_type.schema_title == "system.Dataset"
    assert outputs["scores"].artifact_type.schema_title == "system.Dataset"
    assert outputs["summary"].artifact_type.schema_title == "system.Markdown"  # rendered by the Kubeflow UI
    params = spec.root.input_definitions.parameters
    assert {"prompts", "constitution", "pref_num_responses", "pref_margin", "pref_temperature",
            "eval_harmful_prompts"} <= set(params)
    assert params["pref_num_responses"].default_value.number_value == 4


def test_rounds_option_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "dpo", "-o", str(tmp_path / "x.yaml"), "--rounds", "2"]) == 2
    assert "--rounds: only the rlaif graph has rounds, not 'dpo'" in capsys.readouterr().err
    assert main(["compile", "rlaif", "-o", str(tmp_path / "x.yaml"), "--rounds", "0"]) == 2
    assert "rounds: expected 1 to 20 preference rounds, got 0" in capsys.readouterr().err


def test_local_run_two_rounds(tiny_model_dir: Path, tiny_data: dict[str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    split = tmp_path / "prompts"
    assert main(["preferences", "split", "--out", str(split)]) == 0
    root = tmp_path / "root"
    settings = {
        "base_model": str(tiny_model_dir), "sft_data": tiny_data["sft"], "prompts": str(split / "train.jsonl"),
        "lora_rank": 4, "sft_max_steps": 2, "dpo_max_steps": 2, "batch_size": 4, "max_length": 160,
        "sft_learning_rate": 0.01, "dpo_learning_rate": 0.01, "eval_fraction": 0.25,
        "pref_num_prompts": 8, "pref_num_responses": 3, "pref_max_new_tokens": 8, "pref_temperature": 1.5,
        "pref_eval_fraction": 0.25,
        "eval_max_new_tokens": 4, "eval_num_samples": 2, "eval_num_harmful": 3, "eval_num_benign_edgy": 3,
        "eval_num_winrate_prompts": 3, "wandb_mode": "disabled",
        "eval_harmful_prompts": str(split / "held_out/harmful.jsonl"),
        "eval_benign_edgy_prompts": str(split / "held_out/benign_edgy.jsonl"),
        "eval_helpful_prompts": str(split / "held_out/helpful.jsonl"),
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["run", "rlaif", "--config", str(config), "--rounds", "2", "--pipeline-root", str(root)]) == 0
    assert "total wall time" in capsys.readouterr().out
    run_dir = next(p for p in root.iterdir() if p.is_dir() and p.name.startswith("kubealign-rlaif"))
    tasks = {p.name for p in run_dir.iterdir() if p.is_dir()}
    assert {"sft", "preferences", "preferences-2", "dpo", "dpo-2", "merge-lora-3", "evaluate"} <= tasks
    for task in ("preferences", "preferences-2"):
        pairs = run_dir / task / "pairs"
        summary = json.loads((pairs / "summary.json").read_text())
        assert summary["prompts"] == 8 and summary["responses"] == 24
        assert task_metrics(run_dir / task)["pairs"] == summary["pairs"] >= 1
        assert (run_dir / task / "summary").read_text().startswith("# Preference pairs, round")
        assert len((run_dir / task / "scores").read_text().splitlines()) == 24  # every response, every score
    rounds = [json.loads(line)["provenance"]["round"]
              for t in ("preferences", "preferences-2") for line in (run_dir / t / "pairs/train.jsonl").open()]
    assert set(rounds) == {1, 2}
    # round 2 sampled from round 1's merged policy, and its DPO started from it
    r2 = json.loads((run_dir / "preferences-2/pairs/train.jsonl").read_text().splitlines()[0])
    assert "merge-lora-2" in r2["provenance"]["policy"]
    # no held-out prompt was sampled for training in either round
    held = set()
    for name in ("harmful", "benign_edgy", "helpful"):
        held |= {json.loads(line)["prompt"] for line in (split / "held_out" / f"{name}.jsonl").open()}
    for t in ("preferences", "preferences-2"):
        used = {json.loads(line)["prompt"] for line in (run_dir / t / "scores").open()}
        assert used and not used & held
    assert task_metrics(run_dir / "evaluate")["pairs.count"] >= 1


def test_demo_config_resolves_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    """configs/demo-rlaif.yaml: every key is a parameter of the graph and every stage accepts its values."""
    from kubealign import pipeline_params
    from kubealign.graphs import pipeline

    config = Path(__file__).resolve().parents[2] / "configs" / "demo-rlaif.yaml"
    func = pipeline("rlaif", rounds=2)
    params = pipeline_params.resolve(func, {"base_model": "m", "sft_data": "s.jsonl"}, str(config), [])
    pipeline_params.check_stage_settings(params, "rlaif")
    assert params["prompts"] == "out/rlaif-prompts/train.jsonl"
    assert params["eval_harmful_prompts"] == "out/rlaif-prompts/held_out/harmful.jsonl"
    args = ["run", "rlaif", "--config", str(config), "--set", "base_model=m", "--set", "sft_data=s.jsonl"]
    assert main([*args, "--set", "pref_num_responses=1"]) == 2
    assert "num_responses: Input should be greater than or equal to 2 (got 1) [parameter pref_num_responses]" in (
        capsys.readouterr().err)


def test_ppo_graph_with_constitution_pairs(tmp_path: Path) -> None:
    """rlaif_ppo: the reward model and PPO read the preferences stage's pairs (sampled from the SFT model)."""
    out = tmp_path / "rp.yaml"
    assert main(["compile", "rlaif_ppo", "-o", str(out)]) == 0
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(next(yaml.safe_load_all(out.read_text())), spec, ignore_unknown_fields=False)
    tasks = spec.root.dag.tasks
    assert set(tasks["preferences"].dependent_tasks) == {"merge-lora"}
    assert set(tasks["reward-model"].dependent_tasks) == {"merge-lora", "preferences"}
    assert set(tasks["ppo"].dependent_tasks) == {"merge-lora", "preferences", "reward-model"}
    for task in ("reward-model", "ppo", "evaluate"):
        src = tasks[task].inputs.artifacts["data"].task_output_artifact
        assert (src.producer_task, src.output_artifact_key) == ("preferences", "pairs"), task
    assert "data-prep-2" not in tasks  # no fixed preference file in this graph
    config = Path(__file__).resolve().parents[2] / "configs" / "demo-rlaif-ppo.yaml"
    from kubealign import pipeline_params
    from kubealign.graphs import pipeline

    params = pipeline_params.resolve(pipeline("rlaif_ppo"), {"base_model": "m", "sft_data": "s.jsonl"}, str(config), [])
    pipeline_params.check_stage_settings(params, "rlaif_ppo")
