"""Safety classifier: fine-tune a causal LM (LoRA) into a Llama-Guard-style classifier.

setup (taxonomy, records -> classifier examples, model + adapter) -> train (shared loop, next-token
loss on the target reply only) -> held-out metrics (overall and per category) -> save (the adapter
merged into plain weights + tokenizer + kubealign.json with taxonomy and threshold, so
`kubealign guard --model` and the evaluation stage load it without peft).

Records are data_prep's normalised safety records (`data.records.normalise_safety`). Augmentation
(optional, seeded per example, fixed for the run): list the categories in a random order, and leave
out categories the record does not violate.

One model, three tasks (WildGuard, Han et al. 2024): besides judging a user request or an agent reply
safe/unsafe, it is trained to say whether an agent reply is a refusal (`safety.refusal_task`), from the
hand-labelled refusal set's train split and the agent-reply records of the training data. With an
eval split it also reports the refusal task on the labelled set's held-out split (`eval/refusal/*`,
`refusal_predictions.jsonl`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from kubealign import loop, models
from kubealign.config import SafetyConfig
from kubealign.data.records import Invalid, normalise_safety
from kubealign.losses import sft_loss
from kubealign.refusal.labels import HELD_OUT, labels_path, load_labelled
from kubealign.safety import metrics as safety_metrics
from kubealign.safety.classifier import (
    Classifier,
    collate_classifier,
    forward_shared_prefix,
    refusal_training_example,
    training_example,
)
from kubealign.safety.prompt import augment
from kubealign.safety.refusal_task import training_pairs
from kubealign.safety.taxonomy import Taxonomy, load_taxonomy
from kubealign.stages import common

# P(refusal) >= this is a refusal; a fixed 0.5 until SafetyConfig grows a knob for it
REFUSAL_THRESHOLD = 0.5


def safety_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float], int]:
    """Next-token loss on the target reply; tokens counted as full sequences (the shared prefix once per row)."""
    logits, _ = forward_shared_prefix(model, batch)
    return sft_loss(logits, batch["labels"]), {}, int(batch["attention_mask"].sum())


def read_records(uri: str, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """data_prep's records, re-checked against this run's taxonomy (data_prep checks S1-S14)."""
    out = []
    for i, record in enumerate(common.read_jsonl(uri), 1):
        try:
            out.append(normalise_safety(record, taxonomy.codes))
        except Invalid as err:
            raise ValueError(f"{uri}: line {i}: {err.reason}: {err.field}: {err.message}") from None
    return out


def tokenize_records(tokenizer: Any, records: list[dict[str, Any]], taxonomy: Taxonomy, cfg: SafetyConfig,
                     train: bool) -> list[dict[str, list[int]]]:
    examples = []
    for i, r in enumerate(records):
        shown = taxonomy
        if train and (cfg.shuffle_categories or cfg.drop_categories):
            rng = random.Random(f"{cfg.seed}:{i}")  # a fixed variant per example, the same on resume
            shown = augment(taxonomy, r["categories"], rng, cfg.shuffle_categories, cfg.drop_categories)
        examples.append(training_example(tokenizer, r["messages"], r["judge_role"], r["label"], r["categories"],
                                         shown, cfg.max_length))
    return examples


def tokenize_refusal_pairs(tokenizer: Any, pairs: list[dict[str, Any]], max_length: int) -> list[dict[str, list[int]]]:
    return [refusal_training_example(tokenizer, p["prompt"], p["response"], p["refusal"], max_length) for p in pairs]


def held_out_refusal(clf: Classifier, batch_size: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The refusal task on the hand-labelled set's held-out split: metrics and one prediction row per pair."""
    rows = load_labelled(HELD_OUT)
    scores = clf.score_refusal([r["prompt"] for r in rows], [r["response"] for r in rows], batch_size=batch_size)
    truth = [r["label"] != "complied" for r in rows]
    metrics = safety_metrics.binary_metrics(truth, scores, [s >= clf.refusal_threshold for s in scores])
    preds = [{"prompt": r["prompt"], "response": r["response"], "label": r["label"], "refusal": t,
              "score": s, "predicted": s >= clf.refusal_threshold} for r, t, s in zip(rows, truth, scores, strict=True)]
    return metrics, preds


def held_out_metrics(clf: Classifier, records: list[dict[str, Any]],
                     batch_size: int) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Nested metrics (see `safety.metrics.classifier_metrics`) and one prediction row per record."""
    scores, verdicts, cats = clf.score([r["messages"] for r in records], [r["judge_role"] for r in records],
                                       batch_size=batch_size, categories_for="all")
    nested = safety_metrics.classifier_metrics([r["label"] for r in records], [r["categories"] for r in records],
                                               scores, cats, clf.taxonomy.codes, clf.threshold)
    # safe vs unsafe for each side of the conversation: judging a user's request and judging the
    # agent's reply are different tasks, and evaluate uses the classifier for the second
    by_role: dict[str, dict[str, float]] = {}
    for role, group in (("user", "prompts"), ("assistant", "responses")):
        idx = [i for i, r in enumerate(records) if r["judge_role"] == role]
        if idx:
            by_role[group] = safety_metrics.binary_metrics([records[i]["label"] == "unsafe" for i in idx],
                                                           [scores[i] for i in idx],
                                                           [scores[i] >= clf.threshold for i in idx])
    nested = {"overall": nested.pop("overall"), **by_role, **nested}
    rows = [{"text": r["messages"][-1]["content"], "judge_role": r["judge_role"], "label": r["label"],
             "categories": r["categories"], "score": s, "verdict": v, "predicted_categories": c if v == "unsafe" else []}
            for r, s, v, c in zip(records, scores, verdicts, cats, strict=True)]
    return nested, rows


def per_category_table(nested: dict[str, dict[str, float]], taxonomy: Taxonomy) -> list[list[Any]]:
    names = {c.code: c.name for c in taxonomy.categories} | {"overall": "safe vs unsafe", "prompts": "user requests only",
                                                       "responses": "agent replies only",
                                                       "macro": "mean over categories"}
    return [[group, names.get(group, group), *(m.get(k, float("nan")) for k in ("support", "precision", "recall",
                                                                              "f1", "fpr", "auprc"))]
            for group, m in nested.items()]


def format_table(rows: list[list[Any]]) -> str:
    head = f"{'group':<8} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>7} {'fpr':>7} {'auprc':>7}  name"
    lines = [head]
    for group, name, support, *rates in rows:
        cells = " ".join(f"{v:>{w}.3f}" for v, w in zip(rates, (9, 7, 7, 7, 7), strict=True))
        lines.append(f"{group:<8} {support:>7.0f} {cells}  {name}")
    return "\n".join(lines)


def run(cfg: SafetyConfig, base_model: str, train_uri: str, out_dir: str, eval_uri: str | None = None,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    stage = common.start("safety", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    taxonomy = load_taxonomy(cfg.taxonomy)
    base_dir = models.resolve_model_dir(base_model)
    tokenizer = models.load_tokenizer(base_dir)
    train_records = read_records(train_uri, taxonomy)
    held_records = read_records(eval_uri, taxonomy) if eval_uri else []
    train = tokenize_records(tokenizer, train_records, taxonomy, cfg, train=True)
    # WildGuard's third task in the same model: is the agent's reply a refusal (safety.refusal_task)
    refusal_pairs = training_pairs(train_records)
    train += tokenize_refusal_pairs(tokenizer, refusal_pairs, cfg.max_length)

    model = models.load_causal_lm(base_dir, stage.dtype, stage.device)
    if cfg.lora.enabled:
        model = models.add_lora(model, cfg.lora)
    n_unsafe = sum(r["label"] == "unsafe" for r in train_records)
    print(f"safety: {len(train_records)} train records ({n_unsafe} unsafe) + {len(refusal_pairs)} refusal-task pairs / "
          f"{len(held_records)} eval records, "
          f"{len(taxonomy.categories)} categories; {models.describe(model)}", flush=True)

    run_id = loop.run_key("safety", cfg, data=[train_uri, str(labels_path())],
                          extra=[base_model, loop.data_digest(str(base_dir / "config.json")), taxonomy.to_list()])
    result = loop.train(model, train, partial(collate_classifier, pad_id=tokenizer.pad_token_id), safety_step, cfg,
                        stage.tracker, run_id, desc="safety", on_step=on_step)
    if cfg.lora.enabled:  # plain weights: loading the classifier needs no peft
        model = model.merge_and_unload()

    summary: dict[str, float] = {"train/loss": result.metrics.get("loss", float("nan")), "steps": float(result.steps),
                                 "tokens_per_s": result.tokens_per_s}
    rows: list[dict[str, Any]] = []
    refusal_rows: list[dict[str, Any]] = []
    nested: dict[str, dict[str, float]] = {}
    if held_records:
        clf = Classifier(model, tokenizer, taxonomy, cfg.threshold, cfg.max_length, stage.device,
                         cfg.max_category_tokens, REFUSAL_THRESHOLD)
        nested, rows = held_out_metrics(clf, held_records, cfg.eval_batch_size)
        summary.update(safety_metrics.flatten(nested, "eval"))
        refusal_metrics, refusal_rows = held_out_refusal(clf, cfg.eval_batch_size)
        summary.update(safety_metrics.flatten({"refusal": refusal_metrics}, "eval"))
    meta = {"stage": "safety", "base_model": str(base_dir), "lora": cfg.lora.enabled, "run_id": run_id,
            "taxonomy": taxonomy.to_list(), "threshold": cfg.threshold, "max_length": cfg.max_length,
            "tasks": ["request_harmful", "response_harmful", "response_refusal"], "refusal_threshold": REFUSAL_THRESHOLD}
    with common.model_output(stage, out_dir, model, tokenizer, meta, summary, result.history) as tmp:
        for name, table in (("eval_predictions.jsonl", rows), ("refusal_predictions.jsonl", refusal_rows)):
            if table:
                (tmp / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table))
    if nested:
        print(format_table(per_category_table(nested, taxonomy)), flush=True)
        stage.tracker.log_table("eval/per_category", ["group", "name", "support", "precision", "recall", "f1", "fpr",
                                                      "auprc"], per_category_table(nested, taxonomy))
    stage.tracker.finish()
    return summary
