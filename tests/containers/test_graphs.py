"""The DPO, PPO and safety graphs through kfp's DockerRunner: every task a container of the trainer image,
started with the compiled component's command and arguments, under the restricted settings
(kubealign.images.docker_runner). Each graph runs again under the SubprocessRunner with the same seed
and inputs, and the metrics every task reports must agree.

Tolerance: rel 1e-4 / abs 1e-6 on every reported metric. Both runs use the same torch wheel
(2.13.0+cpu), the same CPU and thread count and fp32, but not the same process: the interpreter and
C library differ (host Python 3.11.7, image 3.11.2 on Debian bookworm), so buffers can land at other
alignments and a vectorised reduction can round its last bit differently. Training stages carry such a
bit forward: CI's machine measured the reward model's eval.margin 1.2e-7 apart (relative) after three
steps and rm_score.sft at the end of the PPO graph 1.3e-6 apart, so the earlier rel 1e-6 failed there.
A real change is far larger: in that same run two PPO steps moved rm_score from -0.119 (sft) to -0.333
(aligned). Metrics near zero (a KL between two close policies) get the absolute margin. The largest difference of each run
goes to out/test-containers-timings.jsonl. Timing and memory metrics (wall, tokens/s, peak RSS, PPO's time.*_s) measure the
runner, not the model, and are compared only for presence.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import s3fs
import yaml

from kubealign.cli import main
from tests.conftest import create_bucket
from tests.containers.conftest import readable
from tests.pipeline.kfp_outputs import write_tiny_pipeline_data

pytestmark = pytest.mark.containers
VOLATILE = re.compile(r"peak_rss|per_s$|_s$|wall|seconds|(^|[./_])time([./_]|$)")  # e.g. time.generation_total_s
TIMINGS = Path(__file__).resolve().parents[2] / "out" / "test-containers-timings.jsonl"


def run_both(graph: str, settings: dict, tmp_path: Path, *extra: str) -> tuple[dict, dict]:
    """Run `graph` under both runners; returns {task: metrics} for each and records the wall times."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    readable(*(Path(v) for v in settings.values() if isinstance(v, str) and v.startswith("/")))
    results, walls = {}, {}
    for runner in ("docker", "subprocess"):
        root = tmp_path / runner
        t0 = time.perf_counter()
        rc = main(["run", graph, "--config", str(config), "--runner", runner, "--pipeline-root", str(root), *extra])
        walls[runner] = round(time.perf_counter() - t0, 1)
        assert rc == 0, f"{graph} under the {runner} runner failed"
        run_dir = next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        results[runner] = {t.name: metrics(t) for t in run_dir.iterdir() if (t / "executor_output.json").exists()}
    TIMINGS.parent.mkdir(exist_ok=True)
    with TIMINGS.open("a") as f:
        f.write(json.dumps({"graph": graph, "wall_s": walls, "tasks": len(results["docker"]),
                            "largest_difference": largest_difference(results["docker"], results["subprocess"])}) + "\n")
    return results["docker"], results["subprocess"]


def largest_difference(docker: dict, subprocess: dict) -> float:
    """The largest |docker - subprocess| over the compared metrics (recorded for the report)."""
    diffs = [abs(v - subprocess[t][k]) for t in docker for k, v in docker[t].items()
             if not VOLATILE.search(k) and k in subprocess.get(t, {})]
    return max(diffs, default=0.0)


def metrics(task_dir: Path) -> dict[str, float]:
    out = json.loads((task_dir / "executor_output.json").read_text())
    found: dict[str, float] = {}
    for entry in out.get("artifacts", {}).values():
        for art in entry.get("artifacts", []):
            found.update({k: v for k, v in art.get("metadata", {}).items() if isinstance(v, (int, float))})
    found.update({f"param:{k}": v for k, v in out.get("parameterValues", {}).items() if isinstance(v, (int, float))})
    return found


def assert_same_metrics(docker: dict, subprocess: dict) -> int:
    """Equal task sets and metric names; equal values within the stated tolerance. Returns how many compared."""
    assert docker.keys() == subprocess.keys()
    compared = 0
    for task in docker:
        assert docker[task].keys() == subprocess[task].keys(), task
        for key, value in docker[task].items():
            if VOLATILE.search(key):
                continue
            assert value == pytest.approx(subprocess[task][key], rel=1e-4, abs=1e-6), f"{task}: {key}"
            compared += 1
    return compared


COMMON = {"lora_rank": 4, "batch_size": 4, "max_length": 64, "sft_learning_rate": 0.01, "eval_fraction": 0.25,
          "eval_max_new_tokens": 4, "eval_num_samples": 2, "eval_num_harmful": 2, "eval_num_benign_edgy": 2,
          "wandb_mode": "disabled", "seed": 0}


def test_dpo_graph_in_containers_equals_subprocess(image: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_tiny_pipeline_data(tmp_path / "data")
    settings = {**COMMON, "base_model": str(tiny_model_dir), "sft_data": data["sft"], "preference_data": data["pref"],
                "sft_max_steps": 3, "dpo_max_steps": 3, "dpo_learning_rate": 0.01, "gate_max_over_refusal": 1.0}
    docker, subprocess = run_both("dpo", settings, tmp_path)
    assert {"data-prep", "data-prep-2", "sft", "merge-lora", "dpo", "merge-lora-2", "evaluate"} <= docker.keys()
    assert docker["dpo"]["steps"] == 3 and "eval.rewards.accuracies" in docker["dpo"]
    assert assert_same_metrics(docker, subprocess) > 30


def test_ppo_graph_in_containers_equals_subprocess(image: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_tiny_pipeline_data(tmp_path / "data")
    settings = {**COMMON, "base_model": str(tiny_model_dir), "sft_data": data["sft"], "preference_data": data["pref"],
                "sft_max_steps": 2, "reward_max_steps": 3, "ppo_max_steps": 2, "reward_learning_rate": 0.01,
                "ppo_learning_rate": 0.01, "ppo_rollout_batch_size": 4, "ppo_batch_size": 2, "ppo_epochs": 2,
                "ppo_max_new_tokens": 4, "ppo_sample_every": 1, "eval_num_winrate_prompts": 3}
    docker, subprocess = run_both("ppo", settings, tmp_path)
    assert {"sft", "reward-model", "ppo", "evaluate"} <= docker.keys()
    assert assert_same_metrics(docker, subprocess) > 30


SAFETY_RECORDS = [
    {"messages": [{"role": "user", "content": "Write a poem that will hurt my dog."}], "label": "unsafe",
     "categories": ["S1"]},
    {"messages": [{"role": "user", "content": "What is the capital of france?"}], "label": "safe", "categories": []},
    {"messages": [{"role": "user", "content": "How do I make a bomb to hurt people?"}], "label": "unsafe",
     "categories": ["S2"]},
    {"messages": [{"role": "user", "content": "How do I make a bomb to hurt people?"},
                  {"role": "assistant", "content": "Sorry, I cannot help with that."}], "label": "safe"},
]


def test_safety_graph_reads_s3_from_inside_a_container(image: str, tiny_model_dir: Path, tmp_path: Path,
                                                       s3_server: str) -> None:
    bucket = create_bucket("safety-data")
    records = [dict(r, messages=[dict(m, content=f"{m['content']} ({i})") for m in r["messages"]])
               for i in range(4) for r in SAFETY_RECORDS]
    with s3fs.S3FileSystem().open(f"{bucket}/records.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    settings = {"base_model": str(tiny_model_dir), "safety_data": f"{bucket}/records.jsonl", "max_steps": 2,
                "batch_size": 4, "max_length": 1024, "lora_rank": 4, "eval_fraction": 0.25, "wandb_mode": "disabled"}
    # --network host: the container reaches moto on 127.0.0.1, with the endpoint and keys from this shell
    docker, subprocess = run_both("safety", settings, tmp_path, "--network", "host")
    assert docker["data-prep"]["total"] == len(records)  # read from s3:// inside the container
    assert assert_same_metrics(docker, subprocess) > 5
