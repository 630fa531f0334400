"""The quiet console's line handling, on text shaped as kfp.local 2.17 prints it (captured from a real run)."""

from __future__ import annotations

import io
from pathlib import Path

from kubealign.run_console import TaskConsole, failure_tail

TRACEBACK = [
    "    Traceback (most recent call last):",
    '      File "/x/component_runtime.py", line 28, in _data_prep',
    "        log_metrics(p['metrics'], stage.run(cfg))",
    "        ^^^^^^^^^^^^",
    "    kubealign.stages.data_prep.DataPrepError: /d/bad.jsonl: 6 of 6 records rejected; first: line 1 field 'messages'",
    "    ",
]


def test_failure_tail_keeps_the_exception_line_not_the_frames() -> None:
    tail = failure_tail(['    {"outputFile": "/x"}', *TRACEBACK])
    assert tail == ["kubealign.stages.data_prep.DataPrepError: /d/bad.jsonl: 6 of 6 records rejected; "
                    "first: line 1 field 'messages'"]
    assert failure_tail([f"line {i}" for i in range(20)], n=3) == ["line 17", "line 18", "line 19"]


def test_console_shows_task_lines_and_files_the_rest(tmp_path: Path) -> None:
    out = io.StringIO()
    console = TaskConsole(out, tmp_path, set(), ("train/loss",))
    (tmp_path / "kubealign-dpo-1").mkdir()
    console.write("\x1b[36mExecuting task 'sft'\x1b[0m\n    {\"executor_input\": 1}\n")
    console.write("    sft:  50%|#####     | 1/2 [00:00<00:00]\r    sft: 100%|##########| 2/2\n")
    console.write("Task \x1b[36m'sft'\x1b[0m finished with status \x1b[32mSUCCESS\x1b[0m\n")
    console.write("Task merge-lora cache hit (key=abc); skipping execution.\n")
    shown = out.getvalue().splitlines()
    assert len(shown) == 3 and shown[0].endswith("sft: started") and ": SUCCESS in " in shown[1]
    assert shown[2].endswith("merge-lora: cached (served from the local cache)")
    logs = console.write_logs()
    assert logs == tmp_path / "kubealign-dpo-1" / "logs"
    sft_log = (logs / "sft.log").read_text()
    assert '{"executor_input": 1}' in sft_log and "2/2" in sft_log  # everything hidden is in the task's log


def test_verbose_passes_everything_through(tmp_path: Path) -> None:
    out = io.StringIO()
    console = TaskConsole(out, tmp_path, set(), (), verbose=True)
    console.write("Executing task 'sft'\n    anything\n")
    assert out.getvalue() == "Executing task 'sft'\n    anything\n"


def test_the_release_decision_is_shown(tmp_path: Path) -> None:
    out = io.StringIO()
    console = TaskConsole(out, tmp_path, set(), ())
    console.write("Executing task 'gate'\n    gate: 1 of 2 threshold(s) met\n      FAILED min_win_rate 0.4 < 0.5\n")
    console.write("Executing task 'sft'\n    FAILED to do nothing in particular\n")
    shown = out.getvalue().splitlines()
    assert shown[1].strip() == "gate: 1 of 2 threshold(s) met" and shown[2].strip() == "FAILED min_win_rate 0.4 < 0.5"
    assert len(shown) == 4  # the sft line stays in sft's log
