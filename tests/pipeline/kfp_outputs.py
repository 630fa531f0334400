"""Reading what kfp.local wrote for a task, and the tiny records the pipeline tests feed it."""

from __future__ import annotations

import json
from pathlib import Path


def task_metrics(task_dir: Path) -> dict[str, float]:
    """The KFP Metrics a task logged, read from its executor_output.json (as kfp.local wrote it)."""
    outputs = json.loads((task_dir / "executor_output.json").read_text())["artifacts"]
    return outputs["metrics"]["artifacts"][0]["metadata"]


# The records every tiny-graph run trains on: 12 SFT conversations and 12 preference pairs
# (chosen: an answer; rejected: a refusal).
TOPICS = ("the sun", "a river", "the moon", "a tree", "my dog", "the city", "python code", "a cat",
          "water", "a bird", "the sky", "a list")


def write_tiny_pipeline_data(d: Path) -> dict[str, str]:
    """Writes sft.jsonl and pref.jsonl into `d`; returns their paths as {"sft", "pref"}."""
    sft = [{"messages": [{"role": "user", "content": f"Write a short line about {t}."},
                         {"role": "assistant", "content": f"Here is {t}, simple and short."}]} for t in TOPICS]
    pref = [{"prompt": f"Explain {t} in one line.", "chosen": f"{t.capitalize()} is simple.",
             "rejected": "Sorry, I cannot help with that question at all."} for t in TOPICS]
    d.mkdir(parents=True, exist_ok=True)
    (d / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    (d / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pref))
    return {"sft": str(d / "sft.jsonl"), "pref": str(d / "pref.jsonl")}


# The SFT branch both alignment graphs share (task -> its upstream tasks in the compiled DAG): never-cached
# digests of base_model, sft_data and preference_data, so the cache keys follow the content.
SFT_BRANCH_EDGES: dict[str, set[str]] = {
    "content-digest": set(),
    "content-digest-2": set(),
    "content-digest-3": set(),
    "data-prep": {"content-digest", "content-digest-2"},
    "data-prep-2": {"content-digest", "content-digest-3"},
    "sft": {"data-prep", "content-digest"},
    "merge-lora": {"sft", "content-digest"},
}
