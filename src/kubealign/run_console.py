"""A quiet console for `kubealign run`: one line per task as it starts and ends, the running task's
progress bar, and every task's full output in a log file under the run folder.

KFP's local runner prints everything through this process's `sys.stdout` (its own log lines, and
each task subprocess's output line by line, tracebacks and executor-input dumps included) and its
warnings through `sys.stderr`. `TaskConsole` stands in for both while the pipeline runs: it routes
each line to the running task's log (`<run folder>/logs/<task>.log`, everything else to
`logs/runner.log`) and shows the person only task starts, ends (status, wall time, key metric),
cache hits and progress bars. A failing task shows its last lines and its log's path.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_CACHED = re.compile(r"Task (\S+) cache hit")
# Release decisions a person must see without opening a log: the gate's verdict and where publish wrote.
_HEADLINE = re.compile(r"^\s*(gate: .*|publish: .*|FAILED .*)$")
_BAR = re.compile(r"\d+%\|.*\|")  # tqdm: ` 40%|████      | 4/10 [00:02<00:03, 2.0step/s]`
TAIL_LINES = 8


def key_metric(task_dir: Path, keys: tuple[str, ...]) -> str:
    """The first of `keys` the task logged as a KFP metric, as `name=value`; '' if none."""
    try:
        outputs = json.loads((task_dir / "executor_output.json").read_text()).get("artifacts", {})
    except (OSError, ValueError):
        return ""
    meta = {k.replace(".", "/"): v for a in outputs.get("metrics", {}).get("artifacts", [])
            for k, v in a.get("metadata", {}).items()}
    for key in keys:
        if isinstance(meta.get(key), (int, float)):
            return f"{key}={meta[key]:.4g}"
    return ""


def failure_tail(lines: list[str], n: int = TAIL_LINES) -> list[str]:
    """What a person needs from a failed task's log: the exception line(s) after the last traceback's
    frames (kubealign's errors name the file, row and field); the last `n` lines when there is none."""
    # KFP's runner indents each line of a task's output by four spaces.
    lines = [line[4:] if line.startswith("    ") else line for line in lines]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return lines[-n:]
    start = starts[-1]
    frames_end = max((i for i in range(start + 1, len(lines)) if lines[i][:1].isspace()), default=start)
    return [line for line in lines[frames_end + 1:] if line.strip()][:n]


class TaskConsole(io.TextIOBase):
    """A text stream that files what KFP's local runner prints and shows a short account of it."""

    def __init__(self, out: TextIO, root: Path, before: set[Path], keys: tuple[str, ...], verbose: bool = False):
        self.out, self.root, self.before, self.keys, self.verbose = out, root, before, keys, verbose
        self.task: str | None = None
        self.t0 = 0.0
        self.pending = ""
        self.lines: dict[str, list[str]] = {}  # task (or "runner") -> its lines, written out at the end
        self.run_dir: Path | None = None
        self.failed: str | None = None
        self.bar_shown = False
        # Progress bars redraw one line with '\r': useful on a terminal, noise in a file or a CI log.
        self.bars = not verbose and getattr(out, "isatty", lambda: False)()

    # --- stream interface -------------------------------------------------------------------------
    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.verbose:
            self.out.write(text)
        self.pending += text
        *complete, self.pending = re.split(r"\r\n|\r|\n", self.pending)
        for line in complete:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    # --- what each line means ---------------------------------------------------------------------
    def _show(self, text: str) -> None:
        if not self.verbose:
            if self.bar_shown:
                self.out.write("\r\x1b[K")
                self.bar_shown = False
            self.out.write(text + "\n")
            self.out.flush()

    def _line(self, line: str) -> None:
        started, ended, cached = _START.search(line), _END.search(line), _CACHED.search(line)
        if started:
            self.task, self.t0 = started.group(1), time.perf_counter()
            self._show(f"[{time.strftime('%H:%M:%S')}] {self.task}: started")
        self.lines.setdefault(self.task or "runner", []).append(line)
        if cached:
            name = cached.group(1).strip("'")
            self._show(f"[{time.strftime('%H:%M:%S')}] {name}: cached (served from the local cache)")
        elif ended:
            self._ended(ended.group(1), ended.group(2))
        elif self.task in ("gate", "publish") and _HEADLINE.match(line):
            self._show(f"           {line.strip()}")
        elif self.task and self.bars and _BAR.search(line):
            self.out.write("\r\x1b[K" + line.strip()[:120])
            self.out.flush()
            self.bar_shown = True

    def _ended(self, task: str, status: str) -> None:
        wall = time.perf_counter() - self.t0
        run_dir = self.find_run_dir()
        metric = key_metric(run_dir / task, self.keys) if run_dir else ""
        self._save(task)
        self._show(f"[{time.strftime('%H:%M:%S')}] {task}: {status} in {wall:.1f}s"
                   + (f"  {metric}" if metric else "") + f"  (log: {self.log_path(task)})")
        if status != "SUCCESS":
            self.failed = task
            lines = self.lines.get(task, [])
            self._show(f"--- last lines of {task}'s log ---")
            for line in failure_tail(lines[1:-1]):
                self._show("    " + line.strip())
        self.task = None

    # --- files --------------------------------------------------------------------------------------
    def find_run_dir(self) -> Path | None:
        """The run's folder: the newest folder KFP created under the pipeline root during this run."""
        if self.run_dir is None:
            new = [p for p in self.root.iterdir() if p.is_dir() and p not in self.before
                   and not p.name.startswith(".")]
            self.run_dir = max(new, key=lambda p: p.stat().st_mtime) if new else None
        return self.run_dir

    def log_path(self, task: str) -> Path:
        base = self.find_run_dir() or self.root
        return base / "logs" / f"{task}.log"

    def _save(self, task: str) -> None:
        path = self.log_path(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines.get(task, [])) + "\n")

    def write_logs(self) -> Path:
        """Every line to its log file; returns the logs folder."""
        if self.pending:
            self._line(_ANSI.sub("", self.pending))
            self.pending = ""
        for task in self.lines:
            self._save(task)
        if self.bar_shown:
            self.out.write("\r\x1b[K")
        return self.log_path("runner").parent


@contextlib.contextmanager
def captured(console: TaskConsole) -> Iterator[TaskConsole]:
    """sys.stdout, sys.stderr and the root logger go to `console` inside the block.

    The root logger too: KFP logs a cache hit at INFO outside its own logging context.
    """
    saved = sys.stdout, sys.stderr
    logger = logging.getLogger()
    saved_logging = logger.level, logger.handlers[:]
    sys.stdout = sys.stderr = console  # type: ignore[assignment]
    logger.handlers = [logging.StreamHandler(console)]
    logger.setLevel(logging.INFO)
    try:
        yield console
    finally:
        sys.stdout, sys.stderr = saved
        logger.setLevel(saved_logging[0])
        logger.handlers = saved_logging[1]
