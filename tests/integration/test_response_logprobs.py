"""Response log-probs from hidden states (chunked head) and packed batches against the plain path.

Real: the tiny Llama (2 layers, 64 wide, fp32) from tests/conftest.py, with and without a peft LoRA
adapter; the plain path is today's `model(...).logits` + `ops.sequence_logprobs`, the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kubealign import lm, models, ops
from kubealign.config import LoraSettings
from kubealign.data.collate import collate_preference, collate_sft

LORA = LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"])


def _pairs(n: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Pairs whose chosen (3-6 tokens) and rejected (15-40 tokens) lengths differ several-fold."""
    g = torch.Generator().manual_seed(seed)

    def ids(lo: int, hi: int) -> list[int]:
        return torch.randint(5, 400, (int(torch.randint(lo, hi, (1,), generator=g)),), generator=g).tolist()

    return [{"prompt_ids": ids(4, 12), "chosen_ids": ids(3, 7), "rejected_ids": ids(15, 41)} for _ in range(n)]


@pytest.fixture
def lora_model(tiny_model_dir: Path) -> torch.nn.Module:
    torch.manual_seed(1)
    model = models.add_lora(models.load_causal_lm(tiny_model_dir, torch.float32, torch.device("cpu")), LORA)
    with torch.no_grad():  # a non-zero adapter, so the LoRA path matters
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def _plain(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return ops.sequence_logprobs(logits.float(), batch["labels"])[0]


def _plain_tokens(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per sequence, the log-prob of each scored token in order (the plain path)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    tok = ops.logprobs_from_logits(logits, labels.clamp(min=0))
    return [tok[i][labels[i] != -100] for i in range(len(labels))]


def _grads(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("padding_free", "share_prompt"), [(False, False), (True, False), (True, True)])
def test_response_logprobs_and_grads_equal_the_plain_path(lora_model: torch.nn.Module, padding_free: bool,
                                                          share_prompt: bool) -> None:
    """Padded, packed, and packed with each prompt once (a 4-D mask, the first rejected token scored from the
    prompt's last position): per-token log-probs, sums and LoRA gradients equal to the plain path's."""
    pairs = _pairs(5)
    padded = collate_preference(pairs, pad_id=0)
    batch = collate_preference(pairs, pad_id=0, padding_free=padding_free, capacity=48, share_prompt=share_prompt)
    tok, seg = lm.scored_token_logprobs(lora_model, batch, chunk=7)  # chunks cross sequence ends
    for i, want_tok in enumerate(_plain_tokens(lora_model, padded)):
        torch.testing.assert_close(tok[seg == i], want_tok, atol=1e-5, rtol=0)
    # sums of ~40 tokens of ~-6 nats: fp32 rounding of the sum order alone is ~1e-7 relative
    got, counts = lm.sequence_logprobs(lora_model, batch, n_seqs=10, chunk=7)
    torch.testing.assert_close(got, _plain(lora_model, padded), atol=0, rtol=1e-6)
    assert counts.tolist() == [len(p["chosen_ids"]) for p in pairs] + [len(p["rejected_ids"]) for p in pairs]
    # a loss that weighs every sequence differently, so a gradient mixed up between sequences shows
    w = torch.linspace(-1.0, 2.0, 10)
    g_want = _grads(lora_model, (w * _plain(lora_model, padded)).sum())
    g_got = _grads(lora_model, (w * lm.sequence_logprobs(lora_model, batch, n_seqs=10, chunk=7)[0]).sum())
    assert set(g_got) == set(g_want) and len(g_want) == 2 * 3 * 2  # A and B of 3 kinds in 2 layers
    for name in g_want:
        torch.testing.assert_close(g_got[name], g_want[name], atol=1e-5, rtol=1e-4)


def test_packed_rows_respect_capacity_and_keep_sequences_apart() -> None:
    pairs = _pairs(4)
    batch = collate_preference(pairs, pad_id=0, padding_free=True, capacity=48)
    lengths = [len(p["prompt_ids"]) + len(p[k]) for k in ("chosen_ids", "rejected_ids") for p in pairs]
    assert batch["input_ids"].shape[1] <= 48
    assert lm.real_tokens(batch) == sum(lengths)
    for seq, n in enumerate(lengths):
        where = batch["segment_ids"] == seq
        assert int(where.sum()) == n and int(where.any(dim=1).sum()) == 1  # whole, in one row
        assert batch["position_ids"][where].tolist() == list(range(n))


def test_shared_prompt_rows_hold_each_pair_once_and_rejected_tokens_never_see_chosen_ones() -> None:
    pairs = _pairs(4)
    batch = collate_preference(pairs, pad_id=0, padding_free=True, capacity=64, share_prompt=True)
    assert lm.real_tokens(batch) == sum(len(p["prompt_ids"]) + len(p["chosen_ids"]) + len(p["rejected_ids"])
                                        for p in pairs)  # the prompts once: 2 x 4-12 tokens fewer a pair
    assert lm.n_sequences(batch) == 8
    mask = batch["attention_mask"][:, 0]
    for k, p in enumerate(pairs):
        n_p, n_c, n_r = (len(p[key]) for key in ("prompt_ids", "chosen_ids", "rejected_ids"))
        chosen, rejected = batch["segment_ids"] == k, batch["segment_ids"] == len(pairs) + k
        row = int(chosen.any(dim=1).nonzero())
        assert int(rejected.any(dim=1).nonzero()) == row  # the pair whole in one row
        at = int(chosen[row].nonzero()[0])
        assert batch["input_ids"][row, at:at + n_p + n_c + n_r].tolist() == (
            p["prompt_ids"] + p["chosen_ids"] + p["rejected_ids"])
        assert batch["position_ids"][row, at:at + n_p + n_c + n_r].tolist() == (
            list(range(n_p + n_c)) + list(range(n_p, n_p + n_r)))
        c0, r0 = at + n_p, at + n_p + n_c
        assert mask[row, r0:r0 + n_r, at:c0].all()  # rejected tokens see the whole prompt,
        assert not mask[row, r0:r0 + n_r, c0:r0].any()  # no chosen token,
        assert mask[row, r0 + n_r - 1, r0:r0 + n_r].all()  # and the rejected tokens before them
        assert not mask[row, at:r0 + n_r, :at].any()  # nothing of another pair
    # score_index: the first chosen and the first rejected token are both predicted by the prompt's last token
    first = {int(s): int(i) for s, i in zip(batch["score_segment"].flip(0), batch["score_index"].flip(0),
                                            strict=True)}
    width = batch["input_ids"].shape[1]
    for k in range(len(pairs)):
        assert first[k] == first[len(pairs) + k]
        row, col = divmod(first[k], width)
        assert batch["segment_ids"][row, col] == k and batch["segment_ids"][row, col + 1] == k


def test_full_fine_tune_head_gradient_equals_the_plain_path(tiny_model_dir: Path) -> None:
    """Tied embeddings train with the head: the chunked weight gradient must match autograd's."""
    model = models.load_causal_lm(tiny_model_dir, torch.float32, torch.device("cpu"))
    examples = [{"input_ids": p["prompt_ids"] + p["rejected_ids"],
                 "labels": [-100] * len(p["prompt_ids"]) + p["rejected_ids"]} for p in _pairs(3, seed=2)]
    padded = collate_sft(examples, pad_id=0)
    packed = collate_sft(examples, pad_id=0, padding_free=True)
    g_want = _grads(model, -_plain(model, padded).sum())
    g_got = _grads(model, -lm.sequence_logprobs(model, packed, n_seqs=3, chunk=16)[0].sum())
    assert "model.embed_tokens.weight" in g_want
    for name in g_want:
        torch.testing.assert_close(g_got[name], g_want[name], atol=1e-5, rtol=1e-4)


def test_cached_prompt_scoring_equals_the_plain_path(lora_model: torch.nn.Module) -> None:
    """cached_pair_logprobs (each prompt run once, a prefix shared by all prompts run once, both responses
    continued from the prompt's KV cache) gives the plain path's summed log-probs, pair by pair in the
    caller's order: batches of 3 over 7 pairs, prompts of different lengths, one response a single token.
    Both sum float32 token log-probs of ~200 nats a sequence, so they agree to float32 rounding (rtol 1e-6);
    a token scored from the wrong position would be off by whole nats."""
    from kubealign.scoring import cached_pair_logprobs

    pairs = _pairs(7, seed=3)
    for p in pairs:
        p["prompt_ids"] = [1, 9, 8] + p["prompt_ids"]  # a template-like opening every prompt shares
    pairs[2]["chosen_ids"] = pairs[2]["chosen_ids"][:1]
    expected = _plain(lora_model, collate_preference(pairs, pad_id=0))
    chosen, rejected = cached_pair_logprobs(lora_model, pairs, 0, 3, torch.device("cpu"))
    torch.testing.assert_close(torch.cat([chosen, rejected]), expected, atol=1e-5, rtol=1e-6)
    assert len(set(chosen.tolist())) == len(pairs)  # distinct values: a mix-up of pairs would show
