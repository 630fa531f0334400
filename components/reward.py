"""KFP component: reward model (scalar head on the SFT model, Bradley-Terry loss), LoRA or full."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
def reward_model(
    sft_model: Input[Model],
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    learning_rate: float = 1e-4,
    center_coef: float = 0.01,
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
    """Writes the merged reward model (a plain sequence classifier), tokenizer and summary.json to `model`."""
    params = dict(locals())
    from kubealign.config import RewardConfig
    from kubealign.kfp_support import log_metrics, stage_settings
    from kubealign.stages import reward as stage

    cfg = stage_settings(RewardConfig, params, "reward")
    log_metrics(metrics, stage.run(cfg, sft_model.path, f"{data.path}/train.jsonl", model.path,
                                   eval_uri=f"{data.path}/eval.jsonl"))
