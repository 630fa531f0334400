"""KFP component: supervised fine-tuning with a LoRA adapter (or full weights).

Its settings parameters are generated from the knob table (kubealign.knobs); the body is
kubealign.component_runtime.
"""

from kubealign.kfp_codegen import stage_component

sft = stage_component(
    "sft", "sft", gpu=True,
    required=("base_model: str", "data: Input[Dataset]", "model: Output[Model]", "metrics: Output[Metrics]"),
    doc="Writes the adapter (or full model), tokenizer and summary.json to `model`.")
