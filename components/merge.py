"""KFP components: fold a LoRA adapter into its base model.

Two entry points because the base arrives either as a URI (the pipeline's base model) or as an
artifact of an earlier stage (the merged SFT model under the DPO adapter).
"""

from kfp.dsl import Input, Model, Output

from kubealign.kfp_support import component


@component()
def merge_lora(base_model: str, adapter: Input[Model], merged: Output[Model], dtype: str = "float32"):
    """Base given as a URI (local path, s3://, gs://...)."""
    from kubealign.config import MergeConfig, build
    from kubealign.stages import merge as stage

    stage.run(build(MergeConfig, {"dtype": dtype}, where="merge parameters"), base_model, adapter.path, merged.path)


@component()
def merge_lora_onto(base: Input[Model], adapter: Input[Model], merged: Output[Model], dtype: str = "float32"):
    """Base given as the model artifact of an earlier stage."""
    from kubealign.config import MergeConfig, build
    from kubealign.stages import merge as stage

    stage.run(build(MergeConfig, {"dtype": dtype}, where="merge parameters"), base.path, adapter.path, merged.path)
