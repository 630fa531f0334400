"""Batched generation from chat prompts with the KV cache (left padding, as decoder-only models need).

Why it is fast enough for evaluation sets of hundreds of prompts on a CPU:
- prompts are tokenized once and sorted by length before batching, so a batch pads to a width close to
  its own prompts' (padding tokens cost a full forward each step); batches are wide (a decode step is a
  skinny matrix product per layer: more rows use the matrix units better) but capped in tokens, so long
  prompts go in fewer rows; the responses come back in the caller's order;
- the decode loop (`decode`) reuses the KV cache, so each new token is one forward over one position;
- a row is done when it emits an end-of-turn token: every EOS id the tokenizer and the model's generation
  config name (chat models end a turn with a token other than the tokenizer's `eos_token`, e.g.
  `<|im_end|>`). `model.generate` keeps a finished row in the batch until the batch's longest answer ends
  (the demo's evaluation answers average 24 to 31 of 48 tokens); here finished rows leave the batch, their
  KV cache rows with them, once PRUNE_FRACTION of the batch has finished (dropping rows copies the whole
  cache, ~20-30 ms at 64 rows, so not at every step). Measured on this 2-core CPU: a decode step costs
  about 70 ms (reading the 135M weights) + 3 ms per row, so dropping rows saves less than their share;
  192 evaluation prompts on the demo's SFT model took 76.7 s with `model.generate` and 67.9 s here;
- the tokens every prompt starts with (a chat template's system prompt: 24 of the demo's 56 prompt tokens on
  average, SmolLM2) run once, and each batch starts from a copy of their KV cache (`shared_prefix`);
- on a CPU, two batches decode at once (`workers`), each on its own share of the cores: a decode step's
  matrix products are too skinny to keep two cores busy (measured, SmolLM2-135M, 64 rows: 0.299 s a step on
  one thread, 0.237 s on two, 0.337 s each for two one-thread batches side by side: 1.4x the rows per
  second; a prefill scales 1.9x on two threads, so it loses nothing).

Greedy decoding here gives `model.generate(do_sample=False)`'s tokens (tests/unit/test_generate.py checks
it in float64); sampling draws from softmax(logits / temperature) cut to the top-p nucleus, each batch from
its own generator seeded from torch's global one, so the samples do not depend on how many batches run at
once. Other knobs of a model's generation config (repetition penalty, top-k) are not applied.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from tqdm.auto import tqdm

from kubealign.data.chat import tokenize_prompt

# A generation batch holds at most batch_size rows and batch_size * TOKENS_PER_ROW prompt + response slots,
# so short prompts go 64 at a time and long ones (a 300-token MT-Bench passage) in smaller batches: the KV
# cache a decode step copies and attends over grows with rows x length. 128 = a ~80-token chat prompt
# plus 48 new tokens, the evaluation sets' typical row.
TOKENS_PER_ROW = 128
# Finished rows leave the batch once this share of its rows has finished (module doc).
PRUNE_FRACTION = 0.25
# Tokens ranked first when sampling from a top-p nucleus (`nucleus`): at temperature 0.7 a chat model's
# nucleus is a few tokens; the whole vocabulary is ranked only in a row where these hold less than top_p.
NUCLEUS_CANDIDATES = 256
# Batches decoded at once on a CPU (module doc); measured on 2 cores only, so never more than that.
CPU_WORKERS = 2


def stop_ids(model: torch.nn.Module, tokenizer: Any) -> list[int]:
    """Every end-of-sequence id the tokenizer or the model's generation config names, tokenizer's first."""
    ids: list[int] = []
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for eos in (tokenizer.eos_token_id, *(config_eos if isinstance(config_eos, list) else [config_eos])):
        if eos is not None and eos not in ids:
            ids.append(int(eos))
    return ids


def length_batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices into `lengths` grouped into batches of similar length (longest first: memory peaks early).

    A batch holds at most `batch_size` rows and, with `max_tokens`, at most that many padded slots
    (rows x the batch's longest length; a row longer than `max_tokens` still gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and (
                max_tokens is None or (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def shared_prefix(encoded: list[list[int]]) -> int:
    """Length of the token prefix common to every sequence, short of the shortest one (each keeps a token)."""
    if not encoded:
        return 0
    n = min(len(x) for x in encoded) - 1
    first = encoded[0]
    for x in encoded[1:]:
        n = next((i for i in range(n) if x[i] != first[i]), n)
    return max(n, 0)


@torch.no_grad()
def run_prefix(model: torch.nn.Module, ids: list[int], device: torch.device) -> Any:
    """The KV cache (one row) of `ids`, for `decode(prefix=...)`."""
    from transformers import DynamicCache

    cache = DynamicCache(config=getattr(model, "config", None))
    model(input_ids=torch.tensor([ids], device=device), past_key_values=cache, use_cache=True, logits_to_keep=1)
    return cache


def left_padded(rows: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows left-padded with `pad` to the longest, and their attention mask (1 on real tokens)."""
    width = max(len(r) for r in rows)
    return (torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device),
            torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device))


def open_cache(model: torch.nn.Module, attention_mask: torch.Tensor,
               prefix: tuple[Any, int] | None) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """What a left-padded batch's first forward starts from: the KV cache (empty, or a copy of `prefix`'s,
    repeated per row), the attention mask over prefix + batch, and the position ids of the batch's tokens."""
    from transformers import DynamicCache

    mask = attention_mask.long()
    if prefix is None:
        cache = DynamicCache(config=getattr(model, "config", None))
    else:
        cache = copy.deepcopy(prefix[0])
        cache.batch_repeat_interleave(mask.shape[0])
        mask = torch.cat([mask.new_ones(mask.shape[0], prefix[1]), mask], dim=-1)
    return cache, mask, (mask.cumsum(-1) - 1).clamp(min=0)[:, -attention_mask.shape[1]:]


def workers_for(device: torch.device, batches: int) -> int:
    """Batches to decode at once: up to CPU_WORKERS on a CPU with that many threads, one on an accelerator."""
    if device.type != "cpu":
        return 1
    return max(1, min(CPU_WORKERS, torch.get_num_threads(), batches))


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int,
             batch_size: int, device: torch.device, do_sample: bool = False, temperature: float = 1.0,
             top_p: float = 1.0, desc: str | None = None, samples: int = 1, workers: int | None = None) -> list[str]:
    """Responses (decoded, special tokens dropped, stripped) for each prompt, a list of chat messages, in order.

    With `samples` > 1 each prompt gets that many responses (prompt i's at [i * samples, (i + 1) * samples)),
    its prompt read once: the prefill runs on the distinct prompts and their KV cache is repeated per sample
    (`decode(repeats=...)`); `batch_size` still counts rows, samples included. `workers`: batches decoded at
    once, the process's threads split between them (None: `workers_for`); the answers do not depend on it.
    With `desc`, a progress bar counts the responses done.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = stop_ids(model, tokenizer)
    encoded = [tokenize_prompt(tokenizer, p) for p in prompts]
    outputs: list[str] = [""] * (len(prompts) * samples)
    prefix = None
    if (n := shared_prefix(encoded)) and max_new_tokens > 0:
        prefix = (run_prefix(model, encoded[0][:n], device), n)
        encoded = [x[n:] for x in encoded]
    rows = max(1, batch_size // samples)  # distinct prompts per batch
    batches = length_batches([len(x) + max_new_tokens for x in encoded], rows, rows * TOKENS_PER_ROW)
    # one seed per batch, drawn from the global generator before any batch runs
    seeds = torch.randint(0, 2**62, (len(batches),)).tolist() if do_sample else [None] * len(batches)
    workers = workers_for(device, len(batches)) if workers is None else max(1, min(workers, len(batches)))
    threads = torch.get_num_threads()
    bar = tqdm(total=len(outputs), desc=desc, unit="response", disable=desc is None, mininterval=2.0)

    def run(batch: list[int], seed: int | None) -> None:
        if workers > 1:
            torch.set_num_threads(max(1, threads // workers))  # this worker's share of the cores
        input_ids, mask = left_padded([encoded[i] for i in batch], pad, device)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
        out = decode(model, input_ids, mask, max_new_tokens, eos, repeats=samples, generator=generator,
                     prefix=prefix, **({"temperature": temperature, "top_p": top_p} if do_sample else {}))
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        for j, i in enumerate(batch):
            outputs[i * samples: (i + 1) * samples] = [t.strip() for t in texts[j * samples: (j + 1) * samples]]
        bar.update(len(out))

    try:
        if workers == 1:
            for batch, seed in zip(batches, seeds, strict=True):
                run(batch, seed)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for done in [pool.submit(run, b, s) for b, s in zip(batches, seeds, strict=True)]:
                    done.result()
    finally:
        torch.set_num_threads(threads)
        bar.close()
        model.train(was_training)
    return outputs


def nucleus(scaled: torch.Tensor, top_p: float, candidates: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, V) logits / temperature -> (rows, K) probabilities, zero outside each row's top-p nucleus, and
    their token ids, most likely first.

    The nucleus is the smallest set of most likely tokens whose probability reaches `top_p` (the most likely
    token is always in it). Sorting the whole vocabulary every step is the slow part of sampling (64 rows of
    SmolLM2's 49,152: 347 ms a step on one thread, more than the model's forward), so only the
    `candidates` (default NUCLEUS_CANDIDATES) most likely tokens are ranked, with probabilities taken against
    the whole vocabulary; when they hold less than `top_p` in some row, the whole vocabulary is ranked.
    """
    lse = torch.logsumexp(scaled, dim=-1, keepdim=True)
    k = min(candidates or NUCLEUS_CANDIDATES, scaled.shape[-1])
    top, ids = scaled.topk(k, dim=-1)
    probs = (top - lse).exp()
    before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each one
    if k < scaled.shape[-1] and bool((before[:, -1] + probs[:, -1] < top_p).any()):
        return nucleus(scaled, top_p, scaled.shape[-1])
    return probs.masked_fill(before >= top_p, 0.0), ids


def next_tokens(logits: torch.Tensor, temperature: float | None = None, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(rows, V) last-position logits -> (rows,) token ids: argmax when `temperature` is None, else a draw
    from softmax(logits / temperature) restricted to the top-p nucleus (`nucleus`), from `generator` (None:
    torch's global one)."""
    if temperature is None:
        return logits.argmax(dim=-1)
    scaled = logits.float() / temperature
    if top_p >= 1.0:
        return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(-1)
    probs, ids = nucleus(scaled, top_p)
    return ids.gather(-1, torch.multinomial(probs, 1, generator=generator)).squeeze(-1)


@torch.no_grad()
def decode(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
           eos: list[int], temperature: float | None = None, top_p: float = 1.0,
           repeats: int = 1, generator: torch.Generator | None = None,
           prefix: tuple[Any, int] | None = None) -> list[list[int]]:
    """New token ids of each left-padded row, end-of-turn token excluded, at most `max_new_tokens`.

    One prefill forward, then one forward per step; a row that emits an id in `eos` is done, and done rows
    leave the batch (`Cache.batch_select_indices` drops their KV rows) once PRUNE_FRACTION of it is done.
    With `repeats` > 1, each input row is answered that many times (rows r * repeats ... in the result): the
    prefill runs once per input row and its KV cache is repeated (the preference stage's 4 samples of 48
    tokens: ~10% faster than 4 copies of the prompt, same tokens; README, "What `make run` shows").
    `prefix`: (KV cache, length) of tokens every row starts with, already run (`run_prefix`); the rows of
    `input_ids` / `attention_mask` then hold only what follows it, and each row reads a copy of that cache.
    """
    rows = input_ids.shape[0] * repeats
    out: list[list[int]] = [[] for _ in range(rows)]
    if max_new_tokens <= 0:
        return out
    running = torch.arange(rows, device=input_ids.device)  # caller's row of each batch row
    cache, mask, positions = open_cache(model, attention_mask, prefix)
    stop = torch.tensor(eos or [-1], device=input_ids.device)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1, :]
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)
        logits, mask, positions = (t.repeat_interleave(repeats, dim=0) for t in (logits, mask, positions))
    step_pos = positions
    finished = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
    for step in range(max_new_tokens):
        token = next_tokens(logits, temperature, top_p, generator)
        ends = torch.isin(token, stop)
        for row, t, skip in zip(running.tolist(), token.tolist(), (finished | ends).tolist(), strict=True):
            if not skip:
                out[row].append(t)
        finished |= ends
        live_rows = int((~finished).sum())
        if live_rows == 0 or step == max_new_tokens - 1:
            break
        # dropping rows copies the whole cache: only worth it once enough rows are done
        if running.numel() - live_rows >= max(1, PRUNE_FRACTION * running.numel()):
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            running, mask, token, step_pos = running[keep], mask[keep], token[keep], step_pos[keep]
            finished = finished[keep]
        step_pos = step_pos[:, -1:] + 1
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
        logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=step_pos, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1, :]
    return out
