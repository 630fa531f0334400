"""Kill `kubealign run` while DPO or PPO trains, run the same command again: it resumes.

Real: the `kubealign` CLI in its own process group, KFP's local runner starting every task as a
subprocess, the tiny model, checkpoints on the local disk or on S3 (moto in server mode on
127.0.0.1), SIGKILL to the whole process group (what a preempted pod gets). Each rerun writes a
new run folder, so the SFT model the stage starts from has a new path: only a resume keyed on
content finds the earlier checkpoints. The uninterrupted reference is the stage's Python API on
the rerun's own inputs, with the settings the component builds from the same parameters.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from kubealign import storage
from kubealign.config import DPOConfig, PPOConfig
from kubealign.kfp_support import stage_settings

STEPS = 16  # enough steps that the kill lands mid-training on a busy machine


def _settings(graph: str, model_dir: Path, data: dict[str, str], ckpt: str) -> dict[str, Any]:
    common = {"base_model": str(model_dir), "sft_data": data["sft"], "preference_data": data["pref"],
              "lora_rank": 4, "lora_alpha": 8.0, "sft_max_steps": 2, "batch_size": 2, "max_length": 64,
              "sft_learning_rate": 0.01, "eval_fraction": 0.25, "eval_max_new_tokens": 2, "eval_num_samples": 1,
              "eval_num_harmful": 1, "eval_num_benign_edgy": 1, "eval_num_winrate_prompts": 1, "eval_num_jailbreak": 1,
              "wandb_mode": "disabled", "save_every": 1, "checkpoint_root": ckpt}
    if graph == "dpo":
        return {**common, "dpo_max_steps": STEPS, "dpo_learning_rate": 0.01}
    return {**common, "reward_max_steps": 2, "reward_learning_rate": 0.01, "ppo_max_steps": STEPS,
            "ppo_learning_rate": 0.01, "ppo_rollout_batch_size": 2, "ppo_batch_size": 2, "ppo_epochs": 1,
            "ppo_max_new_tokens": 3}


def _command(graph: str, config: Path, root: Path) -> list[str]:
    return [sys.executable, "-m", "kubealign.cli", "run", graph, "--config", str(config), "--pipeline-root", str(root)]


def _env() -> dict[str, str]:
    # one torch thread per task: the tiny model's ops are too small to split across cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _complete_steps(ckpt: str, stage: str) -> dict[str, list[int]]:
    """Complete checkpoint steps of each run key under `<ckpt>/<stage>/`."""
    fs, path = storage.fs_and_path(storage.join(ckpt, stage))
    fs.invalidate_cache()  # another process writes there: list afresh every time
    if not fs.exists(path):
        return {}
    keys = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)]
    return {k: storage.CheckpointStore(storage.join(ckpt, stage, k)).complete_steps() for k in keys}


def _kill_mid_training(cmd: list[str], ckpt: str, stage: str, log: Path) -> int:
    """Start `cmd`; SIGKILL its process group once `stage` has a complete checkpoint; returns that step."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if any(_complete_steps(ckpt, stage).values()):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    runs = _complete_steps(ckpt, stage)
    assert len(runs) == 1, runs
    saved = max(next(iter(runs.values())))
    assert 1 <= saved < STEPS, f"killed at step {saved}: the kill must land mid-training"
    return saved


def _reference(graph: str, settings: dict[str, Any], run_dir: Path, out: Path) -> None:
    """The same stage, uninterrupted, through its Python API on the rerun's inputs."""
    params = {"batch_size": settings["batch_size"], "max_length": settings["max_length"], "seed": 0,
              "lora_rank": settings["lora_rank"], "lora_alpha": settings["lora_alpha"], "use_lora": True,
              "wandb_project": "kubealign", "wandb_entity": "", "wandb_mode": "disabled", "run_group": ""}
    sft_model = str(run_dir / "merge-lora" / "merged")
    train = str(run_dir / "data-prep-2" / "splits" / "train.jsonl")
    if graph == "dpo":
        from kubealign.stages import dpo

        cfg = stage_settings(DPOConfig, {**params, "learning_rate": settings["dpo_learning_rate"],
                                         "max_steps": STEPS}, "dpo")
        dpo.run(cfg, sft_model, train, str(out))
        return
    from kubealign.stages import ppo

    cfg = stage_settings(PPOConfig, {**params, "learning_rate": settings["ppo_learning_rate"], "max_steps": STEPS,
                                     "rollout_batch_size": 2, "batch_size": 2, "ppo_epochs": 1,
                                     "max_new_tokens": 3}, "ppo")
    ppo.run(cfg, sft_model, str(run_dir / "reward-model" / "model"), train, str(out))


def _kill_and_rerun(graph: str, model_dir: Path, data: dict[str, str], ckpt: str, tmp_path: Path) -> None:
    settings = _settings(graph, model_dir, data, ckpt)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings))
    root = tmp_path / "root"
    cmd = _command(graph, config, root)
    saved = _kill_mid_training(cmd, ckpt, graph, tmp_path / "first.log")
    key_before = set(_complete_steps(ckpt, graph))

    before = {p.name for p in root.iterdir()}
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    log = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, log[-3000:]
    assert set(_complete_steps(ckpt, graph)) == key_before  # the same content key, no second folder
    run_dir = next(root / n for n in {p.name for p in root.iterdir()} - before if (root / n).is_dir())
    # The console shows one line per task; the stage's own output is in its log under the run folder.
    task_log = (run_dir / "logs" / f"{graph}.log").read_text()
    assert f"{graph}: resuming from step {saved} of {STEPS}" in task_log, task_log[-3000:]

    _reference(graph, settings, run_dir, tmp_path / "straight")
    resumed = load_file(run_dir / graph / "model" / "adapter_model.safetensors")
    straight = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k  # bit-equal to the uninterrupted run


def test_dpo_resumes_through_cli_after_sigkill(tiny_model_dir: Path, tiny_data: dict[str, str],
                                                tmp_path: Path) -> None:
    _kill_and_rerun("dpo", tiny_model_dir, tiny_data, str(tmp_path / "ckpt"), tmp_path)


@pytest.mark.slow  # two CLI runs of the PPO graph: about two minutes on the shared two-core machine
def test_ppo_resumes_through_cli_after_sigkill(tiny_model_dir: Path, tiny_data: dict[str, str],
                                                tmp_path: Path) -> None:
    _kill_and_rerun("ppo", tiny_model_dir, tiny_data, str(tmp_path / "ckpt"), tmp_path)


@pytest.mark.slow  # two CLI runs, checkpoints over HTTP to moto
def test_dpo_resumes_through_cli_from_s3(tiny_model_dir: Path, tiny_data: dict[str, str], s3_bucket: str,
                                         tmp_path: Path) -> None:
    _kill_and_rerun("dpo", tiny_model_dir, tiny_data, f"{s3_bucket}/ckpt", tmp_path)


@pytest.mark.slow
def test_ppo_resumes_through_cli_from_s3(tiny_model_dir: Path, tiny_data: dict[str, str], s3_bucket: str,
                                         tmp_path: Path) -> None:
    _kill_and_rerun("ppo", tiny_model_dir, tiny_data, f"{s3_bucket}/ckpt", tmp_path)
