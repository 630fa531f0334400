"""KFP component: train the Llama-Guard-style safety classifier (LoRA, merged into plain weights)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
def safety_classifier(
    base_model: str,
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    taxonomy_uri: str = "",
    threshold: float = 0.5,
    shuffle_categories: bool = False,
    drop_categories: float = 0.0,
    learning_rate: float = 2e-4,
    epochs: float = 1.0,
    max_steps: int = 0,
    batch_size: int = 4,
    grad_accum: int = 1,
    max_length: int = 512,
    lora_rank: int = 16,
    lora_alpha: float = 32.0,
    use_lora: bool = True,
    seed: int = 0,
    save_every: int = 0,
    checkpoint_root: str = "",
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """`data`: data_prep splits of kind safety. Writes the classifier folder and held-out metrics
    (overall and per category: precision, recall, F1, FPR, AUPRC) to `metrics`."""
    params = dict(locals())
    from kubealign.config import SafetyConfig
    from kubealign.kfp_support import log_metrics, stage_settings
    from kubealign.stages import safety as stage

    cfg = stage_settings(SafetyConfig, params, "safety")
    log_metrics(metrics, stage.run(cfg, base_model, f"{data.path}/train.jsonl", model.path,
                                   eval_uri=f"{data.path}/eval.jsonl"))
