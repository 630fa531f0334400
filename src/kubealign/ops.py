"""Pure tensor helpers shared by the losses and the training stages.

Every function here is side-effect free: tensors in, tensors out, no module state.
Shapes use B = batch, T = sequence length, V = vocabulary size.
Masks are 0/1 (bool or numeric) tensors where 1 marks a position that counts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "KL_ESTIMATORS",
    "entropy_from_logits",
    "gae",
    "kl_per_token",
    "logprobs_from_logits",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "sequence_logprobs",
    "whiten",
]

_HALF_DTYPES = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------
# Masked reductions
# ---------------------------------------------------------------------------


def _bool_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Expanding to x's shape makes the element count below match what the sum covers,
    # so a (B, 1) mask on a (B, T) tensor counts T elements per row, not one.
    return mask.bool().expand_as(x)


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` over positions where ``mask`` is 1.

    Args:
        x: any shape.
        mask: broadcastable to ``x``; 0/1 or bool.
        dim: dimension to reduce; ``None`` reduces everything to a scalar.

    Returns:
        Scalar if ``dim`` is None, else ``x`` with ``dim`` removed.
    """
    m = _bool_mask(x, mask)
    # where(), not x * mask: a NaN or inf at a padding position must not leak into the sum.
    zeroed = torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return zeroed.sum() if dim is None else zeroed.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over positions where ``mask`` is 1.

    Args:
        x: any shape.
        mask: broadcastable to ``x``; 0/1 or bool.
        dim: dimension to reduce; ``None`` reduces everything to a scalar.

    Returns:
        Scalar if ``dim`` is None, else ``x`` with ``dim`` removed. A slice with no
        valid position gives NaN (0/0) rather than a silent 0.
    """
    m = _bool_mask(x, mask)
    count = m.sum() if dim is None else m.sum(dim=dim)
    return masked_sum(x, m, dim) / count.to(x.dtype)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over all positions where ``mask`` is 1.

    Args:
        x: any shape.
        mask: broadcastable to ``x``; 0/1 or bool.
        unbiased: apply Bessel's correction n / (n - 1).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: fewer than 2 valid elements (unbiased) or none (biased).
    """
    m = _bool_mask(x, mask)
    n = int(m.sum().item())
    needed = 2 if unbiased else 1
    if n < needed:
        raise ValueError(
            f"masked_var needs at least {needed} valid element(s), mask has {n}; "
            "check that the mask is not all padding"
        )
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    if unbiased:
        var = var * (n / (n - 1))
    return var


def whiten(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalise ``x`` to unit variance (and zero mean) over the valid positions.

    Args:
        x: any shape, e.g. advantages (B, T).
        mask: broadcastable to ``x``; ``None`` means every position is valid.
        shift_mean: if False, the original mean is added back, so only the scale changes.
        eps: added to the variance before the square root.

    Returns:
        Same shape as ``x``. Padding positions are set to 0 so they cannot leak into later sums.
    """
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    m = _bool_mask(x, mask)
    mean = masked_mean(x, m)
    var = masked_var(x, m, unbiased=True)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(m, out, torch.zeros((), dtype=out.dtype, device=out.device))


# ---------------------------------------------------------------------------
# Log-probabilities and entropy
# ---------------------------------------------------------------------------


def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-probability of each label under the softmax of its logits row.

    log p(y) = z_y - logsumexp(z). Only the (B, T) logsumexp is materialised, never a
    (B, T, V) log-softmax copy. The caller is responsible for the causal shift and for
    replacing ignore-index labels with a valid id.

    Args:
        logits: (B, T, V).
        labels: (B, T) integer token ids in [0, V).

    Returns:
        (B, T) log-probs. float32 when ``logits`` is float16/bfloat16, else ``logits.dtype``.
    """
    picked = logits.gather(dim=-1, index=labels.unsqueeze(-1)).squeeze(-1)
    if logits.dtype in _HALF_DTYPES:
        # A half-precision logsumexp over a 32k+ vocabulary loses about two digits, enough to
        # bias KL and DPO margins. Upcast one sequence at a time so the float32 copy is
        # (T, V), not (B, T, V).
        lse = torch.stack([torch.logsumexp(row.float(), dim=-1) for row in logits])
        return picked.float() - lse
    return picked - torch.logsumexp(logits, dim=-1)


def sequence_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each sequence's labelled tokens.

    Applies the causal shift: ``logits[:, t]`` predicts ``labels[:, t + 1]``. Positions whose
    label is ``ignore_index`` (prompt, padding) contribute nothing.

    Args:
        logits: (B, T, V).
        labels: (B, T) token ids, ``ignore_index`` where a token is not scored.
        ignore_index: label value that marks an unscored position.

    Returns:
        (summed log-probs (B,), scored-token counts (B,) int64).
    """
    shifted_logits = logits[:, :-1]
    shifted_labels = labels[:, 1:]
    mask = shifted_labels != ignore_index
    # Any valid id works for the gather; the result is masked out afterwards.
    safe_labels = shifted_labels.masked_fill(~mask, 0)
    token_logps = logprobs_from_logits(shifted_logits, safe_labels)
    return masked_sum(token_logps, mask, dim=-1), mask.sum(dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H = -sum_v p_v log p_v of the softmax over the last dimension, in nats.

    Args:
        logits: (B, T, V). ``-inf`` entries (banned tokens) are allowed.

    Returns:
        (B, T).
    """
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    # 0 * log 0 = 0 by convention; the plain product would be 0 * -inf = NaN.
    plogp = torch.where(p > 0, p * logp, torch.zeros((), dtype=p.dtype, device=p.device))
    return -plogp.sum(dim=-1)


# ---------------------------------------------------------------------------
# Advantages
# ---------------------------------------------------------------------------


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    lam: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438).

    Eq. 16: A_t = sum_l (gamma * lam)^l * delta_{t+l}, with the TD residual
    delta_t = r_t + gamma * V_{t+1} - V_t (eq. 10), computed by the backward recursion
    A_t = delta_t + gamma * lam * A_{t+1}.

    The episode ends at the last valid step: V and A past it are 0, so nothing is
    bootstrapped from padding. Inputs are usually detached; no gradient is expected here.

    Args:
        rewards: (B, T) per-step rewards.
        values: (B, T) value estimates V_t.
        gamma: discount factor.
        lam: GAE lambda.
        mask: (B, T) 1 on valid steps, 0 on right padding after the end; ``None`` = all valid.

    Returns:
        (advantages (B, T), returns (B, T)) with returns = advantages + values.
        Advantages are 0 at padding steps, so returns equal values there.
    """
    if mask is None:
        mask = torch.ones_like(values)
    m = mask.to(values.dtype)
    T = values.shape[-1]
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    next_adv = torch.zeros_like(values[:, 0])
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        # Multiplying by m_t zeroes padding steps; because the mask is right padded this
        # also makes V_{t+1} and A_{t+1} zero for the last valid step of each row.
        adv_t = (delta + gamma * lam * next_adv) * m[:, t]
        advantages[:, t] = adv_t
        next_adv = adv_t
        next_value = values[:, t] * m[:, t]
    return advantages, advantages + values


# ---------------------------------------------------------------------------
# KL estimators (Schulman, "Approximating KL divergence", 2020)
# ---------------------------------------------------------------------------
# Each estimates KL(pi || ref) from samples of pi, given log pi(x) and log ref(x).


def _kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    # k1 = -log r = log pi - log ref: unbiased, high variance, can be negative.
    return logp - ref_logp


def _kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    # k2 = 0.5 * (log r)^2: biased, low variance, always >= 0.
    return 0.5 * (logp - ref_logp) ** 2


def _kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    # k3 = (r - 1) - log r with r = ref / pi: unbiased and always >= 0.
    # expm1 keeps precision when r is close to 1, the usual case early in training.
    log_r = ref_logp - logp
    return torch.expm1(log_r) - log_r


KL_ESTIMATORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "k1": _kl_k1,
    "k2": _kl_k2,
    "k3": _kl_k3,
}


def kl_per_token(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || ref) from sampled-token log-probs.

    Args:
        logp: (B, T) log pi(x_t) of the sampled tokens.
        ref_logp: (B, T) log ref(x_t) of the same tokens.
        estimator: "k1", "k2" or "k3" (Schulman 2020).

    Returns:
        (B, T) KL estimate in nats.

    Raises:
        ValueError: unknown ``estimator``.
    """
    try:
        fn = KL_ESTIMATORS[estimator]
    except KeyError:
        raise ValueError(
            f"unknown KL estimator {estimator!r}; expected one of {sorted(KL_ESTIMATORS)}"
        ) from None
    return fn(logp, ref_logp)
