"""Classifier metrics from labels and scores: precision, recall, F1, FPR, AUPRC. Pure Python.

Binary (one class "positive" = unsafe):
    precision = TP / (TP + FP)      recall = TP / (TP + FN)      FPR = FP / (FP + TN)
    F1 = 2 TP / (2 TP + FP + FN)    (the harmonic mean of precision and recall, defined whenever
                                     there is any positive label or prediction)
A ratio whose denominator is 0 is NaN (undefined), not 0: "no positives in the split" and "found none
of them" are different things. NaN metrics are left out of KFP Metrics by `kfp_support.log_metrics`.

AUPRC is average precision, the step-wise area under the precision-recall curve (no interpolation):
    AP = sum_k (R_k - R_{k-1}) * P_k
over the distinct score values in decreasing order, where P_k and R_k are the precision and recall
when everything scoring >= the k-th value is called positive (R_0 = 0); tied scores enter together.
It equals scikit-learn's `average_precision_score`. A random scorer gets about the positive rate.

Per category c (multi-label): positives are the examples whose true categories include c, all others
(safe ones and those with other categories) are negatives. Predicted positive = verdict unsafe and c
among the predicted categories; the ranking score is P(unsafe) when c is among the categories the
model writes for that example and 0 otherwise (so AUPRC ranks by P(unsafe) among examples tagged c).
"""

from __future__ import annotations

from collections.abc import Sequence

NAN = float("nan")


def _ratio(num: float, den: float) -> float:
    return num / den if den else NAN


def average_precision(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Step-wise area under the precision-recall curve; NaN when there is no positive label."""
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    positives = sum(bool(y) for y in labels)
    if not positives:
        return NAN
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    ap, tp, fp, prev_recall, i = 0.0, 0, 0, 0.0, 0
    while i < len(ranked):
        score = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == score:  # a tie is one threshold
            tp += bool(ranked[i][1])
            fp += not ranked[i][1]
            i += 1
        recall = tp / positives
        ap += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
    return ap


def binary_metrics(labels: Sequence[bool], scores: Sequence[float], predictions: Sequence[bool]) -> dict[str, float]:
    """Counts and rates of one binary decision. `predictions` are the thresholded decisions."""
    if not len(labels) == len(scores) == len(predictions):
        raise ValueError(f"lengths differ: {len(labels)} labels, {len(scores)} scores, {len(predictions)} predictions")
    tp = sum(1 for y, p in zip(labels, predictions, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predictions, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, predictions, strict=True) if y and not p)
    tn = len(labels) - tp - fp - fn
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "auprc": average_precision(labels, scores),
        "support": float(tp + fn),
        "count": float(len(labels)),
        "tp": float(tp), "fp": float(fp), "fn": float(fn), "tn": float(tn),
    }


def classifier_metrics(true_labels: Sequence[str], true_categories: Sequence[Sequence[str]],
                       scores: Sequence[float], pred_categories: Sequence[Sequence[str]], codes: Sequence[str],
                       threshold: float) -> dict[str, dict[str, float]]:
    """`{"overall": {...}, "macro": {...}, "<code>": {...}}` for a held-out split.

    true_labels: "safe"/"unsafe" per example; true_categories: violated codes per example;
    scores: P(unsafe) per example; pred_categories: the codes the model writes per example (decoded
    for every example, not only those above the threshold); threshold: unsafe iff score >= threshold.
    Categories with no true and no predicted example are left out; "macro" averages F1 and AUPRC over
    the categories that have positives.
    """
    n = len(true_labels)
    if not n == len(true_categories) == len(scores) == len(pred_categories):
        raise ValueError("true_labels, true_categories, scores and pred_categories must have the same length")
    unsafe_true = [label == "unsafe" for label in true_labels]
    unsafe_pred = [s >= threshold for s in scores]
    out = {"overall": binary_metrics(unsafe_true, scores, unsafe_pred)}
    for code in codes:
        labels = [code in cats for cats in true_categories]
        tagged = [code in cats for cats in pred_categories]
        preds = [u and t for u, t in zip(unsafe_pred, tagged, strict=True)]
        if not any(labels) and not any(preds):
            continue
        cat_scores = [s if t else 0.0 for s, t in zip(scores, tagged, strict=True)]
        out[code] = binary_metrics(labels, cat_scores, preds)
    with_support = [m for k, m in out.items() if k != "overall" and m["support"] > 0]
    if with_support:
        # F1 and AUPRC are defined whenever a category has positives
        out["macro"] = {key: sum(m[key] for m in with_support) / len(with_support) for key in ("f1", "auprc")}
    return out


def flatten(nested: dict[str, dict[str, float]], prefix: str = "eval") -> dict[str, float]:
    """`{"overall": {"f1": x}}` -> `{"eval/overall/f1": x}` (metric names for W&B and KFP)."""
    return {f"{prefix}/{group}/{key}": value for group, values in nested.items() for key, value in values.items()}


__all__ = ["average_precision", "binary_metrics", "classifier_metrics", "flatten"]
