"""Classifier metrics against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from kubealign.safety.metrics import average_precision, binary_metrics, classifier_metrics, flatten


def test_binary_metrics_by_hand() -> None:
    labels = [True, False, True, True, False, False]
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    preds = [s >= 0.5 for s in scores]  # 1 1 1 0 0 0 -> TP 2 (0.9, 0.7), FP 1 (0.8), FN 1 (0.4), TN 2
    m = binary_metrics(labels, scores, preds)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)  # 2*2 / (2*2 + 1 + 1)
    assert m["fpr"] == pytest.approx(1 / 3)  # 1 / (1 + 2)
    # AP: 0.9(+) R 1/3 P 1 -> 1/3; 0.8(-) adds no recall; 0.7(+) R 2/3 P 2/3 -> 2/9; 0.4(+) R 1 P 3/4 -> 1/4
    assert m["auprc"] == pytest.approx(1 / 3 + 2 / 9 + 1 / 4)  # 29/36
    assert (m["support"], m["count"]) == (3, 6)


def test_average_precision_ties_enter_together() -> None:
    # threshold 0.5 takes both tied examples: R 1/2, P 1/2 -> 1/4; then 0.2(+): R 1, P 2/3 -> 1/3
    assert average_precision([True, False, True], [0.5, 0.5, 0.2]) == pytest.approx(1 / 4 + 1 / 3)
    assert average_precision([True, True], [0.1, 0.9]) == pytest.approx(1.0)
    # a perfectly wrong ranking of one positive among four: P at its recall step is 1/4
    assert average_precision([False, False, False, True], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.25)


def test_undefined_ratios_are_nan() -> None:
    m = binary_metrics([False, False], [0.2, 0.1], [False, False])  # no positives, none predicted
    assert math.isnan(m["precision"]) and math.isnan(m["recall"]) and math.isnan(m["f1"])
    assert math.isnan(m["auprc"]) and m["fpr"] == 0.0
    m = binary_metrics([True], [0.1], [False])  # a missed positive: precision undefined, F1 0
    assert math.isnan(m["precision"]) and m["recall"] == 0.0 and m["f1"] == 0.0 and math.isnan(m["fpr"])
    with pytest.raises(ValueError, match="lengths differ"):
        binary_metrics([True], [0.1, 0.2], [True])


def test_classifier_metrics_overall_and_per_category_by_hand() -> None:
    true_labels = ["unsafe", "unsafe", "safe", "unsafe", "safe"]
    true_cats = [["S1"], ["S1", "S9"], [], ["S9"], []]
    scores = [0.9, 0.8, 0.6, 0.3, 0.1]
    pred_cats = [["S1"], ["S9"], ["S1"], ["S9"], []]  # what the model writes for each (decoded for all)
    out = classifier_metrics(true_labels, true_cats, scores, pred_cats, ["S1", "S2", "S9"], threshold=0.5)
    assert set(out) == {"overall", "S1", "S9", "macro"}  # S2: no true and no predicted example

    o = out["overall"]  # predicted unsafe: 1 1 1 0 0 vs true 1 1 0 1 0 -> TP 2 FP 1 FN 1 TN 1
    assert (o["precision"], o["recall"], o["f1"], o["fpr"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 1 / 2))
    assert o["auprc"] == pytest.approx(1 / 3 + 1 / 3 + 1 / 4)  # .9(+) .8(+) .6(-) .3(+) P 3/4

    s1 = out["S1"]  # true 1 1 0 0 0; predicted (unsafe and tagged S1) 1 0 1 0 0 -> TP 1 FP 1 FN 1 TN 2
    assert (s1["precision"], s1["recall"], s1["f1"], s1["fpr"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2, 1 / 3))
    # scores .9 0 .6 0 0: .9(+) R 1/2 P 1 -> 1/2; .6(-); the 0-tie holds one + of three: R 1, P 2/5 -> 1/5
    assert s1["auprc"] == pytest.approx(0.7)

    s9 = out["S9"]  # true 0 1 0 1 0; predicted 0 1 0 0 0 (the 0.3 one is below the threshold)
    assert (s9["precision"], s9["recall"], s9["f1"], s9["fpr"]) == pytest.approx((1.0, 1 / 2, 2 / 3, 0.0))
    assert s9["auprc"] == pytest.approx(1.0)  # scores 0 .8 0 .3 0 rank both positives first

    assert out["macro"] == pytest.approx({"f1": (1 / 2 + 2 / 3) / 2, "auprc": (0.7 + 1.0) / 2})
    flat = flatten(out)
    assert flat["eval/S9/f1"] == pytest.approx(2 / 3) and flat["eval/overall/fpr"] == pytest.approx(0.5)
