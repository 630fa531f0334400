"""KFP component: validate records, dedupe, split, report every rejected row."""

from kfp.dsl import Dataset, Metrics, Output

from kubealign.kfp_support import component


@component()
def data_prep(
    kind: str,
    input_uri: str,
    splits: Output[Dataset],
    metrics: Output[Metrics],
    eval_fraction: float = 0.1,
    seed: int = 0,
    max_reject_fraction: float = 0.2,
    max_length: int = 512,
    tokenizer_uri: str = "",
):
    """Writes splits/train.jsonl, splits/eval.jsonl and splits/report.json."""
    from kubealign.config import DataPrepConfig, build
    from kubealign.kfp_support import log_metrics
    from kubealign.stages import data_prep as stage

    cfg = build(DataPrepConfig, {"kind": kind, "eval_fraction": eval_fraction, "seed": seed,
                                 "max_reject_fraction": max_reject_fraction, "max_length": max_length,
                                 "tokenizer": tokenizer_uri or None}, where="data_prep parameters")
    log_metrics(metrics, stage.run(cfg, input_uri, splits.path))
