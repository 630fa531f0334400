"""Load a safety classifier model folder and score conversations with it.

Score = P(unsafe) read from the next-token distribution at the start of the reply, not from sampled
text. "unsafe" and "safe" may each be several tokens (SmolLM2 splits "unsafe" into "uns" + "afe"), so
each word is represented by the FIRST token it has when the chat template renders it as the reply
(`reply_token_ids`: the same tokens the training labels use), and the two logits are normalised
against each other:

    score = exp(l_unsafe) / (exp(l_unsafe) + exp(l_safe)) = sigmoid(l_unsafe - l_safe)

so probability mass on other tokens (large for a model that is not fine-tuned yet) does not move the
score. The verdict is unsafe iff score >= threshold. Categories are read by greedy decoding after the
forced first token of "unsafe", and parsing the second line (`prompt.parse_categories`); that runs only
for conversations judged unsafe unless `categories_for="all"` (the held-out metrics need them all).
Batches share the prompts' common prefix (task text + categories) through the KV cache
(`shared_prefix_batch`), in training and scoring alike: about 4x fewer tokens to compute.

A classifier folder is a plain model folder (merged weights, tokenizer) whose `kubealign.json` holds
`{"stage": "safety", "taxonomy": [...], "threshold": t, "max_length": n}`; any other chat model
folder loads too, with the default taxonomy and threshold 0.5 (a zero-shot baseline).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kubealign import models
from kubealign.data.chat import render_ids, tokenize_prompt
from kubealign.safety.prompt import Message, chat_messages, parse_categories, render_target
from kubealign.safety.refusal_task import REFUSAL_LABELS, refusal_chat_messages, render_refusal_target
from kubealign.safety.taxonomy import DEFAULT_TAXONOMY, Taxonomy, from_data

Conversation = Sequence[Message]


def reply_token_ids(tokenizer: Any, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> tuple[int, int]:
    """(unsafe_id, safe_id): the first token of each reply word as the chat template renders it."""
    probe = [{"role": "user", "content": "x"}]
    prompt = tokenize_prompt(tokenizer, probe)
    first = {}
    for label in ("unsafe", "safe"):
        target = render_target(label, taxonomy.codes[:1], taxonomy)
        full = render_ids(tokenizer, [*probe, {"role": "assistant", "content": target}])
        first[label] = full[len(prompt)]
    if first["unsafe"] == first["safe"]:
        raise ValueError(f"the tokenizer starts 'unsafe' and 'safe' with the same token ({first['safe']}); "
                         "their first tokens must differ to read a score")
    return first["unsafe"], first["safe"]


def _fit(messages: list[dict[str, str]], budget: int, render: Any) -> list[int]:
    """Prompt ids within `budget` tokens: drop the oldest turns first, then cut the last message's end."""
    ids = render(messages)
    while len(ids) > budget and len(messages) > 1 + (messages[0]["role"] == "system"):
        messages = messages[:1] + messages[2:] if messages[0]["role"] == "system" else messages[1:]
        ids = render(messages)
    for _ in range(12):
        if len(ids) <= budget:
            return ids
        text = messages[-1]["content"]
        keep = max(0, len(text) - max(16, 4 * (len(ids) - budget)))  # ~4 characters per token
        messages = [*messages[:-1], {"role": messages[-1]["role"], "content": text[:keep] + " ..."}]
        ids = render(messages)
    raise ValueError(f"the classifier prompt does not fit in {budget} tokens even with an empty message; "
                     "raise max_length or use a shorter taxonomy")


def prompt_ids(tokenizer: Any, messages: Conversation, judge_role: str, taxonomy: Taxonomy,
               budget: int) -> list[int]:
    """Templated classifier prompt (ending with the assistant header) of at most `budget` tokens."""
    def render(msgs: list[dict[str, str]]) -> list[int]:
        return tokenize_prompt(tokenizer, chat_messages(msgs, judge_role, taxonomy))

    return _fit([dict(m) for m in messages], budget, render)


def training_example(tokenizer: Any, messages: Conversation, judge_role: str, label: str,
                     categories: Sequence[str], taxonomy: Taxonomy, max_length: int) -> dict[str, list[int]]:
    """`{"input_ids", "labels"}` for `collate_sft`: loss on the target reply tokens only.

    The conversation is shortened as at scoring time so that the whole target always fits.
    """
    probe = [{"role": "user", "content": "x"}]
    target = render_target(label, categories, taxonomy)
    reply = render_ids(tokenizer, [*probe, {"role": "assistant", "content": target}])
    reply = reply[len(tokenize_prompt(tokenizer, probe)):]
    prompt = prompt_ids(tokenizer, messages, judge_role, taxonomy, max_length - len(reply))
    return {"input_ids": prompt + reply, "labels": [-100] * len(prompt) + reply}


def refusal_token_ids(tokenizer: Any) -> tuple[int, int]:
    """(refusal_id, compliance_id): the first token of each refusal-task reply word, as the template renders it."""
    probe = [{"role": "user", "content": "x"}]
    start = len(tokenize_prompt(tokenizer, probe))
    ids = [render_ids(tokenizer, [*probe, {"role": "assistant", "content": w}])[start] for w in REFUSAL_LABELS]
    if ids[0] == ids[1]:
        raise ValueError(f"the tokenizer starts {REFUSAL_LABELS[0]!r} and {REFUSAL_LABELS[1]!r} with the same token "
                         f"({ids[0]}); their first tokens must differ to read a refusal score")
    return ids[0], ids[1]


def refusal_prompt_ids(tokenizer: Any, prompt: str, response: str, budget: int) -> list[int]:
    """Templated refusal-task prompt of at most `budget` tokens: the longer of request and reply is cut first
    (both are needed to judge, so neither turn is dropped)."""
    for _ in range(24):
        ids = tokenize_prompt(tokenizer, refusal_chat_messages(prompt, response))
        if len(ids) <= budget:
            return ids
        cut = max(16, 4 * (len(ids) - budget))  # ~4 characters per token
        if len(response) >= len(prompt):
            response = response[: max(0, len(response) - cut)] + " ..."
        else:
            prompt = prompt[: max(0, len(prompt) - cut)] + " ..."
    raise ValueError(f"the refusal prompt does not fit in {budget} tokens even with empty turns; raise max_length")


def refusal_training_example(tokenizer: Any, prompt: str, response: str, refusal: bool,
                             max_length: int) -> dict[str, list[int]]:
    """`{"input_ids", "labels"}` for the refusal task: loss on the reply (`refusal` / `compliance`) only."""
    probe = [{"role": "user", "content": "x"}]
    reply = render_ids(tokenizer, [*probe, {"role": "assistant", "content": render_refusal_target(refusal)}])
    reply = reply[len(tokenize_prompt(tokenizer, probe)):]
    ids = refusal_prompt_ids(tokenizer, prompt, response, max_length - len(reply))
    return {"input_ids": ids + reply, "labels": [-100] * len(ids) + reply}


def shared_prefix_batch(rows: Sequence[Sequence[int]], pad_id: int, labels: Sequence[Sequence[int]] | None = None,
                        min_suffix: int = 1) -> dict[str, torch.Tensor]:
    """Split token rows into their common prefix (run once) and left-padded suffixes.

    Every classifier prompt starts with the same task text and category list (~80% of its tokens), so
    a batch computes that prefix for one row and shares its key/value cache across the batch; the
    result equals running each full row (causal attention: a token never sees what follows).
    Returns prefix_ids (1, P) and, for the suffixes, input_ids / position_ids (B, S) plus
    attention_mask (B, P + S); with `labels`, labels (B, S) (IGNORE_INDEX on padding). P stops one
    token before the first labelled position of any row, so every scored prediction is in the suffix,
    and leaves each row at least `min_suffix` suffix tokens (the logits of those are what callers read).
    Left padding puts every row's last token in the last column (scoring and decoding read it there).
    """
    if not rows:
        raise ValueError("cannot batch an empty list of rows")
    limit = min(len(r) for r in rows) - min_suffix
    if labels is not None:
        limit = min([limit] + [next((t for t, y in enumerate(lab) if y != -100), len(lab)) - 1 for lab in labels])
    first = rows[0]
    p = 0
    while p < limit and all(r[p] == first[p] for r in rows):
        p += 1
    width = max(len(r) - p for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), p + width), dtype=torch.long)
    mask[:, :p] = 1
    pos = torch.full((len(rows), width), p, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r) - p
        ids[i, width - n:] = torch.tensor(r[p:], dtype=torch.long)
        mask[i, p + width - n:] = 1
        pos[i, width - n:] = torch.arange(p, p + n)
        if labels is not None:
            lab[i, width - n:] = torch.tensor(labels[i][p:], dtype=torch.long)
    out = {"prefix_ids": torch.tensor([first[:p]], dtype=torch.long).reshape(1, p), "input_ids": ids,
           "attention_mask": mask, "position_ids": pos}
    if labels is not None:
        out["labels"] = lab
    return out


def collate_classifier(examples: Sequence[dict[str, Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Training examples from `training_example` -> a shared-prefix batch with labels."""
    return shared_prefix_batch([e["input_ids"] for e in examples], pad_id, [e["labels"] for e in examples])


def forward_shared_prefix(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """Suffix logits (B, S, V) and the key/value cache (prefix + suffixes) of a `shared_prefix_batch`."""
    cache = None
    n_rows = batch["input_ids"].shape[0]
    if batch["prefix_ids"].shape[1]:
        cache = model(input_ids=batch["prefix_ids"], use_cache=True).past_key_values
        cache.batch_repeat_interleave(n_rows)  # differentiable: gradients flow back into the prefix
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], past_key_values=cache, use_cache=True)
    return out.logits, out.past_key_values


@dataclass
class Classifier:
    model: torch.nn.Module
    tokenizer: Any
    taxonomy: Taxonomy
    threshold: float
    max_length: int
    device: torch.device
    max_category_tokens: int = 24
    refusal_threshold: float = 0.5

    def __post_init__(self) -> None:
        self.unsafe_id, self.safe_id = reply_token_ids(self.tokenizer, self.taxonomy)
        self.refusal_id, self.compliance_id = refusal_token_ids(self.tokenizer)
        self.model.eval()

    @torch.no_grad()
    def score_refusal(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 8) -> list[float]:
        """P(refusal) per (request, reply): sigmoid(l_refusal - l_compliance) at the start of the reply."""
        ids = [refusal_prompt_ids(self.tokenizer, p, r, self.max_length)
               for p, r in zip(prompts, responses, strict=True)]
        scores: list[float] = []
        for i in range(0, len(ids), batch_size):
            batch = shared_prefix_batch(ids[i : i + batch_size], self.tokenizer.pad_token_id)
            logits, _ = forward_shared_prefix(self.model, {k: v.to(self.device) for k, v in batch.items()})
            last = logits[:, -1].float()
            scores += torch.sigmoid(last[:, self.refusal_id] - last[:, self.compliance_id]).tolist()
        return scores

    def _prompts(self, conversations: Sequence[Conversation], judge_role: str | Sequence[str] | None) -> list[list[int]]:
        if judge_role is None or isinstance(judge_role, str):
            roles = [judge_role or c[-1]["role"] for c in conversations]
        else:
            roles = list(judge_role)
        budget = self.max_length - self.max_category_tokens - 1
        return [prompt_ids(self.tokenizer, c, r, self.taxonomy, budget)
                for c, r in zip(conversations, roles, strict=True)]

    def _batch(self, rows: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        # two suffix tokens: the last prompt token (its logits give the score) and the forced "unsafe" token
        batch = shared_prefix_batch(rows, self.tokenizer.pad_token_id, min_suffix=2)
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.no_grad()
    def _decode(self, logits: torch.Tensor, cache: Any, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        """Greedy continuation (from `logits`, after the forced "unsafe" token); codes on its second line."""
        eos = self.tokenizer.eos_token_id
        mask, pos = batch["attention_mask"], batch["position_ids"][:, -1:]
        generated = torch.empty((logits.shape[0], 0), dtype=torch.long, device=self.device)
        done = torch.zeros(logits.shape[0], dtype=torch.bool, device=self.device)
        for _ in range(self.max_category_tokens):
            nxt = logits[:, -1].argmax(-1)
            generated = torch.cat([generated, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            pos = pos + 1
            step = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos,
                              past_key_values=cache, use_cache=True)
            logits, cache = step.logits, step.past_key_values
        out = []
        for row in generated.tolist():
            lines = self.tokenizer.decode([self.unsafe_id, *row], skip_special_tokens=True).splitlines()
            out.append(list(parse_categories(lines[1] if len(lines) > 1 else "", self.taxonomy.codes)[0]))
        return out

    @torch.no_grad()
    def _run(self, ids: list[list[int]], batch_size: int, categories_for: str) -> tuple[list[float], list[list[str]]]:
        """One forward pass per batch over prompt + the first token of "unsafe": the logits before that
        token give the score, the logits after it start the category decoding (only where needed)."""
        scores: list[float] = []
        cats: list[list[str]] = []
        for i in range(0, len(ids), batch_size):
            batch = self._batch([x + [self.unsafe_id] for x in ids[i : i + batch_size]])
            logits, cache = forward_shared_prefix(self.model, batch)
            last = logits[:, -2].float()
            chunk = torch.sigmoid(last[:, self.unsafe_id] - last[:, self.safe_id]).tolist()
            scores += chunk
            if categories_for == "all" or any(s >= self.threshold for s in chunk):
                found = self._decode(logits, cache, batch)
                cats += [c if categories_for == "all" or s >= self.threshold else [] for s, c in zip(chunk, found, strict=True)]
            else:
                cats += [[] for _ in chunk]
        return scores, cats

    def score(self, conversations: Sequence[Conversation], judge_role: str | Sequence[str] | None = None,
              batch_size: int = 8, categories_for: str = "unsafe") -> tuple[list[float], list[str], list[list[str]]]:
        """(scores, verdicts, categories) for each conversation; judges its last message.

        judge_role: one role for all, one per conversation, or None = the role of each last message.
        categories_for: "unsafe" decodes categories only where the verdict is unsafe (others get []);
        "all" decodes them for every conversation (what the model would tag if it were unsafe).
        """
        if categories_for not in ("unsafe", "all"):
            raise ValueError(f"categories_for: expected 'unsafe' or 'all', got {categories_for!r}")
        if not conversations:
            return [], [], []
        scores, cats = self._run(self._prompts(conversations, judge_role), batch_size, categories_for)
        verdicts = ["unsafe" if s >= self.threshold else "safe" for s in scores]
        return scores, verdicts, cats


def response_safety(clf: Classifier, prompts: Sequence[Conversation], responses: Sequence[str],
                    batch_size: int = 8) -> dict[str, Any]:
    """Judge each response as the agent's reply to its prompt; `unsafe_rate` is what the release gate reads
    (as `safety/unsafe_rate/aligned` for the aligned model's responses to the harmful prompt set)."""
    convs = [[*p, {"role": "assistant", "content": r}] for p, r in zip(prompts, responses, strict=True)]
    scores, verdicts, cats = clf.score(convs, "assistant", batch_size=batch_size)
    rate = sum(v == "unsafe" for v in verdicts) / len(verdicts) if verdicts else float("nan")
    return {"unsafe_rate": rate, "scores": scores, "verdicts": verdicts, "categories": cats}


def three_tasks(clf: Classifier, prompts: Sequence[str], responses: Sequence[str],
                batch_size: int = 8) -> list[dict[str, Any]]:
    """WildGuard's three answers per (request, reply): request harmful, reply a refusal, reply harmful."""
    users = [[{"role": "user", "content": p}] for p in prompts]
    request, _, _ = clf.score(users, "user", batch_size=batch_size)
    reply, _, _ = clf.score([[*u, {"role": "assistant", "content": r}] for u, r in zip(users, responses, strict=True)],
                            "assistant", batch_size=batch_size)
    refusal = clf.score_refusal(prompts, responses, batch_size=batch_size)
    return [{"request_harmful": a >= clf.threshold, "request_score": a,
             "response_refusal": b >= clf.refusal_threshold, "refusal_score": b,
             "response_harmful": c >= clf.threshold, "response_score": c}
            for a, b, c in zip(request, refusal, reply, strict=True)]


def load(model_dir: str | Path, device: torch.device | None = None, dtype: torch.dtype | None = None,
         threshold: float | None = None, max_category_tokens: int = 24) -> Classifier:
    """A Classifier from a model folder or URI; `threshold` overrides the one saved with the model."""
    path = models.resolve_model_dir(str(model_dir))
    device = device or models.pick_device()
    dtype = dtype or models.pick_dtype("auto", device)
    meta = models.read_meta(path)
    taxonomy = from_data(meta["taxonomy"], f"{path}/kubealign.json") if meta.get("taxonomy") else DEFAULT_TAXONOMY
    model = models.load_causal_lm(path, dtype, device)
    return Classifier(model, models.load_tokenizer(path), taxonomy,
                      threshold if threshold is not None else float(meta.get("threshold", 0.5)),
                      int(meta.get("max_length", 1024)), device, max_category_tokens,
                      float(meta.get("refusal_threshold", 0.5)))


def _guard_inputs(item: str, response: str | None) -> tuple[list[list[dict[str, str]]], list[str]]:
    """Conversations to judge from the CLI argument: a JSONL file of records, or one text."""
    from kubealign.data.io import read_jsonl

    if item.endswith((".jsonl", ".jsonl.gz")) and (("://" in item) or Path(item).exists()):
        convs, shown = [], []
        for i, rec in enumerate(read_jsonl(item), 1):
            if "messages" in rec:
                conv = rec["messages"]
            elif "prompt" in rec or "text" in rec:
                conv = [{"role": "user", "content": rec.get("prompt", rec.get("text"))}]
                if rec.get("response"):
                    conv.append({"role": "assistant", "content": rec["response"]})
            else:
                raise ValueError(f"{item}: line {i}: expected 'messages', 'prompt' (+ optional 'response') or 'text'")
            convs.append(conv)
            shown.append(conv[-1]["content"])
        return convs, shown
    conv = [{"role": "user", "content": item}]
    if response:
        conv.append({"role": "assistant", "content": response})
    return [conv], [conv[-1]["content"]]


def _other_tasks(clf: Classifier, convs: list[list[dict[str, str]]],
                 batch_size: int) -> list[dict[str, Any] | None]:
    """For conversations ending with an agent reply to a user turn: the request's harm and the refusal scores."""
    idx = [i for i, c in enumerate(convs) if len(c) >= 2 and c[-1]["role"] == "assistant" and c[-2]["role"] == "user"]
    out: list[dict[str, Any] | None] = [None] * len(convs)
    if not idx:
        return out
    request, _, _ = clf.score([convs[i][:-1] for i in idx], "user", batch_size=batch_size)
    refusal = clf.score_refusal([convs[i][-2]["content"] for i in idx], [convs[i][-1]["content"] for i in idx],
                                batch_size=batch_size)
    for i, a, b in zip(idx, request, refusal, strict=True):
        out[i] = {"request_verdict": "unsafe" if a >= clf.threshold else "safe", "request_score": round(a, 6),
                  "refusal": b >= clf.refusal_threshold, "refusal_score": round(b, 6)}
    return out


def guard_command(model: str, item: str, response: str | None = None, threshold: float | None = None,
                  as_json: bool = False, batch_size: int = 8) -> int:
    """`kubealign guard --model URI TEXT|FILE.jsonl`: print verdict, score and categories per input.

    With an agent reply (`--response`, or records ending with one), WildGuard's other two answers too:
    whether the user's request is harmful and whether the reply is a refusal.
    """
    convs, shown = _guard_inputs(item, response)
    clf = load(model, threshold=threshold)
    scores, verdicts, cats = clf.score(convs, batch_size=batch_size)
    extra = _other_tasks(clf, convs, batch_size)
    many = len(convs) > 1
    for text, s, v, c, more in zip(shown, scores, verdicts, cats, extra, strict=True):
        if as_json or many:
            print(json.dumps({"verdict": v, "score": round(s, 6), "categories": c, "text": text[:200], **(more or {})},
                             ensure_ascii=False))
            continue
        names = ", ".join(f"{code} ({clf.taxonomy.name_of(code)})" for code in c) or "-"
        print(f"verdict: {v}\nscore: {s:.4f}  (P(unsafe); threshold {clf.threshold:g})\ncategories: {names}")
        if more:
            print(f"request: {more['request_verdict']}  (P(unsafe) {more['request_score']:.4f})\n"
                  f"refusal: {'yes' if more['refusal'] else 'no'}  (P(refusal) {more['refusal_score']:.4f}; "
                  f"threshold {clf.refusal_threshold:g})")
    sys.stdout.flush()
    return 0


__all__ = ["Classifier", "collate_classifier", "forward_shared_prefix", "guard_command", "load", "prompt_ids",
           "refusal_prompt_ids", "refusal_token_ids", "refusal_training_example", "reply_token_ids", "response_safety",
           "shared_prefix_batch", "three_tasks", "training_example"]
