"""Pure loss functions for SFT, preference optimisation, reward modelling and PPO.

Every function takes tensors and returns tensors (plus plain-float stats); nothing here
touches a model, an optimiser or a logger. Shapes use B = batch, T = sequence length,
V = vocabulary size; log-probs are in nats.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kubealign import ops

__all__ = [
    "DPO_LOSSES",
    "bradley_terry_loss",
    "dpo_loss",
    "dpo_metrics",
    "kl_penalized_rewards",
    "ppo_policy_loss",
    "ppo_value_loss",
    "sft_loss",
]


# ---------------------------------------------------------------------------
# Supervised fine-tuning
# ---------------------------------------------------------------------------


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean next-token negative log-likelihood over the response tokens of a batch.

    ``logits[:, t]`` predicts ``labels[:, t + 1]``; labels equal to ``ignore_index``
    (prompt, padding) are not scored. The mean is over all scored tokens of the batch,
    so a long response weighs more than a short one (a token mean, not a sequence mean).

    Args:
        logits: (B, T, V).
        labels: (B, T) token ids, ``ignore_index`` on unscored positions.
        ignore_index: label value that marks an unscored position.

    Returns:
        Scalar loss in nats per token. NaN if the batch has no scored token.
    """
    summed, counts = ops.sequence_logprobs(logits, labels, ignore_index=ignore_index)
    return -summed.sum() / counts.sum().to(summed.dtype)


# ---------------------------------------------------------------------------
# Direct preference optimisation and its variants
# ---------------------------------------------------------------------------
# Each takes the logits margin h = (log pi_c - log pi_r) - (log ref_c - log ref_r), shape (B,),
# and returns per-example losses (B,).


def _dpo_sigmoid(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    # Rafailov et al. 2023, eq. 7: -log sigmoid(beta * h). With label smoothing eps the
    # preference label is flipped with probability eps (conservative DPO, Mitchell 2023).
    return -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)


def _dpo_ipo(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    # Azar et al. 2023, eq. 17: (h - 1 / (2 tau))^2 with beta as tau. Regresses the margin to
    # a finite target instead of pushing it to infinity. Label smoothing does not apply.
    return (h - 1 / (2 * beta)) ** 2


def _dpo_hinge(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    # SLiC-HF (Zhao et al. 2023): max(0, 1 - beta * h). Label smoothing does not apply.
    return torch.relu(1 - beta * h)


def _dpo_robust(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    # Chowdhury et al. 2024 (rDPO): unbiased loss under labels flipped with probability eps,
    # [(1 - eps) * -log s(beta h) + eps * log s(-beta h)] / (1 - 2 eps); needs eps < 0.5.
    eps = label_smoothing
    return ((1 - eps) * -F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)


DPO_LOSSES: dict[str, Callable[[torch.Tensor, float, float], torch.Tensor]] = {
    "sigmoid": _dpo_sigmoid,
    "ipo": _dpo_ipo,
    "hinge": _dpo_hinge,
    "robust": _dpo_robust,
}


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example preference loss and implicit rewards (Rafailov et al. 2023).

    Args:
        policy_chosen_logps: (B,) summed log pi(y_w | x).
        policy_rejected_logps: (B,) summed log pi(y_l | x).
        ref_chosen_logps: (B,) summed log ref(y_w | x).
        ref_rejected_logps: (B,) summed log ref(y_l | x).
        beta: KL strength (tau for "ipo"); must be > 0.
        loss_type: a key of ``DPO_LOSSES``.
        label_smoothing: assumed label-flip probability in [0, 0.5); used by "sigmoid", "robust".

    Returns:
        (losses (B,), chosen_rewards (B,), rejected_rewards (B,)). The rewards are the implicit
        rewards beta * (log pi - log ref) (eq. 5, without the partition term), detached.

    Raises:
        ValueError: unknown ``loss_type``, ``beta`` <= 0, ``label_smoothing`` outside [0, 0.5),
            or inputs of different shapes.
    """
    try:
        loss_fn = DPO_LOSSES[loss_type]
    except KeyError:
        raise ValueError(
            f"unknown DPO loss_type {loss_type!r}; expected one of {sorted(DPO_LOSSES)}"
        ) from None
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    shapes = {
        tuple(t.shape)
        for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    }
    if len(shapes) != 1:
        raise ValueError(f"all four log-prob tensors must have the same shape (B,), got {shapes}")

    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    # h = (pi_c - pi_r) - (ref_c - ref_r), rearranged.
    h = chosen_logratio - rejected_logratio
    losses = loss_fn(h, beta, label_smoothing)
    return losses, beta * chosen_logratio.detach(), beta * rejected_logratio.detach()


def dpo_metrics(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
) -> dict[str, float]:
    """Batch means of the usual DPO dashboard metrics.

    Args:
        chosen_rewards, rejected_rewards: (B,) implicit rewards from ``dpo_loss``.
        policy_chosen_logps, policy_rejected_logps: (B,) summed policy log-probs.

    Returns:
        {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
        "logps/chosen", "logps/rejected"} as floats; accuracy is the fraction of pairs with
        chosen reward strictly above rejected.
    """
    return {
        "rewards/chosen": chosen_rewards.detach().float().mean().item(),
        "rewards/rejected": rejected_rewards.detach().float().mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).detach().float().mean().item(),
        "logps/chosen": policy_chosen_logps.detach().float().mean().item(),
        "logps/rejected": policy_rejected_logps.detach().float().mean().item(),
    }


# ---------------------------------------------------------------------------
# Reward modelling
# ---------------------------------------------------------------------------


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """Pairwise reward-model loss.

    mean(-log sigmoid(r_c - r_r - m)) (Bradley & Terry 1952; margin m as in Touvron et al.
    2023, Llama 2, eq. 2) + center_coef * mean((r_c + r_r)^2), which keeps rewards centred
    on zero (Eisenstein et al. 2023).

    Args:
        chosen_rewards: (B,) scalar rewards of the preferred responses.
        rejected_rewards: (B,) scalar rewards of the other responses.
        margin: (B,) required reward gap per pair, or None for no margin.
        center_coef: weight of the centring penalty.

    Returns:
        Scalar loss.
    """
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen_rewards + rejected_rewards) ** 2).mean()
    return loss


# ---------------------------------------------------------------------------
# PPO
# ---------------------------------------------------------------------------


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate policy loss (Schulman et al. 2017, eq. 7), as a loss to minimise.

    L = masked_mean(max(-A * r, -A * clip(r, 1 - c, 1 + c))) with r = exp(logp - old_logp);
    the max of the negated terms is the min of eq. 7, the pessimistic bound.

    Args:
        logprobs: (B, T) log-probs of the sampled tokens under the current policy.
        old_logprobs: (B, T) log-probs under the policy that sampled them.
        advantages: (B, T) advantage estimates (treated as constants).
        mask: (B, T) 1 on response tokens.
        clip_range: c in eq. 7.

    Returns:
        (loss scalar, stats) with stats "policy/approxkl" = 0.5 * mean((logp - old)^2),
        "policy/clipfrac" = fraction of tokens with |r - 1| > c, "val/ratio" = mean r; all
        masked token means, as floats.
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = ops.masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {
            "policy/approxkl": (0.5 * ops.masked_mean(log_ratio**2, mask)).item(),
            "policy/clipfrac": ops.masked_mean(
                ((ratio - 1.0).abs() > clip_range).to(ratio.dtype), mask
            ).item(),
            "val/ratio": ops.masked_mean(ratio, mask).item(),
        }
    return loss, stats


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped value loss: 0.5 * masked_mean(max((v - R)^2, (clip(v, old ± c) - R)^2)).

    Clipping the value update around the old prediction mirrors the policy clip
    (Schulman et al. 2017 implementation, as in OpenAI baselines' PPO2).

    Args:
        values: (B, T) current value predictions.
        old_values: (B, T) predictions at rollout time.
        returns: (B, T) value targets R (e.g. from ``ops.gae``).
        mask: (B, T) 1 on response tokens.
        clip_range_value: c, maximum move of v away from old_values.

    Returns:
        (loss scalar, stats) with "val/clipfrac" = fraction of tokens where the clipped
        error is the larger term, i.e. where clipping changes the loss.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    err_unclipped = (values - returns) ** 2
    err_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * ops.masked_mean(torch.maximum(err_unclipped, err_clipped), mask)
    with torch.no_grad():
        clipfrac = ops.masked_mean((err_clipped > err_unclipped).to(values.dtype), mask).item()
    return loss, {"val/clipfrac": clipfrac}


def kl_penalized_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    estimator: str = "k1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO rewards: a KL penalty on every token plus the score on the last one.

    r_t = -kl_coef * KL_t, and r_last += score (Ziegler et al. 2019; Ouyang et al. 2022,
    eq. 2). Inputs are normally detached: rewards are targets, not differentiated.

    Args:
        scores: (B,) reward-model score of each full response.
        logprobs: (B, T) policy log-probs of the sampled tokens.
        ref_logprobs: (B, T) reference log-probs of the same tokens.
        mask: (B, T) 1 on response tokens, right padded; every row needs one valid token.
        kl_coef: penalty weight.
        estimator: KL estimator name, see ``ops.kl_per_token``.

    Returns:
        (rewards (B, T), kl (B, T)); both are 0 on padding.

    Raises:
        ValueError: a row of ``mask`` has no valid token.
    """
    m = mask.bool()
    lengths = m.sum(dim=-1)
    if bool((lengths == 0).any()):
        empty = torch.nonzero(lengths == 0).flatten().tolist()
        raise ValueError(f"mask rows {empty} have no valid token; cannot place the score")
    kl = ops.kl_per_token(logprobs, ref_logprobs, estimator=estimator)
    kl = torch.where(m, kl, torch.zeros((), dtype=kl.dtype, device=kl.device))
    rewards = -kl_coef * kl
    last = (lengths - 1).unsqueeze(-1)
    rewards = rewards.scatter_add(-1, last, scores.to(rewards.dtype).unsqueeze(-1))
    return rewards, kl
