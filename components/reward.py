"""KFP component: reward model (scalar head on the SFT model, Bradley-Terry loss), LoRA or full."""

from kubealign.kfp_codegen import stage_component

reward_model = stage_component(
    "reward_model", "reward", gpu=True,
    required=("sft_model: Input[Model]", "data: Input[Dataset]", "model: Output[Model]", "metrics: Output[Metrics]"),
    doc="Writes the merged reward model (a plain sequence classifier), tokenizer and summary.json to `model`.")
