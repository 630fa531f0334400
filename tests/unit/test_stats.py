"""kubealign.stats against values worked out by hand (binomial sums, quantiles, confusion counts)."""

import math

import pytest

from kubealign import stats


@pytest.mark.parametrize(("b", "c", "expected"), [
    (1, 5, 2 * (1 + 6) / 64),             # n=6: C(6,0)+C(6,1) = 7 -> 2 * 7/64 = 0.21875
    (0, 4, 2 * 1 / 16),                   # n=4: only C(4,0) = 1 -> 0.125
    (2, 10, 2 * (1 + 12 + 66) / 4096),    # n=12: 79/4096 doubled = 0.03857...
    (3, 3, 1.0),                          # 2 * 42/64 > 1 -> capped at 1
    (0, 0, 1.0),                          # no discordant pair: no evidence either way
])
def test_mcnemar_exact_matches_binomial_sum(b, c, expected):
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-12)
    assert stats.mcnemar_exact(c, b) == pytest.approx(expected, abs=1e-12)  # two-sided: symmetric


def test_quantile_interpolates_between_order_statistics():
    assert stats.quantile([0.0, 10.0], 0.25) == 2.5
    assert stats.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert stats.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.975) == pytest.approx(4.9)
    assert math.isnan(stats.quantile([], 0.5))


def test_rate_interval_point_value_and_width():
    ivl = stats.rate_interval([True] * 150 + [False] * 150)
    assert ivl.estimate == 0.5 and ivl.n == 300
    # normal approximation: 1.96 * sqrt(0.25 / 300) = 0.0566 either side
    assert 0.045 < 0.5 - ivl.low < 0.068 and 0.045 < ivl.high - 0.5 < 0.068
    assert stats.rate_interval([True] * 150 + [False] * 150) == ivl  # seeded: reproducible
    assert stats.rate_interval([True] * 150 + [False] * 150, seed=1) != ivl


def test_rate_interval_degenerate_and_empty():
    assert stats.rate_interval([1, 1, 1]) == stats.Interval(1.0, 1.0, 1.0, 3)
    empty = stats.rate_interval([])
    assert empty.n == 0 and math.isnan(empty.estimate) and math.isnan(empty.low)


def test_rate_interval_small_sample_is_wide():
    # 24 prompts (the old demo sets): the interval spans far more than 20 points
    ivl = stats.rate_interval([True] * 12 + [False] * 12)
    assert ivl.high - ivl.low > 0.3


def test_win_rate_counts_ties_half():
    ivl = stats.win_rate_interval(["win", "tie", "loss", "loss"])
    assert ivl.estimate == pytest.approx((1 + 0.5) / 4)
    assert 0.0 <= ivl.low <= ivl.estimate <= ivl.high <= 1.0
    assert stats.win_rate_interval([1.0, 0.5, 0.0, 0.0]).estimate == ivl.estimate
    with pytest.raises(ValueError, match=r"outcomes\[1\]: expected 'win', 'tie' or 'loss', got 'draw'"):
        stats.win_rate_interval(["win", "draw"])


def test_paired_comparison_all_discordant_one_way_is_real():
    cmp = stats.paired_comparison([True] * 20, [False] * 20)
    assert (cmp.difference, cmp.low, cmp.high) == (1.0, 1.0, 1.0)
    assert cmp.real and (cmp.only_a, cmp.only_b, cmp.n) == (20, 0, 20)
    assert cmp.p_value == pytest.approx(2 / 2**20)


def test_paired_comparison_identical_is_not_real():
    a = [True, False] * 10
    cmp = stats.paired_comparison(a, a)
    assert cmp.difference == 0 and cmp.low == 0 and cmp.high == 0
    assert not cmp.real and cmp.p_value == 1.0


def test_paired_comparison_small_difference_is_not_real():
    # 40 prompts, A refuses 2 more than B (b=3, c=1): McNemar p = 2 * (1 + 4) / 16 = 0.625
    a = [True] * 3 + [False] * 1 + [True] * 10 + [False] * 26
    b = [False] * 3 + [True] * 1 + [True] * 10 + [False] * 26
    cmp = stats.paired_comparison(a, b)
    assert cmp.difference == pytest.approx(2 / 40)
    assert cmp.p_value == pytest.approx(0.625)
    assert cmp.low < 0 < cmp.high and not cmp.real


def test_paired_comparison_interval_alone_does_not_make_it_real():
    # The demo's over-refusal case: 24 prompts, 4 discordant pairs all one way (b=0, c=4). The paired
    # bootstrap interval excludes 0, but McNemar p = 2 * C(4,0) / 2**4 = 0.125, so it is not called real.
    a = [False] * 4 + [False] * 20
    b = [True] * 4 + [False] * 20
    cmp = stats.paired_comparison(a, b)
    assert cmp.difference == pytest.approx(-4 / 24)
    assert cmp.high < 0
    assert cmp.p_value == pytest.approx(0.125)
    assert not cmp.real
    # Six one way (p = 2 / 64 = 0.03125) passes both.
    six = stats.paired_comparison([False] * 24, [True] * 6 + [False] * 18)
    assert six.p_value == pytest.approx(2 / 64) and six.high < 0 and six.real


def test_paired_comparison_needs_equal_lengths():
    with pytest.raises(ValueError, match="same prompts: got 2 and 3"):
        stats.paired_comparison([True, False], [True, False, True])


def test_binary_report_hand_worked():
    # tp=2 (rows 0,1), fn=1 (row 2), fp=1 (row 3), tn=1 (row 4)
    truth = [True, True, True, False, False]
    pred = [True, True, False, True, False]
    rep = stats.binary_report(truth, pred)
    assert rep["accuracy"].estimate == pytest.approx(3 / 5)
    assert rep["precision"].estimate == pytest.approx(2 / 3)
    assert rep["recall"].estimate == pytest.approx(2 / 3)
    assert rep["f1"].estimate == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    for ivl in rep.values():
        assert ivl.n == 5 and ivl.low <= ivl.estimate <= ivl.high


def test_binary_report_undefined_precision_is_nan():
    rep = stats.binary_report([True, False], [False, False])
    assert math.isnan(rep["precision"].estimate) and rep["recall"].estimate == 0.0


def test_bootstrap_many_shares_resamples_with_single_bootstrap():
    truth = [True, True, True, False, False, True, False, True]
    pred = [True, False, True, True, False, True, False, False]
    pairs = list(zip(truth, pred, strict=True))
    rep = stats.binary_report(truth, pred, resamples=500, seed=3)
    alone = stats.bootstrap(pairs, stats.BINARY_METRICS["accuracy"], resamples=500, seed=3)
    assert rep["accuracy"] == alone  # same seed, same resamples, same interval
