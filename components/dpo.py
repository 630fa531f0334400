"""KFP component: DPO (and IPO / hinge / robust variants) on a LoRA adapter over the SFT model."""

from kubealign.kfp_codegen import stage_component

dpo = stage_component(
    "dpo", "dpo", gpu=True,
    required=("sft_model: Input[Model]", "data: Input[Dataset]", "model: Output[Model]", "metrics: Output[Metrics]"),
    doc="Writes the DPO adapter, tokenizer and summary.json to `model`.")
