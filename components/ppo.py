"""KFP component: PPO of a LoRA adapter on the SFT model against the reward model."""

from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
def ppo(
    sft_model: Input[Model],
    reward_model: Input[Model],
    data: Input[Dataset],
    model: Output[Model],
    report: Output[HTML],
    metrics: Output[Metrics],
    learning_rate: float = 1e-4,
    kl_coef: float = 0.05,
    kl_estimator: str = "k1",
    clip_range: float = 0.2,
    clip_range_value: float = 0.2,
    vf_coef: float = 0.1,
    gamma: float = 1.0,
    lam: float = 0.95,
    rollout_batch_size: int = 16,
    ppo_epochs: int = 4,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    missing_eos_penalty: float = 1.0,
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
    sample_every: int = 10,
    checkpoint_root: str = "",
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """Writes the policy adapter, value_head.safetensors, summary.json and report.html to `model`;
    the report (reward and KL curves, sampled completions) also goes to `report`."""
    params = dict(locals())
    import shutil

    from kubealign.config import PPOConfig
    from kubealign.kfp_support import log_metrics, stage_settings
    from kubealign.stages import ppo as stage

    cfg = stage_settings(PPOConfig, params, "ppo")
    summary = stage.run(cfg, sft_model.path, reward_model.path, f"{data.path}/train.jsonl", model.path)
    shutil.copy(f"{model.path}/report.html", report.path)
    log_metrics(metrics, summary)
