"""KFP component: supervised fine-tuning with a LoRA adapter (or full weights).

Its settings parameters are generated from the knob table (kubealign.knobs); the body is
kubealign.component_runtime.
"""

from kubealign.kfp_codegen import stage_component

sft = stage_component(
    "sft", "sft", gpu=True,
    required=("base_model: str", "data: Input[Dataset]", "model: Output[Model]", "metrics: Output[Metrics]"),
    optional=("base_model_digest: str = ''",),
    doc="Writes the adapter (or full model), tokenizer and summary.json to `model`. `base_model_digest` is "
        "not read: it keys the cache on the model's content, not its URI.")
