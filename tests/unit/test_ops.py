"""Tests for kubealign.ops against values worked out by hand in the comments."""

import math

import pytest
import torch

from kubealign import ops

LN2 = math.log(2.0)


def close(actual: torch.Tensor, expected, atol: float = 1e-4) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# ---------------------------------------------------------------------------
# Masked reductions
# ---------------------------------------------------------------------------

# Valid entries are {1, 2, 4}; the NaN sits on a padding position and must not leak.
X = torch.tensor([[1.0, 2.0, float("nan")], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


def test_masked_sum():
    # all: 1 + 2 + 4 = 7; per row: [1 + 2, 4] = [3, 4]
    close(ops.masked_sum(X, MASK), 7.0)
    close(ops.masked_sum(X, MASK, dim=1), [3.0, 4.0])


def test_masked_mean():
    # all: 7 / 3 = 2.3333; per row: [3 / 2, 4 / 1] = [1.5, 4.0]; per column: [5/2, 2/1, 0/0]
    close(ops.masked_mean(X, MASK), 7.0 / 3.0)
    close(ops.masked_mean(X, MASK, dim=1), [1.5, 4.0])
    col = ops.masked_mean(X, MASK.bool(), dim=0)
    close(col[:2], [2.5, 2.0])
    assert torch.isnan(col[2])  # empty slice is NaN, not a silent 0


def test_masked_var():
    # mean 7/3; squared deviations (4/3)^2 + (1/3)^2 + (5/3)^2 = 42/9 = 14/3
    # unbiased: (14/3) / 2 = 7/3 = 2.3333; biased: (14/3) / 3 = 14/9 = 1.5556
    close(ops.masked_var(X, MASK), 7.0 / 3.0)
    close(ops.masked_var(X, MASK, unbiased=False), 14.0 / 9.0)


def test_masked_var_needs_two_elements_when_unbiased():
    with pytest.raises(ValueError, match="at least 2"):
        ops.masked_var(torch.tensor([1.0, 2.0]), torch.tensor([1, 0]))


def test_whiten():
    # x = [2, 4, 6]: mean 4, unbiased var (4 + 0 + 4) / 2 = 4, std 2 -> [-1, 0, 1]
    x = torch.tensor([2.0, 4.0, 6.0])
    close(ops.whiten(x), [-1.0, 0.0, 1.0])
    # shift_mean=False adds the mean back: [3, 4, 5]
    close(ops.whiten(x, shift_mean=False), [3.0, 4.0, 5.0])


def test_whiten_masked_ignores_and_zeroes_padding():
    # the 100 is padding: statistics come from [2, 4, 6] as above, padding output is 0
    x = torch.tensor([[2.0, 4.0, 6.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    close(ops.whiten(x, mask), [[-1.0, 0.0, 1.0, 0.0]])


# ---------------------------------------------------------------------------
# Log-probs and entropy
# ---------------------------------------------------------------------------


def test_logprobs_from_logits():
    # row 0: uniform over 4 tokens -> log(1/4) = -1.3863 for any label
    # row 1: logits [0, ln 3, -inf, -inf] -> p = [1/4, 3/4, 0, 0]; label 1 -> ln(3/4) = -0.2877
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0]], [[0.0, math.log(3.0), float("-inf"), float("-inf")]]])
    labels = torch.tensor([[2], [1]])
    close(ops.logprobs_from_logits(logits, labels), [[-math.log(4.0)], [math.log(0.75)]])


def test_logprobs_from_logits_bfloat16_returns_float32():
    # uniform over 4 tokens in bf16 -> -ln 4 = -1.3863, computed in float32
    logits = torch.zeros(2, 3, 4, dtype=torch.bfloat16)
    out = ops.logprobs_from_logits(logits, torch.zeros(2, 3, dtype=torch.long))
    assert out.dtype == torch.float32
    close(out, torch.full((2, 3), -math.log(4.0)))


def test_sequence_logprobs_shifts_and_masks():
    # T = 3, V = 2. logits[:, t] predicts labels[:, t + 1].
    # t=0: logits [0, ln 3] -> p(1) = 3/4; t=1: logits [0, 0] -> p(0) = 1/2; t=2 is unused.
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0], [50.0, -50.0]]]).repeat(2, 1, 1)
    # row 0 scores labels 1 and 0: ln(3/4) + ln(1/2) = ln(3/8) = -0.9808, 2 tokens
    # row 1 scores only the last label 0: ln(1/2) = -0.6931, 1 token
    labels = torch.tensor([[-100, 1, 0], [-100, -100, 0]])
    summed, counts = ops.sequence_logprobs(logits, labels)
    close(summed, [math.log(3.0 / 8.0), -LN2])
    assert counts.tolist() == [2, 1]


def test_entropy_from_logits():
    # uniform over 4: ln 4 = 1.3863
    # p = [1/4, 3/4]: -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.3466 + 0.2158 = 0.5623
    # [0, 0, -inf]: uniform over 2 with a banned token -> ln 2 = 0.6931 (not NaN)
    h_uniform = ops.entropy_from_logits(torch.zeros(1, 1, 4))
    h_skewed = ops.entropy_from_logits(torch.tensor([[[0.0, math.log(3.0)]]]))
    h_banned = ops.entropy_from_logits(torch.tensor([[[0.0, 0.0, float("-inf")]]]))
    close(h_uniform, [[math.log(4.0)]])
    close(h_skewed, [[0.5623]])
    close(h_banned, [[LN2]])


# ---------------------------------------------------------------------------
# GAE
# ---------------------------------------------------------------------------


def test_gae_hand_example_with_masked_row():
    # gamma = 0.9, lam = 0.8, gamma * lam = 0.72.
    # Row 0, all valid: r = [1, 0, 2], V = [0.5, 1.0, 1.5]
    #   delta_2 = 2 + 0.9*0   - 1.5 = 0.5        A_2 = 0.5
    #   delta_1 = 0 + 0.9*1.5 - 1.0 = 0.35       A_1 = 0.35 + 0.72*0.5  = 0.71
    #   delta_0 = 1 + 0.9*1.0 - 0.5 = 1.4        A_0 = 1.4  + 0.72*0.71 = 1.9112
    #   returns = A + V = [2.4112, 1.71, 2.0]
    # Row 1, step 2 is padding (reward 5 and value 9 must be ignored): r = [1, 2], V = [0.5, 1.0]
    #   delta_1 = 2 + 0.9*0   - 1.0 = 1.0        A_1 = 1.0   (no bootstrap from padding)
    #   delta_0 = 1 + 0.9*1.0 - 0.5 = 1.4        A_0 = 1.4 + 0.72*1.0 = 2.12
    #   A_2 = 0, so returns = [2.62, 2.0, 9.0]
    rewards = torch.tensor([[1.0, 0.0, 2.0], [1.0, 2.0, 5.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv, ret = ops.gae(rewards, values, gamma=0.9, lam=0.8, mask=mask)
    close(adv, [[1.9112, 0.71, 0.5], [2.12, 1.0, 0.0]])
    close(ret, [[2.4112, 1.71, 2.0], [2.62, 2.0, 9.0]])


def test_gae_without_mask_equals_all_valid_mask():
    # Row 0 of the example above, mask omitted: same advantages [1.9112, 0.71, 0.5]
    adv, _ = ops.gae(torch.tensor([[1.0, 0.0, 2.0]]), torch.tensor([[0.5, 1.0, 1.5]]), gamma=0.9, lam=0.8)
    close(adv, [[1.9112, 0.71, 0.5]])


# ---------------------------------------------------------------------------
# KL estimators
# ---------------------------------------------------------------------------


def test_kl_estimators_hand_values():
    # Token 0: pi = 1/2, ref = 1/4.  log r = ln(ref/pi) = -ln 2, r = 1/2
    #   k1 = ln 2 = 0.6931; k2 = 0.5 (ln 2)^2 = 0.2402; k3 = (1/2 - 1) + ln 2 = 0.1931
    # Token 1: pi = 1/4, ref = 1/2.  log r = ln 2, r = 2
    #   k1 = -ln 2 = -0.6931; k2 = 0.2402; k3 = (2 - 1) - ln 2 = 0.3069
    # Token 2: pi = ref -> all three are 0
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.3]]))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.3]]))
    close(ops.kl_per_token(logp, ref, "k1"), [[LN2, -LN2, 0.0]])
    close(ops.kl_per_token(logp, ref, "k2"), [[0.2402, 0.2402, 0.0]])
    close(ops.kl_per_token(logp, ref, "k3"), [[0.1931, 0.3069, 0.0]])
    close(ops.kl_per_token(logp, ref), [[LN2, -LN2, 0.0]])  # default is k1


def test_kl_unknown_estimator_lists_valid_names():
    with pytest.raises(ValueError, match=r"k1.*k2.*k3"):
        ops.kl_per_token(torch.zeros(1, 1), torch.zeros(1, 1), "k4")
