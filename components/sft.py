"""KFP component: supervised fine-tuning with a LoRA adapter (or full weights)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
def sft(
    base_model: str,
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    learning_rate: float = 2e-4,
    epochs: float = 1.0,
    max_steps: int = 0,
    batch_size: int = 4,
    grad_accum: int = 1,
    max_length: int = 512,
    lora_rank: int = 16,
    lora_alpha: float = 32.0,
    use_lora: bool = True,
    distributed: str = "ddp",
    seed: int = 0,
    save_every: int = 0,
    checkpoint_root: str = "",
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """Writes the adapter (or full model), tokenizer and summary.json to `model`."""
    params = dict(locals())
    from kubealign.config import SFTConfig
    from kubealign.kfp_support import log_metrics, stage_settings
    from kubealign.stages import sft as stage

    cfg = stage_settings(SFTConfig, params, "sft")
    log_metrics(metrics, stage.run(cfg, base_model, f"{data.path}/train.jsonl", model.path,
                                   eval_uri=f"{data.path}/eval.jsonl"))
