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
    from kubealign.config import RewardConfig, build
    from kubealign.kfp_support import checkpoint_uri, log_metrics, tracking
    from kubealign.stages import reward as stage

    cfg = build(RewardConfig, {
        "learning_rate": learning_rate, "center_coef": center_coef, "epochs": epochs, "max_steps": max_steps,
        "batch_size": batch_size, "grad_accum": grad_accum, "max_length": max_length, "seed": seed,
        "save_every": save_every, "checkpoint_uri": checkpoint_uri(checkpoint_root, "reward"),
        "lora": {"enabled": use_lora, "r": lora_rank, "alpha": lora_alpha},
        "tracking": tracking(wandb_project, wandb_entity, wandb_mode, run_group),
    }, where="reward parameters")
    log_metrics(metrics, stage.run(cfg, sft_model.path, f"{data.path}/train.jsonl", model.path,
                                   eval_uri=f"{data.path}/eval.jsonl"))
