"""KFP component: train the Llama-Guard-style safety classifier (LoRA, merged into plain weights)."""

from kubealign.kfp_codegen import stage_component

safety_classifier = stage_component(
    "safety_classifier", "safety", gpu=True,
    required=("base_model: str", "data: Input[Dataset]", "model: Output[Model]", "metrics: Output[Metrics]"),
    optional=("base_model_digest: str = ''",),
    doc="`data`: data_prep splits of kind safety. Writes the classifier folder and held-out metrics "
        "(overall and per category: precision, recall, F1, FPR, AUPRC) to `metrics`.")
