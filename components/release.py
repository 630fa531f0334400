"""KFP components of the release: the gate (thresholds on the evaluation metrics) and publish.

In a graph: `with dsl.If(gate_task.output == "pass"): publish(...)`. With `fail_run=True` (default)
a failing gate fails its task, and so the run, with a message listing every failed threshold and
its value; with `fail_run=False` it returns "fail" and only the publish step is skipped.
A threshold < 0 is off (KFP parameters have no None).
"""

from kfp.dsl import Artifact, Input, Model

from kubealign.kfp_support import component


@component()
def gate(
    results: Input[Artifact],
    max_unsafe_rate: float = -1.0,
    max_over_refusal: float = -1.0,
    min_win_rate: float = -1.0,
    min_harmful_refusal: float = -1.0,
    fail_run: bool = True,
) -> str:
    """`results`: the evaluate stage's output folder (metrics.json). Returns "pass" or "fail"."""
    import json
    from pathlib import Path

    from kubealign.config import GateConfig, build
    from kubealign.stages import gate as stage

    thresholds = {"max_unsafe_rate": max_unsafe_rate, "max_over_refusal": max_over_refusal,
                  "min_win_rate": min_win_rate, "min_harmful_refusal": min_harmful_refusal}
    cfg = build(GateConfig, {k: v if v >= 0 else None for k, v in thresholds.items()}, where="gate parameters")
    return stage.run(cfg, json.loads(Path(results.path, "metrics.json").read_text()), fail_run=fail_run)


@component()
def publish(model: Input[Model], registry_root: str, model_name: str, version: str, run_name: str = "") -> str:
    """Copies the merged model to `<registry_root>/<model_name>/<version>/` (+ MANIFEST.json, written last);
    refuses a version that is already published or claimed by another run. An empty `version` means
    `run_name` (the KFP run's name, unique per run), which also names this publish in its claim, so a
    retried attempt of this task can finish what a killed one started. Returns the version's URI."""
    from kubealign.config import PublishConfig, build
    from kubealign.stages import publish as stage

    cfg = build(PublishConfig, {"root": registry_root, "model_name": model_name, "version": version or run_name},
                where="publish parameters")
    return stage.run(cfg, model.path, owner=run_name or None)["uri"]
