"""KFP components of the release: the gate (thresholds on the evaluation metrics) and publish.

In a graph: `with dsl.If(gate_task.output == "pass"): publish(...)`. With `fail_run=True` (default)
a failing gate fails its task, and so the run, with a message listing every failed threshold and
its value; with `fail_run=False` it returns "fail" and only the publish step is skipped.
A threshold < 0 is off (KFP parameters have no None); the thresholds come from GateConfig.
"""

from kubealign.kfp_codegen import stage_component

gate = stage_component(
    "gate", "gate", required=("results: Input[Artifact]",), optional=("fail_run: bool = True",), returns="str",
    doc="`results`: the evaluate stage's output folder (metrics.json). Returns \"pass\" or \"fail\".")

publish = stage_component(
    "publish", None,
    required=("model: Input[Model]", "registry_root: str", "model_name: str", "version: str"),
    optional=("run_name: str = ''",), returns="str",
    doc="Copies the merged model to `<registry_root>/<model_name>/<version>/` (+ MANIFEST.json, written last); "
        "refuses a version that is already published or claimed by another run. An empty `version` means "
        "`run_name` (the KFP run's name, unique per run), which also names this publish in its claim, so a "
        "retried attempt of this task can finish what a killed one started. Returns the version's URI.")
