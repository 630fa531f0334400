"""Intervals and paired tests for evaluation figures. Standard library only (no torch, no numpy).

- `rate_interval`: a rate (refusal rate, accuracy) with a 95% percentile-bootstrap interval;
- `win_rate_interval`: pairwise outcomes (win / tie / loss, ties counted half) with the same interval;
- `paired_comparison`: two rates measured on the same prompts (SFT vs aligned): the difference, a
  bootstrap interval of the paired difference (prompts resampled together, so the pairing is kept),
  the exact McNemar p-value on the discordant pairs, and `real`: the interval excludes 0 *and*
  McNemar's p < 0.05 (on a few dozen prompts the percentile interval alone can exclude 0 where the exact
  test does not, e.g. 4 discordant pairs all one way: interval [-0.333, -0.042], p 0.125);
- `binary_report`: accuracy, precision, recall and F1 of a yes/no judge against labels, each with n
  and a bootstrap interval (rows resampled).

Percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample the n items with replacement B times,
recompute the statistic, and take the 2.5% and 97.5% quantiles (linear interpolation between order
statistics, numpy's default). Every function is seeded, so a figure is reproducible.

Exact McNemar test (McNemar 1947; exact form: a two-sided binomial test on the discordant pairs): with
b pairs where only A holds and c where only B holds, under H0 each discordant pair is A-only with
probability 1/2, so  p = min(1, 2 * sum_{k=0}^{min(b,c)} C(b+c, k) / 2^(b+c)),  and p = 1 when b+c = 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
ALPHA = 0.05  # a paired difference is called real at this level (two-sided)
WIN_SCORES = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% (by default) bootstrap interval over n items."""

    estimate: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


@dataclass(frozen=True)
class PairedComparison:
    """rate(A) - rate(B) on the same items; `real` when the interval of the difference excludes 0 and the
    exact McNemar test rejects equal rates at ALPHA."""

    difference: float
    low: float
    high: float
    p_value: float
    real: bool
    n: int
    only_a: int  # items where A holds and B does not (McNemar's b)
    only_b: int  # items where B holds and A does not (McNemar's c)

    def as_dict(self) -> dict[str, float | bool | int]:
        return asdict(self)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted values, interpolating linearly between order statistics."""
    if not sorted_values:
        return float("nan")
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def bootstrap_many(items: Sequence, statistics: Mapping[str, Callable[[Sequence], float]],
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   confidence: float = 0.95) -> dict[str, Interval]:
    """Percentile-bootstrap intervals of several statistics over the SAME resamples of `items`.

    Resamples where a statistic is NaN (e.g. precision with no predicted positive) are left out of its
    interval.
    """
    if resamples < 1:
        raise ValueError(f"resamples: expected at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number between 0 and 1, got {confidence}")
    n = len(items)
    if n == 0:
        nan = float("nan")
        return {name: Interval(nan, nan, nan, 0) for name in statistics}
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {name: [] for name in statistics}
    for _ in range(resamples):
        sample = rng.choices(items, k=n)
        for name, fn in statistics.items():
            value = fn(sample)
            if not math.isnan(value):
                draws[name].append(value)
    tail = (1 - confidence) / 2
    out = {}
    for name, fn in statistics.items():
        values = sorted(draws[name])
        out[name] = Interval(fn(items), quantile(values, tail), quantile(values, 1 - tail), n)
    return out


def bootstrap(items: Sequence, statistic: Callable[[Sequence], float], resamples: int = DEFAULT_RESAMPLES,
              seed: int = DEFAULT_SEED, confidence: float = 0.95) -> Interval:
    """Percentile-bootstrap interval of `statistic(items)`; resamples where it is NaN are left out."""
    return bootstrap_many(items, {"value": statistic}, resamples, seed, confidence)["value"]


def rate_interval(outcomes: Sequence[bool | float], resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED) -> Interval:
    """The mean of 0/1 outcomes (e.g. refused or not per prompt) with its 95% bootstrap interval."""
    return bootstrap([float(x) for x in outcomes], _mean, resamples, seed)


def win_rate_interval(outcomes: Sequence[str | float], resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> Interval:
    """Win rate = (wins + ties / 2) / pairs with its interval; outcomes are "win"/"tie"/"loss" or scores in [0, 1]."""
    scores = []
    for i, o in enumerate(outcomes):
        if isinstance(o, str):
            if o not in WIN_SCORES:
                raise ValueError(f"outcomes[{i}]: expected 'win', 'tie' or 'loss', got {o!r}")
            scores.append(WIN_SCORES[o])
        else:
            scores.append(float(o))
    return bootstrap(scores, _mean, resamples, seed)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (only A) and c (only B)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_comparison(a: Sequence[bool], b: Sequence[bool], resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> PairedComparison:
    """Compare rate(a) with rate(b) where a[i] and b[i] are outcomes on the same prompt i."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need the same prompts: got {len(a)} and {len(b)} outcomes")
    pairs = [(bool(x), bool(y)) for x, y in zip(a, b, strict=True)]
    diff = bootstrap(pairs, lambda s: _mean([float(x) - float(y) for x, y in s]), resamples, seed)
    only_a = sum(x and not y for x, y in pairs)
    only_b = sum(y and not x for x, y in pairs)
    p_value = mcnemar_exact(only_a, only_b)
    real = bool(pairs) and (diff.low > 0 or diff.high < 0) and p_value < ALPHA
    return PairedComparison(diff.estimate, diff.low, diff.high, p_value, real,
                            len(pairs), only_a, only_b)


def _confusion(pairs: Sequence[tuple[bool, bool]]) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of (truth, predicted) pairs."""
    tp = sum(t and p for t, p in pairs)
    fp = sum(p and not t for t, p in pairs)
    fn = sum(t and not p for t, p in pairs)
    return tp, fp, fn, len(pairs) - tp - fp - fn


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def _metric(name: str) -> Callable[[Sequence[tuple[bool, bool]]], float]:
    def value(pairs: Sequence[tuple[bool, bool]]) -> float:
        tp, fp, fn, tn = _confusion(pairs)
        return {"accuracy": _ratio(tp + tn, len(pairs)), "precision": _ratio(tp, tp + fp),
                "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}[name]

    return value


BINARY_METRICS = {name: _metric(name) for name in ("accuracy", "precision", "recall", "f1")}


def binary_report(truth: Sequence[bool], predicted: Sequence[bool], resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED) -> dict[str, Interval]:
    """Accuracy, precision, recall and F1 (positive class = True), each with a bootstrap interval over rows.

    A metric whose denominator is 0 (no predicted or no true positives) is NaN; so are resamples where it is.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"labels ({len(truth)}) and predictions ({len(predicted)}) differ in length")
    pairs = [(bool(t), bool(p)) for t, p in zip(truth, predicted, strict=True)]
    return bootstrap_many(pairs, BINARY_METRICS, resamples, seed)


__all__ = ["BINARY_METRICS", "DEFAULT_RESAMPLES", "Interval", "PairedComparison", "binary_report", "bootstrap",
           "bootstrap_many",
           "mcnemar_exact", "paired_comparison", "quantile", "rate_interval", "win_rate_interval"]
