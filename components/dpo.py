"""KFP component: DPO (and IPO / hinge / robust variants) on a LoRA adapter over the SFT model."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
def dpo(
    sft_model: Input[Model],
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    learning_rate: float = 5e-5,
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
    """Writes the DPO adapter, tokenizer and summary.json to `model`."""
    params = dict(locals())
    from kubealign.config import DPOConfig
    from kubealign.kfp_support import log_metrics, stage_settings
    from kubealign.stages import dpo as stage

    cfg = stage_settings(DPOConfig, params, "dpo")
    log_metrics(metrics, stage.run(cfg, sft_model.path, f"{data.path}/train.jsonl", model.path,
                                   eval_uri=f"{data.path}/eval.jsonl"))
