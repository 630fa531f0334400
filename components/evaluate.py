"""KFP component: SFT versus aligned model on held-out pairs, prompts and refusal sets."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kubealign.profiles import DEFAULT_GPU_IMAGE


@dsl.component(base_image=DEFAULT_GPU_IMAGE)
def evaluate(
    sft_model: Input[Model],
    aligned_model: Input[Model],
    data: Input[Dataset],
    report: Output[HTML],
    results: Output[Artifact],
    metrics: Output[Metrics],
    beta: float = 0.1,
    max_length: int = 512,
    max_new_tokens: int = 48,
    num_samples: int = 8,
    num_harmful: int = 24,
    num_benign_edgy: int = 24,
    seed: int = 0,
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """Writes the HTML report (rendered by the Kubeflow UI), metrics.json and samples.json."""
    from kubealign.config import EvalConfig, build
    from kubealign.kfp_support import log_metrics, tracking
    from kubealign.stages import evaluate as stage

    cfg = build(EvalConfig, {
        "beta": beta, "max_length": max_length, "max_new_tokens": max_new_tokens, "num_samples": num_samples,
        "num_harmful": num_harmful, "num_benign_edgy": num_benign_edgy, "seed": seed,
        "tracking": tracking(wandb_project, wandb_entity, wandb_mode, run_group),
    }, where="evaluate parameters")
    log_metrics(metrics, stage.run(cfg, sft_model.path, aligned_model.path, f"{data.path}/eval.jsonl",
                                   results.path, report_path=report.path))
