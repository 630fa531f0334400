"""Retries for cluster runs: what the compiled DPO graph asks the KFP backend for, per task.

Real: the shipped cluster profiles, the real DPO graph (`kubealign.pipelines.dpo.build`) and the kfp 2.17
compiler writing the pipeline YAML a cluster receives. Nothing runs on a cluster: the test reads
`retryPolicy` of every task (the root DAG and the DAGs of `dsl.If` branches), which the KFP backend
turns into Argo's `retryStrategy` (limit, backoff.duration/factor/maxDuration). Why maxDuration matters:
Argo counts it from the first attempt, running time included (argo-workflows#16857), and KFP's SDK
fills in 3600s when it is not given, which would end retries of any stage that ran for an hour.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler
from platform_tools import PROFILES_DIR

from kubealign.profiles import ProfileError, load_profile

# task name in the compiled DPO graph -> profile stage (KFP names tasks after their components)
# (the content-digest tasks, one per input URI, run under the data_prep settings)
TASK_STAGE = {"content-digest": "data_prep", "content-digest-2": "data_prep", "content-digest-3": "data_prep",
              "data-prep": "data_prep", "data-prep-2": "data_prep", "sft": "sft", "merge-lora": "merge",
              "dpo": "dpo", "merge-lora-2": "merge", "evaluate": "evaluate", "gate": "evaluate",
              "publish": "publish"}


def _retry_policies(profile_path: Path, tmp_path: Path) -> dict[str, dict[str, Any] | None]:
    from kubealign.pipelines import dpo

    out = tmp_path / "dpo.yaml"
    compiler.Compiler().compile(dpo.build(load_profile(profile_path)), str(out))
    spec = next(yaml.safe_load_all(out.read_text()))
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {name: task.get("retryPolicy") for dag in dags for name, task in dag["tasks"].items()
            if not name.startswith("condition-")}


def test_every_task_of_the_gpu_graph_carries_the_profiles_retry_window(tmp_path: Path) -> None:
    policies = _retry_policies(PROFILES_DIR / "gke-gpu.yaml", tmp_path)
    assert set(policies) == set(TASK_STAGE)
    profile = load_profile(PROFILES_DIR / "gke-gpu.yaml")
    for task, policy in policies.items():
        s = profile.for_stage(TASK_STAGE[task])
        assert policy == {"maxRetryCount": s.retries, "backoffDuration": s.backoff_duration,
                          "backoffFactor": s.backoff_factor, "backoffMaxDuration": "86400s"}, task
    assert policies["sft"]["maxRetryCount"] == 2 and policies["publish"]["maxRetryCount"] == 3


def test_a_stage_sets_its_own_retry_window(tmp_path: Path) -> None:
    doc = yaml.safe_load((PROFILES_DIR / "gke-gpu.yaml").read_text())
    # a 3-day DPO run (a new dict: the file's YAML anchor makes sft, dpo, ... one shared mapping)
    doc["stages"]["dpo"] = {**doc["stages"]["dpo"], "retries": 4, "backoff_max_duration": "259200s"}
    path = tmp_path / "long-dpo.yaml"
    path.write_text(yaml.safe_dump(doc))
    policies = _retry_policies(path, tmp_path)
    assert policies["dpo"] == {"maxRetryCount": 4, "backoffDuration": "120s", "backoffFactor": 2.0,
                               "backoffMaxDuration": "259200s"}
    assert policies["sft"]["backoffMaxDuration"] == "86400s"


def test_a_cpu_profile_without_retries_sets_none(tmp_path: Path) -> None:
    assert set(_retry_policies(PROFILES_DIR / "kind-cpu.yaml", tmp_path).values()) == {None}


@pytest.mark.parametrize(("settings", "says"), [
    ("retries: 4\n  backoff_duration: 600s\n  backoff_max_duration: 3600s",
     "defaults: backoff_max_duration 3600s is used up by the waits alone before retry 4 "
     "(600s + 1200s + 2400s + 4800s = 9000s)"),
    ("retries: 1\n  backoff_max_duration: 1h", "defaults.backoff_max_duration: '1h' is not a duration in seconds such as '60s'"),
])
def test_a_retry_window_that_cannot_hold_the_retries_is_refused(settings: str, says: str, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\ndefaults:\n  {settings}\n")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value)
