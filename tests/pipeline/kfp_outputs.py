"""Reading what kfp.local wrote for a task."""

from __future__ import annotations

import json
from pathlib import Path


def task_metrics(task_dir: Path) -> dict[str, float]:
    """The KFP Metrics a task logged, read from its executor_output.json (as kfp.local wrote it)."""
    outputs = json.loads((task_dir / "executor_output.json").read_text())["artifacts"]
    return outputs["metrics"]["artifacts"][0]["metadata"]
