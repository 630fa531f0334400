"""KFP component: PPO of a LoRA adapter on the SFT model against the reward model."""

from kubealign.kfp_codegen import stage_component

ppo = stage_component(
    "ppo", "ppo", gpu=True,
    required=("sft_model: Input[Model]", "reward_model: Input[Model]", "data: Input[Dataset]",
              "model: Output[Model]", "report: Output[HTML]", "metrics: Output[Metrics]"),
    doc="Writes the policy adapter, value_head.safetensors, summary.json and report.html to `model`; "
        "the report (reward and KL curves, sampled completions) also goes to `report`.")
