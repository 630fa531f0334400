"""The knob table against what KFP compiles: defaults, reachability, descriptions, the digest task.

Real: kubealign.knobs, the pydantic settings, the generated component and pipeline functions, and
the kfp 2.17 compiler's YAML for all three graphs (read back as plain YAML).
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubealign import knobs
from kubealign.cli import main
from kubealign.graphs import GRAPHS, pipeline

SRC = Path(__file__).resolve().parents[2] / "src" / "kubealign"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("ir")
    specs = {}
    for graph in GRAPHS:
        assert main(["compile", graph, "-o", str(out / f"{graph}.yaml")]) == 0
        specs[graph] = next(yaml.safe_load_all((out / f"{graph}.yaml").read_text()))
    return specs


def _tasks(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every (task name, task) in the root DAG and in the DAGs of dsl.If conditions."""
    found = []
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    for dag in dags:
        found += list(dag["tasks"].items())
    return found


def _component_stage(task: dict[str, Any]) -> str | None:
    name = task["componentRef"]["name"].removeprefix("comp-").rsplit("-", 1)
    base = name[0] if len(name) == 2 and name[1].isdigit() else "-".join(name)
    return {"data-prep": "data_prep", "sft": "sft", "dpo": "dpo", "reward-model": "reward", "ppo": "ppo",
            "safety-classifier": "safety", "evaluate": "evaluate", "merge-lora": "merge", "gate": "gate",
            "preferences": "preferences"}.get(base)


@pytest.mark.parametrize("graph", GRAPHS)
def test_pipeline_default_equals_component_default_equals_settings_default(
        graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    spec = compiled[graph]
    root = spec["root"]["inputDefinitions"]["parameters"]
    checked = 0
    for knob in knobs.KNOBS[graph]:
        for stage, path in knob.targets:
            info = knobs.field(stage, path)
            settings_default = knobs.kfp_default(info)
            assert root[knob.name]["defaultValue"] == settings_default, knob.name
            arg = next(a for a, p in knobs.COMPONENT_ARGS[stage] if p == path)
            for _, task in _tasks(spec):
                if _component_stage(task) != stage:
                    continue
                comp = spec["components"][task["componentRef"]["name"]]["inputDefinitions"]["parameters"]
                assert comp[arg]["defaultValue"] == settings_default, (knob.name, stage, arg)
                checked += 1
    assert checked >= len(knobs.KNOBS[graph])


def test_settings_default_as_kfp_carries_it() -> None:
    """Hand-checked: the DPO beta, LoRA rank and an off gate threshold, read from config.py."""
    assert knobs.kfp_default(knobs.field("dpo", "beta")) == 0.1
    assert knobs.kfp_default(knobs.field("sft", "lora.r")) == 16
    assert knobs.kfp_default(knobs.field("gate", "min_win_rate")) == -1.0  # None -> "< 0 is off"
    assert knobs.kfp_default(knobs.field("evaluate", "harmful_prompts")) == ""  # None -> '' (packaged set)
    sig = inspect.signature(pipeline("dpo").pipeline_func).parameters
    assert sig["dpo_beta"].default == 0.1 and sig["lora_rank"].annotation is int and sig["base_model"].default is sig[
        "base_model"].empty


@pytest.mark.parametrize("graph", GRAPHS)
def test_every_component_setting_is_reachable_from_a_pipeline_parameter(
        graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    """A component setting no pipeline parameter reaches would be stuck at its default in the Kubeflow UI."""
    root = spec_params = compiled[graph]["root"]["inputDefinitions"]["parameters"]
    for name, task in _tasks(compiled[graph]):
        stage = _component_stage(task)
        if stage is None:
            continue
        bound = task.get("inputs", {}).get("parameters", {})
        for arg, _ in knobs.COMPONENT_ARGS[stage]:
            assert arg in bound, f"{graph}: task {name} leaves {arg} at its component default"
            source = bound[arg].get("componentInputParameter", "")
            source = source.removeprefix("pipelinechannel--")
            if arg in knobs.GRAPH_SET:
                continue
            assert source in root, f"{graph}: task {name}.{arg} is not set from a pipeline parameter"
    assert spec_params


@pytest.mark.parametrize("graph", GRAPHS)
def test_every_root_parameter_has_its_settings_description(graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    params = compiled[graph]["root"]["inputDefinitions"]["parameters"]
    assert len(params) == len(knobs.INPUTS[graph]) + len(knobs.KNOBS[graph])
    missing = [n for n, p in params.items() if not p.get("description", "").strip()]
    assert missing == []
    if graph == "dpo":
        beta = params["dpo_beta"]["description"]
        assert beta.startswith(knobs.field("dpo", "beta").description) and "(stage: dpo, evaluate)" in beta
        assert params["eval_harmful_prompts"]["description"].startswith("JSONL of harmful prompts")
        assert params["base_model"]["description"].startswith("Pretrained causal LM")


@pytest.mark.parametrize("graph", ["dpo", "ppo"])
def test_evaluation_prompt_sets_reach_the_evaluate_task(graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    tasks = compiled[graph]["root"]["dag"]["tasks"]
    bound = tasks["evaluate"]["inputs"]["parameters"]
    for name in ("harmful_prompts", "benign_edgy_prompts", "helpful_prompts"):
        assert bound[name]["componentInputParameter"] == f"eval_{name}"
        assert compiled[graph]["root"]["inputDefinitions"]["parameters"][f"eval_{name}"]["defaultValue"] == ""
    # one evaluate component; the reward model is an optional input only the PPO graph binds
    reward = compiled[graph]["components"]["comp-evaluate"]["inputDefinitions"]["artifacts"]["reward_model"]
    assert reward["isOptional"] is True
    assert ("reward_model" in tasks["evaluate"]["inputs"].get("artifacts", {})) == (graph == "ppo")
    assert "comp-evaluate-rlhf" not in compiled[graph]["components"]


@pytest.mark.parametrize("graph", GRAPHS)
def test_digest_task_is_never_cached_and_keys_data_prep(graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    tasks = compiled[graph]["root"]["dag"]["tasks"]
    preps = [n for n in tasks if n.startswith("data-prep")]
    assert preps
    for prep in preps:
        digest_input = tasks[prep]["inputs"]["parameters"]["input_digest"]["taskOutputParameter"]
        digest = tasks[digest_input["producerTask"]]
        assert digest["componentRef"]["name"].startswith("comp-content-digest")
        assert digest["cachingOptions"].get("enableCache", False) is False  # always reads the data's current state
        assert tasks[prep]["cachingOptions"]["enableCache"] is True  # data prep itself stays cacheable
        # the digest reads the same URI data prep reads
        assert (digest["inputs"]["parameters"]["uri"]["componentInputParameter"]
                == tasks[prep]["inputs"]["parameters"]["input_uri"]["componentInputParameter"])


@pytest.mark.parametrize("graph", GRAPHS)
def test_tasks_reading_the_base_model_uri_are_keyed_on_its_digest(graph: str, compiled: dict[str, dict[str, Any]]) -> None:
    tasks = compiled[graph]["root"]["dag"]["tasks"]
    keyed = {}
    for name, task in tasks.items():
        params = task.get("inputs", {}).get("parameters", {})
        reads = [k for k in ("base_model", "tokenizer_uri") if params.get(k, {}).get("componentInputParameter")
                 == "base_model"]
        if not reads:
            continue
        digest_param = "tokenizer_digest" if reads == ["tokenizer_uri"] else "base_model_digest"
        producer = params[digest_param]["taskOutputParameter"]["producerTask"]
        assert tasks[producer]["inputs"]["parameters"]["uri"]["componentInputParameter"] == "base_model"
        assert tasks[producer]["cachingOptions"].get("enableCache", False) is False
        keyed[name] = producer
    expected = {"dpo": {"data-prep", "data-prep-2", "sft", "merge-lora"},
                "ppo": {"data-prep", "data-prep-2", "sft", "merge-lora"},
                "safety": {"data-prep", "safety-classifier"},
                "rlaif": {"data-prep", "sft", "merge-lora"}, "rlaif_ppo": {"data-prep", "sft", "merge-lora"}}[graph]
    assert set(keyed) == expected and len(set(keyed.values())) == 1  # one digest of the model, read once


def test_one_merge_component_with_the_base_as_artifact_or_uri(compiled: dict[str, dict[str, Any]]) -> None:
    spec = compiled["dpo"]
    tasks = spec["root"]["dag"]["tasks"]
    # KFP writes one component entry per task; both run the same function with the same interface
    comps = [spec["components"][t["componentRef"]["name"]] for n, t in tasks.items() if n.startswith("merge")]
    execs = spec["deploymentSpec"]["executors"]
    assert {execs[c["executorLabel"]]["container"]["args"][-1] for c in comps} == {"merge_lora"}
    assert comps[0]["inputDefinitions"] == comps[1]["inputDefinitions"]
    assert tasks["merge-lora"]["inputs"]["parameters"]["base_model"]["componentInputParameter"] == "base_model"
    assert tasks["merge-lora-2"]["inputs"]["artifacts"]["base"]["taskOutputArtifact"]["producerTask"] == "merge-lora"


def _imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m.removeprefix("kubealign.") for m in found if m.startswith("kubealign.")}


def test_no_import_cycle_among_the_command_modules() -> None:
    commands = ("cli", "cli_server", "kfp_client")
    edges = {m: _imports(m) & set(commands) for m in commands}
    assert edges == {"cli": {"cli_server"}, "cli_server": {"kfp_client"}, "kfp_client": set()}
    # and each imports alone, in any order, in a fresh interpreter
    for first in commands:
        code = f"import kubealign.{first}, kubealign.cli, kubealign.cli_server, kubealign.kfp_client"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_graph_list_lives_in_the_registry_only() -> None:
    for module in ("cli", "cli_server", "kfp_client", "pipeline_params"):
        text = (SRC / f"{module}.py").read_text()
        assert '("dpo", "ppo", "safety")' not in text and "pipelines import" not in text, module
