"""Preference pairs from the current policy, judged against a constitution (RLAIF).

setup (prompts, labels, constitution, policy) -> sample K responses per prompt (batched, KV cache)
-> score each against every principle that applies -> keep (best, worst) when they differ by more
than the margin (optionally revise the best through an endpoint) -> validate as preference records
-> save train.jsonl / eval.jsonl (DPO's input shape), candidates.jsonl (every response with every
judge's score), summary.json and summary.md.

Each pair record is a preference record (`prompt`, `chosen`, `rejected`, as data prep normalises them)
plus `label` and `provenance`: the round, K, the policy, and each principle's judge and score of the
chosen and the rejected response.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

import torch

from kubealign import models
from kubealign.config import ConfigError, PreferencesConfig, TrackingConfig
from kubealign.constitution import LABELS, Constitution, load_constitution, select_pair, weighted_totals
from kubealign.data.prompts import read_prompt_set, stratified_sample
from kubealign.data.validate import validate
from kubealign.generate import generate
from kubealign.preference_judges import Judges, score_candidates
from kubealign.prompt_split import hash_unit
from kubealign.stages import common

PAIR_EVAL_SALT = "preference-pair-eval\x00"


def read_prompts(uri: str, judges: Judges) -> list[dict[str, Any]]:
    """Rows `{"prompt", "label"}`; a row without a label is labelled by the safety classifier's request task."""
    rows = read_prompt_set(uri, stratum="label")
    bad = [f"row {i}: field label: expected one of {', '.join(LABELS)}, got {r['label']!r}"
           for i, r in enumerate(rows, 1) if "label" in r and r["label"] not in LABELS]
    if bad:
        raise ConfigError(f"{uri}: " + "; ".join(bad[:20]))
    missing = [i for i, r in enumerate(rows) if "label" not in r]
    if missing and not judges.safety_model:
        raise ConfigError(f"{uri}: row {missing[0] + 1}: field label: missing, and no safety_model to label the "
                          f"prompt ({len(missing)} row(s) without a label; expected harmful or benign)")
    if missing:
        clf = judges.classifier()
        scores, _, _ = clf.score([[{"role": "user", "content": rows[i]["prompt"]}] for i in missing], "user",
                                 batch_size=judges.cfg.batch_size)
        for i, s in zip(missing, scores, strict=True):
            rows[i] = {**rows[i], "label": "harmful" if s >= clf.threshold else "benign", "label_score": s}
    return rows


def balanced_sample(rows: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    """`limit` prompts, split evenly between the labels present (the packaged train side is 80% harmful:
    a share-keeping sample would teach refusing far more than serving); seeded, in file order."""
    groups = {lab: [r for r in rows if r["label"] == lab] for lab in LABELS}
    groups = {lab: g for lab, g in groups.items() if g}
    out: list[dict[str, Any]] = []
    for i, (lab, group) in enumerate(sorted(groups.items())):
        share = limit // len(groups) + (1 if i < limit % len(groups) else 0)
        out += stratified_sample(group, share, seed, "set", f"preferences:{lab}")
    return out


def refusal_pool(constitution: Constitution, rows: list[dict[str, Any]], responses: list[list[str]],
                 scores: list[dict[str, list[float]]]) -> list[tuple[str, str]]:
    """(harmful prompt, response) for every answer to a harmful prompt that each refuse-preferring refusal
    principle scored 1 (a refusal, by the constitution's own judge); empty when no principle says so."""
    refuse = [p.name for p in constitution.for_label("harmful") if p.judge == "refusal" and p.prefers == "refuse"]
    if not refuse:
        return []
    return [(row["prompt"], text) for row, resp, sc in zip(rows, responses, scores, strict=True)
            if row["label"] == "harmful" for k, text in enumerate(resp) if all(sc[n][k] >= 1.0 for n in refuse)]


def borrow_refusals(constitution: Constitution, judges: Judges, rows: list[dict[str, Any]], responses: list[list[str]],
                    scores: list[dict[str, list[float]]], seed: int) -> dict[int, str]:
    """Give each benign prompt whose own responses make no pair one more candidate, in place: a refusal from
    `refusal_pool` (seeded pick), scored by the principles that apply to the benign prompt, and kept only
    where it becomes the rejected answer of a pair (a refusal is never lent as the preferred answer to a
    benign request). Returns row index -> the harmful prompt the kept refusal answered (it is that row's
    last response)."""
    pool = refusal_pool(constitution, rows, responses, scores)
    idle = [i for i, r in enumerate(rows) if r["label"] == "benign"
            and select_pair(weighted_totals(constitution, "benign", scores[i]), judges.cfg.margin) is None]
    if not pool or not idle:
        return {}
    rng = random.Random(seed)
    picks = {i: pool[rng.randrange(len(pool))] for i in idle}
    extra = score_candidates(constitution, judges, [rows[i] for i in idle], [[picks[i][1]] for i in idle])
    kept = {}
    for i, sc in zip(idle, extra, strict=True):
        grown = {n: [*scores[i][n], s[0]] for n, s in sc.items()}
        pick = select_pair(weighted_totals(constitution, "benign", grown), judges.cfg.margin)
        if pick is not None and pick[1] == len(responses[i]):  # the borrowed refusal is the worst answer
            responses[i] = [*responses[i], picks[i][1]]
            scores[i] = grown
            kept[i] = picks[i][0]
    return kept


def make_pairs(constitution: Constitution, judges: Judges, rows: list[dict[str, Any]], responses: list[list[str]],
               scores: list[dict[str, list[float]]], round_index: int, policy: str,
               borrowed: dict[int, str] | None = None) -> tuple[list, list]:
    """(pair records, candidate rows with every score and which response each pair kept). `borrowed`: row
    index -> the harmful prompt whose refusal is that row's last response (`borrow_refusals`)."""
    cfg = judges.cfg
    borrowed = borrowed or {}
    rng = random.Random(cfg.seed + round_index)
    pairs, candidates = [], []
    for i, (row, resp, sc) in enumerate(zip(rows, responses, scores, strict=True)):
        totals = weighted_totals(constitution, row["label"], sc)
        pick = select_pair(totals, cfg.margin)
        if pick is not None and resp[pick[0]].strip() == resp[pick[1]].strip():
            pick = None  # same text twice: no preference to learn
        lent = len(resp) - 1 if i in borrowed else None  # index of the borrowed refusal
        for k, text in enumerate(resp):
            kept = None if pick is None else {pick[0]: "chosen", pick[1]: "rejected"}.get(k)
            candidates.append({"prompt": row["prompt"], "label": row["label"], "response": text,
                               "scores": {n: s[k] for n, s in sc.items()}, "total": totals[k], "kept_as": kept,
                               **({"borrowed_from": borrowed[i]} if k == lent else {})})
        if pick is None:
            continue
        best, worst = pick
        chosen = resp[best]
        prov: dict[str, Any] = {
            "round": round_index, "policy": policy, "num_responses": len(resp) - (lent is not None),
            "judges": {p.name: p.judge for p in constitution.for_label(row["label"])},
            "scores": {"chosen": {n: s[best] for n, s in sc.items()}, "rejected": {n: s[worst] for n, s in sc.items()}},
            "total": {"chosen": totals[best], "rejected": totals[worst]}}
        if worst == lent:
            prov["rejected_borrowed_from"] = borrowed[i]  # a refusal the policy gave to this harmful prompt
        if cfg.revise:
            revised = judges.revise(constitution.for_label(row["label"]), row["prompt"], chosen, rng)
            if revised["revision"] and revised["revision"] != resp[worst].strip():
                prov["revision"] = {**revised, "original_chosen": chosen}
                chosen = revised["revision"]
        pairs.append({"prompt": [{"role": "user", "content": row["prompt"]}],
                      "chosen": [{"role": "assistant", "content": chosen}],
                      "rejected": [{"role": "assistant", "content": resp[worst]}],
                      "label": row["label"], "provenance": prov})
    return pairs, candidates


def validated(pairs: list[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, Any]],
                                                                                     list[dict[str, Any]]]:
    """The pairs data prep's preference validation accepts, with its tokenizer-aware checks (room for a
    response within max_length; still different after truncation); extra fields kept. And its rejections."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pairs.jsonl")
        path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
        result = validate(str(path), "preference", tokenizer=tokenizer, max_length=max_length)
    rows = {row for row, _ in result.accepted}
    return [p for i, p in enumerate(pairs, 1) if i in rows], [r.to_dict() for r in result.rejected]


def summarise(pairs: list[dict[str, Any]], candidates: list[dict[str, Any]], rows: list[dict[str, Any]],
              rejected: list[dict[str, Any]], constitution: Constitution) -> dict[str, float]:
    candidates = [c for c in candidates if "borrowed_from" not in c]  # the policy's own answers to each prompt
    out: dict[str, float] = {"prompts": float(len(rows)), "responses": float(len(candidates)),
                             "pairs": float(len(pairs)), "pairs/rejected_by_validation": float(len(rejected)),
                             "pairs/revised": float(sum("revision" in p["provenance"] for p in pairs))}
    for label in LABELS:
        out[f"pairs/{label}"] = float(sum(p["label"] == label for p in pairs))
    for p in constitution.principles:
        for side in ("chosen", "rejected"):
            vals = [x["provenance"]["scores"][side][p.name] for x in pairs if p.name in x["provenance"]["scores"][side]]
            if vals:
                out[f"score/{p.name}/{side}"] = sum(vals) / len(vals)
        sampled = [c["scores"][p.name] for c in candidates if p.name in c["scores"]]
        if sampled:
            out[f"score/{p.name}/sampled"] = sum(sampled) / len(sampled)  # the policy's mean, before selection
    return out


def markdown(summary: dict[str, float], constitution: Constitution, round_index: int) -> str:
    lines = [f"# Preference pairs, round {round_index}", "",
             f"{summary['pairs']:.0f} pairs from {summary['prompts']:.0f} prompts x "
             f"{summary['responses'] / max(summary['prompts'], 1):.0f} responses "
             f"(harmful {summary['pairs/harmful']:.0f}, benign {summary['pairs/benign']:.0f}; "
             f"rejected by validation {summary['pairs/rejected_by_validation']:.0f}).", "",
             "| principle | applies to | judge | weight | sampled mean | chosen mean | rejected mean |",
             "|---|---|---|---|---|---|---|"]
    for p in constitution.principles:
        cells = [f"{summary[k]:.3f}" if k in summary else "-"
                 for k in (f"score/{p.name}/sampled", f"score/{p.name}/chosen", f"score/{p.name}/rejected")]
        lines.append(f"| {p.name} | {p.applies_to} | {p.judge} | {p.weight:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def eval_pair_indices(prompts: list[str], fraction: float, seed: int) -> set[int]:
    """Indices of the pairs kept out of DPO training: a seeded hash of the prompt under `fraction`, and at
    least one pair when there are two or more (DPO's held-out metrics need one).

    The hash is salted apart from `kubealign.prompt_split`'s: these prompts are all train-side of that
    split, i.e. their unsalted hash already lies at or above its held-out fraction (0.3 for harmful
    prompts), so the same hash under a smaller `fraction` would hold out no pair at all.
    """
    held = {i for i, text in enumerate(prompts) if hash_unit(f"{PAIR_EVAL_SALT}{text}", seed) < fraction}
    if not held and len(prompts) > 1 and fraction > 0:
        held = {len(prompts) - 1}
    return held


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def run(cfg: PreferencesConfig, policy_model: str, prompts_uri: str, out_dir: str, round_index: int = 0,
        reward_model: str | None = None, safety_model: str | None = None) -> dict[str, float]:
    constitution = load_constitution(cfg.constitution)
    stage = common.start("preferences", TrackingConfig(mode="disabled"), cfg.dtype, cfg.seed + round_index,
                         cfg.model_dump())
    policy_dir = models.resolve_model_dir(policy_model)
    tokenizer = models.load_tokenizer(policy_dir)
    judges = Judges(cfg, safety_model, reward_model, tokenizer, stage.device, stage.dtype)
    judges.check(constitution, cfg.constitution or "default constitution")
    rows = read_prompts(prompts_uri, judges)
    if cfg.num_prompts:
        rows = balanced_sample(rows, cfg.num_prompts, cfg.seed + round_index)
    model = models.load_causal_lm(policy_dir, stage.dtype, stage.device)
    convs = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    k = cfg.num_responses
    torch.manual_seed(cfg.seed + round_index)
    flat = generate(model, tokenizer, convs, cfg.max_new_tokens, cfg.generate_batch_size, stage.device,
                    do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                    desc=f"preferences round {round_index}", samples=k)
    del model  # judges may load their own models
    responses = [flat[i * k: (i + 1) * k] for i in range(len(rows))]
    scores = score_candidates(constitution, judges, rows, responses)
    borrowed = borrow_refusals(constitution, judges, rows, responses, scores, cfg.seed + round_index) \
        if cfg.borrow_refusals else {}
    pairs, candidates = make_pairs(constitution, judges, rows, responses, scores, round_index, str(policy_model),
                                   borrowed)
    pairs, rejected = validated(pairs, tokenizer, cfg.max_length)
    if not pairs:
        raise ConfigError(f"preferences: no pair from {len(rows)} prompts x {k} responses: every prompt's responses "
                          f"scored within margin {cfg.margin} of each other; lower the margin, raise num_responses "
                          "or temperature")
    held_idx = eval_pair_indices([p["prompt"][0]["content"] for p in pairs], cfg.eval_fraction, cfg.seed)
    held = [p for i, p in enumerate(pairs) if i in held_idx]
    train = [p for i, p in enumerate(pairs) if i not in held_idx]
    summary = {**summarise(pairs, candidates, rows, rejected, constitution), "pairs/train": float(len(train)),
               "pairs/eval": float(len(held)),
               "pairs/borrowed_refusal": float(sum("rejected_borrowed_from" in p["provenance"] for p in pairs))}
    with common.atomic_dir(out_dir) as tmp:
        _write_jsonl(tmp / "train.jsonl", train)
        _write_jsonl(tmp / "eval.jsonl", held)
        _write_jsonl(tmp / "candidates.jsonl", candidates)
        (tmp / "rejections.json").write_text(json.dumps(rejected, indent=1))
        summary.update(stage.resources())
        common.write_summary(tmp, summary)
        (tmp / "summary.md").write_text(markdown(summary, constitution, round_index))
    stage.tracker.finish()
    lent = f"; {summary['pairs/borrowed_refusal']:.0f} with a borrowed refusal rejected" if cfg.borrow_refusals else ""
    print(f"preferences round {round_index}: {len(pairs)} pairs ({len(train)} train / {len(held)} eval) "
          f"from {len(rows)} prompts{lent}", flush=True)
    return summary
