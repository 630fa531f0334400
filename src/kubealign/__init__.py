"""kubealign: align LLMs (SFT, reward model, PPO or DPO, merge, evaluation) as Kubeflow Pipelines."""

__version__ = "0.1.0"
