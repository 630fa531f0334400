"""KFP components: SFT versus aligned model on held-out pairs, prompts and refusal sets.

`evaluate` serves the DPO graph (win rate from the implicit reward), `evaluate_rlhf` the PPO graph
(also the reward model's win rate). Both take an optional safety classifier folder/URI and an
optional OpenAI-compatible judge endpoint; '' turns either off.
"""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kubealign.kfp_support import component


@component(gpu=True)
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
    num_winrate_prompts: int = 64,
    num_harmful: int = 24,
    num_benign_edgy: int = 24,
    seed: int = 0,
    safety_model: str = "",
    judge_endpoint: str = "",
    judge_model: str = "gpt-4o-mini",
    judge_api_key_env: str = "OPENAI_API_KEY",
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """Writes the HTML report (rendered by the Kubeflow UI), metrics.json and samples.json."""
    from kubealign.kfp_support import evaluation_settings, log_metrics
    from kubealign.stages import evaluate as stage

    cfg = evaluation_settings(locals())
    log_metrics(metrics, stage.run(cfg, sft_model.path, aligned_model.path, f"{data.path}/eval.jsonl",
                                   results.path, report_path=report.path, safety_model=safety_model or None))


@component(gpu=True)
def evaluate_rlhf(
    sft_model: Input[Model],
    aligned_model: Input[Model],
    reward_model: Input[Model],
    data: Input[Dataset],
    report: Output[HTML],
    results: Output[Artifact],
    metrics: Output[Metrics],
    beta: float = 0.1,
    max_length: int = 512,
    max_new_tokens: int = 48,
    num_samples: int = 8,
    num_winrate_prompts: int = 64,
    num_harmful: int = 24,
    num_benign_edgy: int = 24,
    seed: int = 0,
    safety_model: str = "",
    judge_endpoint: str = "",
    judge_model: str = "gpt-4o-mini",
    judge_api_key_env: str = "OPENAI_API_KEY",
    wandb_project: str = "kubealign",
    wandb_entity: str = "",
    wandb_mode: str = "auto",
    run_group: str = "",
):
    """As `evaluate`, plus the reward model's win rate of aligned over SFT greedy responses."""
    from kubealign.kfp_support import evaluation_settings, log_metrics
    from kubealign.stages import evaluate as stage

    cfg = evaluation_settings(locals())
    log_metrics(metrics, stage.run(cfg, sft_model.path, aligned_model.path, f"{data.path}/eval.jsonl",
                                   results.path, report_path=report.path, reward_model=reward_model.path,
                                   safety_model=safety_model or None))
