"""Causal-LM forward passes that score response tokens without full-vocabulary logits everywhere.

A plain `model(...).logits` materialises (rows, T, V) logits at every position, prompt and padding
included; with V = 49k and fp32 that tensor, its log-softmax and its gradient dominate a small
model's memory. Here the trunk gives hidden states, only the positions whose next token is scored
are kept, and the output projection + log-softmax runs over them in chunks of `chunk` positions,
so the largest vocabulary-wide tensor is (chunk, V).

Batches come padded (`attention_mask`) or packed (`position_ids` restarting per sequence, no
attention mask: transformers builds the block-diagonal mask, or uses flash-attention's varlen
kernels); `segment_ids` (rows, T) names the sequence each token belongs to (-1 on padding), so
both layouts reduce to per-sequence sums the same way (`kubealign.data.collate`).
Preference pairs packed with each prompt once carry a boolean 4-D `attention_mask` and name the
hidden state that predicts each scored token (`score_index`); SDPA takes such a mask as is
(`supports_shared_prompt`).
"""

from __future__ import annotations

from typing import Any

import torch

from kubealign import distributed

IGNORE_INDEX = -100


class _ChunkedTokenLogprobs(torch.autograd.Function):
    """log softmax(h W^T)[y] for N hidden rows, chunk by chunk; (N, H), (V, H), (N,) -> (N,) float32.

    d logp_i / d h_i = W[y_i] - p_i W does not depend on the upstream gradient, so it is computed
    in the forward chunk while p_i is at hand: the backward then needs no (N, V) tensor. The weight
    gradient, only when the head trains (a full fine-tune), recomputes p chunk by chunk.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int,
                need_hidden_grad: bool) -> torch.Tensor:
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        dlogp_dh = torch.empty_like(hidden) if need_hidden_grad else None
        for s in range(0, hidden.shape[0], chunk):
            logits = (hidden[s : s + chunk] @ weight.T).float()  # matmul in the model's dtype, softmax in fp32
            lse = torch.logsumexp(logits, dim=-1)
            y = targets[s : s + chunk]
            out[s : s + chunk] = logits.gather(1, y[:, None]).squeeze(1) - lse
            if dlogp_dh is not None:
                probs = logits.sub_(lse[:, None]).exp_()
                dlogp_dh[s : s + chunk] = weight[y] - (probs.to(weight.dtype) @ weight)
        ctx.chunk = chunk
        ctx.save_for_backward(hidden, weight, targets, dlogp_dh)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, targets, dlogp_dh = ctx.saved_tensors
        grad_hidden = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (grad_out[:, None] * dlogp_dh.float()).to(hidden.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight, dtype=torch.float32)
            for s in range(0, hidden.shape[0], ctx.chunk):
                h, y, g = hidden[s : s + ctx.chunk], targets[s : s + ctx.chunk], grad_out[s : s + ctx.chunk]
                logits = (h @ weight.T).float()
                coef = -torch.softmax(logits, dim=-1) * g[:, None]  # d out_i / d logits_i = onehot - p
                coef[torch.arange(len(y), device=y.device), y] += g
                grad_weight += coef.T @ h.float()
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None


def token_logprobs(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor,
                   chunk: int = 1024) -> torch.Tensor:
    """Log-prob of each target under softmax(head(hidden)); (N, H), (N,) -> (N,) float32.

    A plain bias-free `nn.Linear` head (Llama, Qwen, Mistral, SmolLM) runs chunked and fused; any
    other head (LoRA on the head, a bias) is applied to the N selected rows only, still never to
    every position.
    """
    if type(head) is torch.nn.Linear and head.bias is None:
        need = torch.is_grad_enabled() and hidden.requires_grad
        return _ChunkedTokenLogprobs.apply(hidden, head.weight, targets, chunk, need)
    logits = head(hidden).float()
    return logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)


def trunk_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """The decoder stack and output projection of a (PEFT-wrapped) causal LM; None when unreachable."""
    if distributed.unwrap(model) is not model or distributed.world()[1] > 1:
        # DDP and FSDP2 (which shards in place, no wrapper) gather/sync in the root module's forward:
        # calling the trunk inside would bypass it
        return None
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trunk = getattr(base, getattr(base, "base_model_prefix", ""), None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    softcap = getattr(getattr(base, "config", None), "final_logit_softcapping", None)
    if trunk is None or head is None or softcap:
        return None
    return trunk, head


def segment_ids(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(rows, T) sequence index of each token, -1 on padding; a padded batch's row i is sequence i."""
    if "segment_ids" in batch:
        return batch["segment_ids"]
    mask = batch["attention_mask"].bool()
    rows = torch.arange(mask.shape[0], device=mask.device)[:, None].expand_as(mask)
    return torch.where(mask, rows, torch.full_like(rows, -1))


def supports_shared_prompt(model: torch.nn.Module) -> bool:
    """Whether the model's attention takes a boolean 4-D mask as is, as `collate_preference(share_prompt=True)`
    batches need: SDPA does (transformers passes a 4-D mask through); flash-attention's kernels take none."""
    config = getattr(distributed.unwrap(model), "config", None)
    return getattr(config, "_attn_implementation", None) == "sdpa"


def _model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "score_index" in batch:  # packed, each prompt once: the 4-D mask says which tokens see which
        return {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"],
                "attention_mask": batch["attention_mask"]}
    if "position_ids" in batch:  # packed: no mask, transformers infers the sequences from the positions
        return {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def scored_token_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                          chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the scored tokens of a padded or packed batch, and the sequence each belongs to.

    `batch`: input_ids, labels (rows, T), plus attention_mask (padded) or position_ids and
    segment_ids (packed). Hidden state t predicts label t + 1; a label of IGNORE_INDEX is not scored.
    A batch with the prompt shared names its scored tokens (`score_index`, `score_target`, `score_segment`).
    Returns (N,) float32 log-probs and (N,) segment ids, N = scored tokens of the batch.
    """
    if "score_index" in batch:
        return _named_token_logprobs(model, batch, chunk)
    targets = batch["labels"][:, 1:]
    scored = targets != IGNORE_INDEX
    segments = segment_ids(batch)[:, 1:][scored]
    parts = trunk_and_head(model)
    if parts is None:
        logits = model(**_model_inputs(batch), use_cache=False).logits[:, :-1][scored].float()
        tok = logits.gather(1, targets[scored][:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
        return tok, segments
    trunk, head = parts
    hidden = trunk(**_model_inputs(batch), use_cache=False).last_hidden_state
    return token_logprobs(hidden[:, :-1][scored], head, targets[scored], chunk), segments


def _named_token_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                          chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`scored_token_logprobs` of a batch that names the hidden state predicting each scored token."""
    index, targets = batch["score_index"], batch["score_target"]
    parts = trunk_and_head(model)
    if parts is None:
        logits = model(**_model_inputs(batch), use_cache=False).logits
        logits = logits.reshape(-1, logits.shape[-1])[index].float()
        return logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1), batch["score_segment"]
    trunk, head = parts
    hidden = trunk(**_model_inputs(batch), use_cache=False).last_hidden_state
    return token_logprobs(hidden.reshape(-1, hidden.shape[-1])[index], head, targets, chunk), batch["score_segment"]


def sequence_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor], n_seqs: int,
                      chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs (n_seqs,) float32 and scored-token counts (n_seqs,) of a batch."""
    tok, seg = scored_token_logprobs(model, batch, chunk)
    sums = torch.zeros(n_seqs, dtype=torch.float32, device=tok.device).index_add(0, seg, tok)
    counts = torch.zeros(n_seqs, dtype=torch.long, device=tok.device).index_add(0, seg, torch.ones_like(seg))
    return sums, counts


def n_sequences(batch: dict[str, torch.Tensor]) -> int:
    """Sequences in a batch (segments are numbered 0..n-1)."""
    return int(segment_ids(batch).max()) + 1


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Non-padding tokens of a padded or packed batch."""
    return int((segment_ids(batch) >= 0).sum())


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each decoder layer's activations in the backward pass instead of storing them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(base, "enable_input_require_grads"):
        base.enable_input_require_grads()  # frozen embeddings under LoRA: keep a grad path into layer 0
