"""KFP component: SFT versus aligned model on held-out pairs, prompts and refusal sets.

One component for both graphs: with the optional `reward_model` artifact (the PPO graph) it also
reports the reward model's win rate of aligned over SFT greedy responses. `safety_model` (a
classifier folder/URI) and the judge endpoint are optional too; '' turns either off.
"""

from kubealign.kfp_codegen import stage_component

evaluate = stage_component(
    "evaluate", "evaluate", gpu=True,
    required=("sft_model: Input[Model]", "aligned_model: Input[Model]", "data: Input[Dataset]",
              "report: Output[HTML]", "results: Output[Artifact]", "metrics: Output[Metrics]"),
    optional=("reward_model: Input[Model] = None", "safety_model: str = ''"),
    doc="Writes the HTML report (rendered by the Kubeflow UI), metrics.json and samples.json.")
