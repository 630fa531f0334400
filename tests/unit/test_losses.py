"""Tests for kubealign.losses against values worked out by hand in the comments.

Identity used below: -log sigmoid(-x) = -log sigmoid(x) + x.
A = -log sigmoid(1) = ln(1 + e^-1) = 0.31326, so -log sigmoid(-1) = A + 1 = 1.31326.
"""

import math

import pytest
import torch

from kubealign import losses

LN2 = math.log(2.0)
A = math.log(1.0 + math.exp(-1.0))  # -log sigmoid(1) = 0.31326


def close(actual: torch.Tensor, expected, atol: float = 1e-4) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


# ---------------------------------------------------------------------------
# SFT
# ---------------------------------------------------------------------------

# T = 4, V = 2. logits[:, t] predicts labels[:, t + 1].
# Row 0 scores t=1 (label 1, logits [0, ln 3] -> p = 3/4) and t=2 (label 0, logits [0, 0] -> 1/2).
# Row 1 scores only t=2 (label 1, logits [0, ln 3] -> 3/4).
SFT_LABELS = torch.tensor([[-100, -100, 1, 0], [-100, -100, -100, 1]])


def _sft_logits() -> torch.Tensor:
    ln3 = math.log(3.0)
    row0 = [[7.0, -7.0], [0.0, ln3], [0.0, 0.0], [3.0, 1.0]]
    row1 = [[7.0, -7.0], [2.0, 5.0], [0.0, ln3], [3.0, 1.0]]
    return torch.tensor([row0, row1])


def test_sft_loss_token_mean_over_batch():
    # NLLs: ln(4/3) = 0.28768, ln 2 = 0.69315, ln(4/3) = 0.28768 -> mean over 3 tokens
    #   = 1.26851 / 3 = 0.42284 (a mean of per-row means would give 0.38905)
    expected = (2 * math.log(4.0 / 3.0) + LN2) / 3
    close(losses.sft_loss(_sft_logits(), SFT_LABELS), expected)


def test_sft_loss_ignores_logits_at_masked_positions():
    # Rewrite every logit that does not predict a scored label: row 0 t=0 and t=3,
    # row 1 t=0, t=1, t=3. The loss must stay 0.42284.
    base = losses.sft_loss(_sft_logits(), SFT_LABELS)
    changed = _sft_logits()
    changed[0, [0, 3]] = torch.tensor([-40.0, 40.0])
    changed[1, [0, 1, 3]] = torch.tensor([-40.0, 40.0])
    close(losses.sft_loss(changed, SFT_LABELS), base.item(), atol=1e-7)


# ---------------------------------------------------------------------------
# DPO
# ---------------------------------------------------------------------------

# pi_c = -1, pi_r = -3, ref_c = ref_r = -2  ->  h = (-1 + 3) - (-2 + 2) = 2
H2 = (t(-1.0), t(-3.0), t(-2.0), t(-2.0))


def test_dpo_sigmoid_policy_equals_reference_is_ln2():
    # h = 0 -> -log sigmoid(0) = ln 2 = 0.6931 for each example; rewards are 0
    logps = t(-5.0, -7.0)
    out, chosen, rejected = losses.dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.1)
    close(out, [LN2, LN2])
    close(chosen, [0.0, 0.0])
    close(rejected, [0.0, 0.0])


def test_dpo_sigmoid_hand_value_and_rewards():
    # beta = 0.5, h = 2: -log sigmoid(1) = 0.31326
    # chosen reward 0.5 * (-1 + 2) = 0.5; rejected 0.5 * (-3 + 2) = -0.5
    out, chosen, rejected = losses.dpo_loss(*H2, beta=0.5)
    close(out, [A])
    close(chosen, [0.5])
    close(rejected, [-0.5])
    assert not chosen.requires_grad


def test_dpo_sigmoid_label_smoothing():
    # 0.9 * A + 0.1 * (A + 1) = A + 0.1 = 0.41326
    out, _, _ = losses.dpo_loss(*H2, beta=0.5, label_smoothing=0.1)
    close(out, [A + 0.1])


def test_dpo_ipo():
    # h = 0, beta = 0.1: (0 - 1 / 0.2)^2 = 25
    logps = t(-5.0)
    out, _, _ = losses.dpo_loss(logps, logps, logps, logps, beta=0.1, loss_type="ipo")
    close(out, [25.0])
    # h = 2, beta = 0.5: (2 - 1)^2 = 1
    out, _, _ = losses.dpo_loss(*H2, beta=0.5, loss_type="ipo")
    close(out, [1.0])


def test_dpo_hinge():
    # beta = 0.5: h = 2 -> relu(1 - 1) = 0; h = 0 -> 1; h = -2 -> relu(1 + 1) = 2
    pc = t(-1.0, -2.0, -3.0)
    pr = t(-3.0, -2.0, -1.0)
    ref = t(-2.0, -2.0, -2.0)
    out, _, _ = losses.dpo_loss(pc, pr, ref, ref, beta=0.5, loss_type="hinge")
    close(out, [0.0, 1.0, 2.0])


def test_dpo_robust():
    # ls = 0.1, beta = 0.5, h = 2:
    #   (0.9 * A - 0.1 * (A + 1)) / 0.8 = (0.8 A - 0.1) / 0.8 = A - 0.125 = 0.18826
    out, _, _ = losses.dpo_loss(*H2, beta=0.5, loss_type="robust", label_smoothing=0.1)
    close(out, [A - 0.125])
    # ls = 0 reduces to plain sigmoid DPO: A = 0.31326
    out, _, _ = losses.dpo_loss(*H2, beta=0.5, loss_type="robust")
    close(out, [A])


def test_dpo_losses_registry_names():
    assert set(losses.DPO_LOSSES) == {"sigmoid", "ipo", "hinge", "robust"}


def test_dpo_rejects_unknown_loss_type_and_bad_smoothing():
    with pytest.raises(ValueError, match=r"hinge.*ipo.*robust.*sigmoid"):
        losses.dpo_loss(*H2, loss_type="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.dpo_loss(*H2, label_smoothing=0.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.dpo_loss(*H2, label_smoothing=-0.1)


def test_dpo_sigmoid_gradient_pushes_chosen_up_rejected_down():
    # d/d pi_c of -log sigmoid(beta h) = -beta * sigmoid(-beta h); at h = 0, beta = 0.1:
    #   -0.1 * 0.5 = -0.05, and +0.05 for pi_r. Descent raises pi_c and lowers pi_r.
    pc = t(-5.0).requires_grad_()
    pr = t(-5.0).requires_grad_()
    out, _, _ = losses.dpo_loss(pc, pr, t(-5.0), t(-5.0), beta=0.1)
    out.sum().backward()
    close(pc.grad, [-0.05])
    close(pr.grad, [0.05])


def test_dpo_metrics():
    # chosen [0.5, 0.2] mean 0.35; rejected [0.1, 0.4] mean 0.25; margins mean 0.1;
    # accuracy: 0.5 > 0.1 yes, 0.2 > 0.4 no -> 0.5; logps means -2 and -3
    m = losses.dpo_metrics(t(0.5, 0.2), t(0.1, 0.4), t(-1.0, -3.0), t(-2.0, -4.0))
    expected = {
        "rewards/chosen": 0.35,
        "rewards/rejected": 0.25,
        "rewards/accuracies": 0.5,
        "rewards/margins": 0.1,
        "logps/chosen": -2.0,
        "logps/rejected": -3.0,
    }
    assert set(m) == set(expected)
    for key, value in expected.items():
        assert isinstance(m[key], float)
        assert m[key] == pytest.approx(value, abs=1e-6), key


# ---------------------------------------------------------------------------
# Bradley-Terry reward-model loss
# ---------------------------------------------------------------------------


def test_bradley_terry_plain_margin_and_centering():
    rc, rr = t(1.0), t(0.0)
    # -log sigmoid(1 - 0) = 0.31326
    close(losses.bradley_terry_loss(rc, rr), A)
    # margin 1: -log sigmoid(1 - 0 - 1) = ln 2 = 0.69315
    close(losses.bradley_terry_loss(rc, rr, margin=t(1.0)), LN2)
    # centring 0.01 * (1 + 0)^2 = 0.01 -> 0.32326
    close(losses.bradley_terry_loss(rc, rr, center_coef=0.01), A + 0.01)


def test_bradley_terry_batch_mean():
    # pairs (1, 0) and (1, 2): -log sigmoid(1) = A, -log sigmoid(-1) = A + 1
    #   mean = A + 0.5 = 0.81326; centring 0.1 * mean(1^2, 3^2) = 0.1 * 5 = 0.5 -> 1.31326
    close(losses.bradley_terry_loss(t(1.0, 1.0), t(0.0, 2.0), center_coef=0.1), A + 1.0)


# ---------------------------------------------------------------------------
# PPO
# ---------------------------------------------------------------------------


def test_ppo_policy_loss_clip_active():
    # old_logp = 0, so ratio = exp(logp). clip_range 0.2 -> [0.8, 1.2]. Last token is padding.
    #   tok 0: r 1.5, A  1: max(-1.5, -1.2) = -1.2  (clipped: no gradient)
    #   tok 1: r 0.5, A  1: max(-0.5, -0.8) = -0.5  (unclipped, pessimistic side)
    #   tok 2: r 1.1, A -1: max( 1.1,  1.1) =  1.1
    #   loss = (-1.2 - 0.5 + 1.1) / 3 = -0.2
    # clipfrac: |r - 1| = 0.5, 0.5, 0.1 -> 2/3; ratio mean = 3.1 / 3 = 1.03333
    # approxkl = 0.5 * ((ln 1.5)^2 + (ln 0.5)^2 + (ln 1.1)^2) / 3
    #          = 0.5 * (0.164402 + 0.480453 + 0.009084) / 3 = 0.108990
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 2.0]])).requires_grad_()
    old = torch.zeros(1, 4)
    adv = torch.tensor([[1.0, 1.0, -1.0, 5.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, stats = losses.ppo_policy_loss(logp, old, adv, mask, clip_range=0.2)
    close(loss, -0.2)
    assert stats["policy/clipfrac"] == pytest.approx(2 / 3, abs=1e-6)
    assert stats["val/ratio"] == pytest.approx(3.1 / 3, abs=1e-6)
    assert stats["policy/approxkl"] == pytest.approx(0.108990, abs=1e-5)
    # d loss / d logp_t = -A_t * r_t / 3 where unclipped, 0 where clipped or masked:
    #   [0, -0.5/3, 1.1/3, 0] = [0, -0.16667, 0.36667, 0]
    loss.backward()
    close(logp.grad, [[0.0, -0.5 / 3, 1.1 / 3, 0.0]])


def test_ppo_value_loss_clip_active():
    # clip_range_value 0.2. Last token is padding.
    #   tok 0: v 1.0, old 0.5 -> clipped 0.7; R 0: (1 - 0)^2 = 1,  (0.7 - 0)^2 = 0.49 -> 1
    #   tok 1: v 2.0, old 2.5 -> clipped 2.3; R 1: (2 - 1)^2 = 1,  (2.3 - 1)^2 = 1.69 -> 1.69
    #   loss = 0.5 * (1 + 1.69) / 2 = 0.6725; clipped term larger on 1 of 2 -> clipfrac 0.5
    values = torch.tensor([[1.0, 2.0, 0.0]])
    old = torch.tensor([[0.5, 2.5, 0.0]])
    returns = torch.tensor([[0.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 0]])
    loss, stats = losses.ppo_value_loss(values, old, returns, mask, clip_range_value=0.2)
    close(loss, 0.6725)
    assert stats == {"val/clipfrac": pytest.approx(0.5)}


def test_kl_penalized_rewards_k1():
    # kl_coef 0.1. pi = 1/2 everywhere; ref = 1/4 -> k1 = ln 2, ref = 1/2 -> 0.
    # Row 0 (3 valid): kl [ln 2, 0, ln 2] -> rewards [-0.06931, 0, -0.06931 + 1] = [.., 0.93069]
    # Row 1 (2 valid): kl [ln 2, 0, 0(pad)] -> rewards [-0.06931, 0 + 2, 0]
    logp = torch.log(torch.full((2, 3), 0.5))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.25], [0.25, 0.5, 0.01]]))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards, kl = losses.kl_penalized_rewards(t(1.0, 2.0), logp, ref, mask, kl_coef=0.1)
    close(kl, [[LN2, 0.0, LN2], [LN2, 0.0, 0.0]])
    close(rewards, [[-0.1 * LN2, 0.0, 1.0 - 0.1 * LN2], [-0.1 * LN2, 2.0, 0.0]])


def test_kl_penalized_rewards_k3_and_empty_row():
    # pi = 1/2, ref = 1/4: k3 = (1/2 - 1) + ln 2 = 0.19315; kl_coef 1, score 0 -> reward -0.19315
    logp = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    rewards, kl = losses.kl_penalized_rewards(
        t(0.0), logp, ref, torch.ones(1, 1), kl_coef=1.0, estimator="k3"
    )
    close(kl, [[0.19315]])
    close(rewards, [[-0.19315]])
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        losses.kl_penalized_rewards(t(0.0), logp, ref, torch.zeros(1, 1), kl_coef=1.0)
