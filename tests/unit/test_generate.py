"""Batched generation: length-sorted batches, answers back in the caller's order, every EOS id, finished
rows leaving the batch, and the same greedy tokens as transformers' `model.generate`.

Real: the tiny tokenizer and the tiny Llama's architecture (tests/conftest.py: 2 layers, 64 wide), with
random weights large enough that prompts get different answers, in float64 so that batch composition cannot
flip an argmax by rounding. Stand-in: none.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from kubealign import generate as generate_module
from kubealign.data.chat import tokenize_prompt
from kubealign.generate import (
    decode,
    generate,
    length_batches,
    next_tokens,
    nucleus,
    run_prefix,
    shared_prefix,
    stop_ids,
)

ASKS = ["hi", "What is the capital of france and why is it that city?", "two plus two", "Why is the sky blue?",
        "Write a short poem about a cat in the sun on a long summer day.", "ok"]


@pytest.fixture(scope="module")
def tiny64(tiny_model_dir: Path) -> torch.nn.Module:
    """The tiny Llama's architecture with weights drawn at std 0.3 (seed 0), in float64: at the fixture's
    std 0.02 it answers every prompt with the same empty text, which could not show a mix-up."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tiny_model_dir, initializer_range=0.3)
    return AutoModelForCausalLM.from_config(config).to(torch.float64).eval()


def hf_greedy(model: torch.nn.Module, ids: list[int], max_new: int, eos: list[int], pad: int) -> list[int]:
    """transformers' own greedy generation of one unpadded prompt, end-of-turn token dropped."""
    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=max_new, do_sample=False, eos_token_id=eos, pad_token_id=pad)[0, len(ids):]
    new = out.tolist()
    return new[: next((i for i, t in enumerate(new) if t in eos), len(new))]


def left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    return (torch.tensor([[pad] * (width - len(r)) + r for r in rows]),
            torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows]))


@pytest.mark.parametrize("workers", [1, 2])
def test_batched_answers_equal_transformers_greedy_per_prompt_in_the_callers_order(tiny64: Any, tiny_tokenizer: Any,
                                                                                   workers: int) -> None:
    """Two batches of 4 and 2 prompts, one after the other or side by side: the same answers as transformers'
    greedy generation of each prompt alone (the shared template prefix run once, then copied)."""
    convs = [[{"role": "user", "content": a}] for a in ASKS]
    out = generate(tiny64, tiny_tokenizer, convs, 12, 4, torch.device("cpu"), workers=workers)
    eos, pad = stop_ids(tiny64, tiny_tokenizer), tiny_tokenizer.pad_token_id
    expected = [tiny_tokenizer.decode(hf_greedy(tiny64, tokenize_prompt(tiny_tokenizer, c), 12, eos, pad),
                                      skip_special_tokens=True).strip() for c in convs]
    assert out == expected
    assert len(set(expected)) > 1  # the prompts get different answers, so a mix-up would show


@pytest.mark.parametrize("prune_fraction", [0.0, 0.25, 1.0])
def test_a_row_that_ends_leaves_the_batch_and_the_others_are_unchanged(tiny64: Any, tiny_tokenizer: Any,
                                                                       prune_fraction: float,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Finished rows leave once PRUNE_FRACTION of the batch has finished (0: at once; 1: only when all have,
    i.e. never before the end); the tokens are the same whenever they leave."""
    monkeypatch.setattr(generate_module, "PRUNE_FRACTION", prune_fraction)
    pad = tiny_tokenizer.pad_token_id
    prompts = [tokenize_prompt(tiny_tokenizer, [{"role": "user", "content": a}]) for a in ASKS]
    free = [hf_greedy(tiny64, p, 10, [], pad) for p in prompts]  # no end-of-turn token: 10 tokens each
    assert all(len(f) == 10 for f in free)
    # an "end-of-turn" id that some rows emit early and others never: those rows must stop there
    counts = {t: sum(t in f[:9] for f in free) for f in free for t in f[:9]}
    stop = next(t for t, c in sorted(counts.items()) if 0 < c < len(free))
    seen: list[int] = []
    hook = tiny64.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["input_ids"].shape[0]),
                                            with_kwargs=True)
    try:
        got = decode(tiny64, *left_padded(prompts, pad), 10, [stop])
    finally:
        hook.remove()
    assert got == [f[: f.index(stop)] if stop in f else f for f in free]
    finished_early = sum(stop in f[:9] for f in free)
    assert seen[0] == len(prompts) and seen == sorted(seen, reverse=True)
    if prune_fraction == 0.0 or finished_early >= prune_fraction * len(prompts):
        assert seen[-1] < len(prompts)  # finished rows were dropped from the batch
    else:
        assert set(seen) == {len(prompts)}
    assert len(seen) == max(len(g) + (len(g) < 10) for g in got)  # one forward per step, none after all end


def test_next_tokens_greedy_and_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.1, 0.1, 0.7, 0.1]]))
    assert next_tokens(logits).tolist() == [0, 2]
    torch.manual_seed(0)
    # top_p 0.65: row 0 keeps {0, 1} (0.5 < 0.65 <= 0.8), row 1 keeps {2} alone (0.7 >= 0.65)
    draws = torch.stack([next_tokens(logits, 1.0, 0.65) for _ in range(400)])
    assert set(draws[:, 0].tolist()) == {0, 1} and set(draws[:, 1].tolist()) == {2}
    assert 0.5 < (draws[:, 0] == 0).float().mean() < 0.75  # 0.5 / 0.8 = 0.625 renormalised
    # a low temperature sharpens towards the argmax
    assert (torch.stack([next_tokens(logits, 0.05) for _ in range(50)]) == torch.tensor([0, 2])).all()


def _full_sort_nucleus(scaled: torch.Tensor, top_p: float) -> torch.Tensor:
    """The nucleus by ranking the whole vocabulary, as (rows, V) probabilities (zero outside it)."""
    probs = torch.softmax(scaled, dim=-1)
    ranked, order = probs.sort(dim=-1, descending=True)
    ranked = ranked.masked_fill(ranked.cumsum(dim=-1) - ranked >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, ranked)


def test_nucleus_from_candidates_equals_ranking_the_whole_vocabulary() -> None:
    """Peaked rows: 32 candidates hold the nucleus, and only they are ranked. With one flat row in the batch
    they do not: the whole vocabulary is ranked. Either way the probabilities are the full sort's."""
    g = torch.Generator().manual_seed(0)
    peaked = torch.randn(4, 1000, generator=g) * 4
    flat = torch.cat([peaked[:3], torch.randn(1, 1000, generator=g) * 0.1])
    for scaled, ranked in ((peaked, 32), (flat, 1000)):
        probs, ids = nucleus(scaled, 0.9, candidates=32)
        assert probs.shape == ids.shape == (4, ranked)
        dense = torch.zeros_like(scaled).scatter_(-1, ids, probs)
        torch.testing.assert_close(dense, _full_sort_nucleus(scaled, 0.9), atol=1e-6, rtol=1e-5)
        assert ((dense > 0).sum(-1) > 1).all()  # several tokens in each nucleus


def test_length_batches_group_similar_lengths_longest_first() -> None:
    assert length_batches([3, 9, 1, 9, 5], 2) == [[1, 3], [4, 0], [2]]
    assert length_batches([], 4) == []


def test_length_batches_cap_padded_tokens() -> None:
    # budget 20 slots: two rows of 9 fit (18), a third would not; 5,3,1 fit three to a batch (15)
    assert length_batches([3, 9, 1, 9, 5], 4, max_tokens=20) == [[1, 3], [4, 0, 2]]
    # a row longer than the budget still gets a batch of its own
    assert length_batches([30, 2, 2], 4, max_tokens=20) == [[0], [1, 2]]


def test_stop_ids_merge_tokenizer_and_generation_config() -> None:
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 7]))
    assert stop_ids(model, SimpleNamespace(eos_token_id=7)) == [7, 2]  # type: ignore[arg-type]
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=None))
    assert stop_ids(model, SimpleNamespace(eos_token_id=5)) == [5]  # type: ignore[arg-type]


def test_repeats_read_each_prompt_once_and_answer_like_repeated_rows(tiny64: Any, tiny_tokenizer: Any) -> None:
    """decode(repeats=3) on 3 prompts: the prefill forward sees 3 rows, not 9, and the answers equal
    decode on the 9 rows written out (greedy: identical; sampling from the same seed: identical too, as the
    logits of a repeated row are the very numbers its prompt gave)."""
    pad = tiny_tokenizer.pad_token_id
    prompts = [tokenize_prompt(tiny_tokenizer, [{"role": "user", "content": a}]) for a in ASKS[:3]]
    repeated = [p for p in prompts for _ in range(3)]
    seen: list[tuple[int, int]] = []
    hook = tiny64.register_forward_pre_hook(lambda _m, _a, kw: seen.append(tuple(kw["input_ids"].shape)),
                                            with_kwargs=True)
    try:
        greedy = decode(tiny64, *left_padded(prompts, pad), 6, [], repeats=3)
    finally:
        hook.remove()
    assert seen[0] == (3, max(map(len, prompts))) and seen[1] == (9, 1)
    assert greedy == decode(tiny64, *left_padded(repeated, pad), 6, [])
    assert greedy[0] == greedy[1] == greedy[2] and greedy[0] != greedy[3]
    torch.manual_seed(7)
    sampled = decode(tiny64, *left_padded(prompts, pad), 6, [], temperature=1.5, repeats=3)
    torch.manual_seed(7)
    assert sampled == decode(tiny64, *left_padded(repeated, pad), 6, [], temperature=1.5)
    assert len({tuple(s) for s in sampled[:3]}) > 1  # the samples of one prompt differ


def test_generate_samples_come_back_grouped_per_prompt_in_order(tiny64: Any, tiny_tokenizer: Any) -> None:
    convs = [[{"role": "user", "content": a}] for a in ASKS]
    once = generate(tiny64, tiny_tokenizer, convs, 8, 4, torch.device("cpu"))
    twice = generate(tiny64, tiny_tokenizer, convs, 8, 4, torch.device("cpu"), samples=2)
    assert twice == [a for a in once for _ in range(2)]  # greedy: both samples are the greedy answer
    with pytest.raises(ValueError, match="samples must be >= 1"):
        generate(tiny64, tiny_tokenizer, convs, 8, 4, torch.device("cpu"), samples=0)


def test_no_new_tokens_runs_no_forward(tiny64: Any, tiny_tokenizer: Any) -> None:
    seen: list[int] = []
    hook = tiny64.register_forward_pre_hook(lambda *_: seen.append(1))
    try:
        prompts = [tokenize_prompt(tiny_tokenizer, [{"role": "user", "content": a}]) for a in ASKS[:2]]
        assert decode(tiny64, *left_padded(prompts, tiny_tokenizer.pad_token_id), 0, [], repeats=2) == [[]] * 4
    finally:
        hook.remove()
    assert seen == []


def test_shared_prefix_is_the_common_start_short_of_the_shortest_sequence() -> None:
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 3, 4, 5]]) == 3
    assert shared_prefix([[1, 2, 3], [1, 2, 3, 4]]) == 2  # [1, 2, 3] keeps its last token to run
    assert shared_prefix([[1, 2], [7, 2]]) == 0
    assert shared_prefix([[5, 6, 7]]) == 2
    assert shared_prefix([]) == 0


def test_a_prefix_run_once_gives_the_answers_of_the_whole_prompts(tiny64: Any, tiny_tokenizer: Any) -> None:
    """decode(prefix=...) on the rest of each prompt (padding then sits between prefix and rest): the same
    tokens, greedy and sampled from one seed, as decode on the whole prompts; the prefill reads the rest only."""
    pad = tiny_tokenizer.pad_token_id
    prompts = [tokenize_prompt(tiny_tokenizer, [{"role": "user", "content": a}]) for a in ASKS]
    n = shared_prefix(prompts)
    assert n >= 3  # the chat template's opening
    cache = run_prefix(tiny64, prompts[0][:n], torch.device("cpu"))
    rest = [p[n:] for p in prompts]
    seen: list[tuple[int, int]] = []
    hook = tiny64.register_forward_pre_hook(lambda _m, _a, kw: seen.append(tuple(kw["input_ids"].shape)),
                                            with_kwargs=True)
    try:
        got = decode(tiny64, *left_padded(rest, pad), 8, [], prefix=(cache, n), repeats=2)
    finally:
        hook.remove()
    assert seen[0] == (len(ASKS), max(map(len, rest)))
    assert got == decode(tiny64, *left_padded(prompts, pad), 8, [], repeats=2)
    assert cache.get_seq_length() == n  # each batch copies the prefix cache; the original is untouched
    sampled = [decode(tiny64, *args, 8, [], temperature=1.5, generator=torch.Generator().manual_seed(3), **kw)
               for args, kw in ((left_padded(rest, pad), {"prefix": (cache, n)}), (left_padded(prompts, pad), {}))]
    assert sampled[0] == sampled[1]


def test_samples_do_not_depend_on_how_many_batches_run_at_once(tiny64: Any, tiny_tokenizer: Any) -> None:
    """Each batch draws from its own generator, seeded from the global one: one worker or two, the same
    samples; another global seed, other samples."""
    convs = [[{"role": "user", "content": a}] for a in ASKS]

    def sample(seed: int, workers: int) -> list[str]:
        torch.manual_seed(seed)
        return generate(tiny64, tiny_tokenizer, convs, 8, 4, torch.device("cpu"), do_sample=True,
                        temperature=1.5, samples=2, workers=workers)

    one = sample(0, 1)
    assert one == sample(0, 2) and one != sample(1, 1)
    assert len(one) == 2 * len(ASKS)
