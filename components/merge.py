"""KFP component: fold a LoRA adapter into its base model.

The base arrives either as a URI (`base_model`, the pipeline's base model) or as the model artifact
of an earlier stage (`base`, e.g. the merged SFT model under the DPO adapter); give exactly one.
With a URI, `base_model_digest` (not read) keys the cache on the model's content.
"""

from kubealign.kfp_codegen import stage_component

merge_lora = stage_component(
    "merge_lora", "merge",
    required=("adapter: Input[Model]", "merged: Output[Model]"),
    optional=("base: Input[Model] = None", "base_model: str = ''", "base_model_digest: str = ''"),
    doc="Writes the merged model (plain safetensors + tokenizer) to `merged`.")
