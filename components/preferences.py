"""KFP component: preference pairs sampled from the current policy and judged against a constitution."""

from kubealign.kfp_codegen import stage_component

preferences = stage_component(
    "preferences", "preferences", gpu=True,
    required=("policy: Input[Model]", "prompts: str", "round_index: int", "pairs: Output[Dataset]",
              "scores: Output[Dataset]", "summary: Output[Markdown]", "metrics: Output[Metrics]"),
    optional=("safety_model: str = ''", "reward_model: str = ''"),
    doc="Writes pairs/train.jsonl and pairs/eval.jsonl (DPO's input, with each judge's scores as provenance), "
        "`scores` (every sampled response with every principle's score, JSONL) and a Markdown summary the "
        "Kubeflow UI renders. `safety_model` / `reward_model`: folders/URIs for the principles that need them.")
