"""`kubealign run dpo --cache`: KFP's local cache serves an unchanged run and follows the data.

Real: the `kubealign` command, kfp.local.SubprocessRunner and its file cache under the pipeline root,
the tiny model, files on disk. Which tasks ran and which the cache served is read from the console
lines `kubealign run` prints (one per task) and checked against KFP's own runner log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubealign.cli import main

# Tasks that run on every run by design: the content digests (they read the data's current state)
# and evaluate/gate (NO_CACHE_STAGES: evaluate writes the W&B report and the release decision).
ALWAYS_RUN = {"content-digest", "content-digest-2", "content-digest-3", "evaluate", "gate"}
CACHEABLE = {"data-prep", "data-prep-2", "sft", "merge-lora", "dpo", "merge-lora-2"}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[set[str], set[str], str]:
    assert main(args) == 0
    out = capsys.readouterr().out
    started = set(re.findall(r"\] (\S+): started", out))
    cached = set(re.findall(r"\] (\S+): cached", out))
    return started, cached, out


def test_second_identical_run_is_served_from_cache_and_changed_data_retrains(
        tiny_model_dir: Path, tiny_data: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    pref = tmp_path / "pref.jsonl"
    pref.write_text(Path(tiny_data["pref"]).read_text())
    root = tmp_path / "root"
    args = ["run", "dpo", "--cache", "--pipeline-root", str(root)]
    for key, value in {"base_model": str(tiny_model_dir), "sft_data": tiny_data["sft"], "preference_data": str(pref),
                       "lora_rank": 4, "sft_max_steps": 2, "dpo_max_steps": 2, "max_length": 64,
                       "eval_fraction": 0.25, "eval_max_new_tokens": 2, "eval_num_samples": 1, "eval_num_harmful": 1,
                       "eval_num_benign_edgy": 1, "eval_num_winrate_prompts": 1, "eval_num_jailbreak": 1,
                       "wandb_mode": "disabled"}.items():
        args += ["--set", f"{key}={value}"]

    first, first_cached, out = _run(args, capsys)
    assert first == ALWAYS_RUN | CACHEABLE and first_cached == set()
    # the quiet console: two lines per task, the summary table, no KFP dumps; full logs on disk
    assert out.count("\n") <= 52, out  # measured 50 for 12 tasks (with --verbose: every line KFP prints)
    assert "executor_input" not in out and "Traceback" not in out
    run_dir = next(p for p in root.iterdir() if p.name.startswith("kubealign-dpo"))
    dpo_log = (run_dir / "logs" / "dpo.log").read_text()
    assert "Executing task 'dpo'" in dpo_log and "dpo:" in dpo_log  # the stage's own output lives in its log
    assert f"(log: {run_dir / 'logs' / 'dpo.log'})" in out
    # every Metrics artifact exists on disk (a missing one made KFP's cache treat every entry as a miss)
    metrics_file = json.loads((run_dir / "sft" / "executor_output.json").read_text())["artifacts"]["metrics"]
    assert Path(metrics_file["artifacts"][0]["uri"]).exists()

    second, second_cached, out = _run(args, capsys)
    assert second == ALWAYS_RUN and second_cached == CACHEABLE, out
    runner_log = next(p for p in sorted(root.iterdir()) if p.name.startswith("kubealign-dpo") and p != run_dir)
    assert (runner_log / "logs" / "runner.log").read_text().count("cache hit") == len(CACHEABLE)

    # the same URI with new content: data prep of that input reruns, and so does everything below it
    pref.write_text(pref.read_text().replace("is simple.", "is plain."))
    third, third_cached, _ = _run(args, capsys)
    assert third_cached == {"data-prep", "sft", "merge-lora"}
    assert third == ALWAYS_RUN | {"data-prep-2", "dpo", "merge-lora-2"}


def test_a_failing_task_shows_its_last_lines_and_log_not_a_traceback(
        tiny_model_dir: Path, tiny_data: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "sft.jsonl"
    bad.write_text("".join('{"messages": "not a list"}\n' for _ in range(6)))  # every row rejected
    root = tmp_path / "root"
    args = ["run", "dpo", "--pipeline-root", str(root), "--set", f"base_model={tiny_model_dir}",
            "--set", f"sft_data={bad}", "--set", f"preference_data={tiny_data['pref']}", "--set", "wandb_mode=disabled"]
    assert main(args) == 1
    captured = capsys.readouterr()
    console = captured.out + captured.err
    assert "Traceback" not in console and "executor_input" not in console
    assert "data-prep: FAILURE" in console
    run_dir = next(p for p in root.iterdir() if p.name.startswith("kubealign-dpo"))
    log = run_dir / "logs" / "data-prep.log"
    assert captured.err.strip() == f"kubealign run: data-prep failed; its full log: {log}"
    assert "Traceback" in log.read_text()  # the whole story stays in the task's log
    # the last lines shown name the file and what was wrong with its rows
    tail = console.split("--- last lines of data-prep's log ---", 1)[1]
    assert str(bad) in tail or "rejected" in tail, tail
    assert len(console.splitlines()) < 30, console
