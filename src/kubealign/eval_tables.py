"""The evaluation's tables: the same rows feed the HTML report and the W&B tables.

A rate with a 95% bootstrap interval has `<metric>/low` and `<metric>/high` beside it; a rate measured
for both models on the same prompts has a paired comparison under its prefix (`<prefix>/diff`,
`/diff_low`, `/diff_high`, `/p_value`, `/real`; kubealign.refusal.rates). A difference is called real
only when its interval excludes 0; "better" names a model only then (or, for a figure without a
paired test, by direction alone). A win rate is real when its interval excludes 0.5.
"""

from __future__ import annotations

import math
from typing import Any

# (label, SFT metric, aligned metric, True = higher is better / False = lower / None = neither,
#  prefix of the paired comparison or None)
COMPARED: list[tuple[str, str, str, bool | None, str | None]] = [
    ("held-out pairs: chosen preferred (log-prob accuracy)", "pairs/sft/accuracy", "pairs/aligned/accuracy", True,
     None),
    ("held-out pairs: mean log-prob margin chosen - rejected", "pairs/sft/margin", "pairs/aligned/margin", True, None),
    ("refusal rate on harmful prompts (higher is better)", "refusal/harmful/sft", "refusal/harmful/aligned", True,
     "refusal/harmful"),
    ("refusal rate on jailbreak-wrapped harmful prompts (higher is better)", "refusal/jailbreak/sft",
     "refusal/jailbreak/aligned", True, "refusal/jailbreak"),
    ("over-refusal on benign-but-edgy prompts: refused or deflected (lower is better)", "refusal/benign_edgy/sft",
     "refusal/benign_edgy/aligned", False, "refusal/benign_edgy"),
    ("off-topic answers to benign-but-edgy prompts (lower is better)", "offtopic/benign_edgy/sft",
     "offtopic/benign_edgy/aligned", False, "offtopic/benign_edgy"),
    ("unsafe-response rate on harmful prompts, safety classifier (lower is better)", "safety/unsafe_rate/sft",
     "safety/unsafe_rate/aligned", False, None),
    ("mean reward-model score on held-out prompts", "rm_score/sft", "rm_score/aligned", True, None),
    ("mean response length (tokens)", "response_tokens/sft", "response_tokens/aligned", None, None),
]
COMPARED_COLUMNS = ["metric", "sft", "sft 95% CI", "aligned", "aligned 95% CI", "aligned - sft", "diff 95% CI",
                    "p (McNemar)", "real", "better"]
# (label, metric) of the aligned model alone, shown when measured
SINGLE = [
    ("implicit reward accuracy (aligned vs SFT reference)", "pairs/aligned/implicit_accuracy"),
    ("implicit reward margin", "pairs/aligned/implicit_margin"),
    ("held-out pairs", "pairs/count"),
    ("win rate, aligned vs SFT greedy responses, by implicit reward", "winrate/implicit_reward"),
    ("win rate, aligned vs SFT, by reward model (ties count 1/2)", "winrate/reward_model"),
    ("win rate by LLM judge (both orders)", "winrate/judge"),
    ("KL estimate aligned || SFT on aligned greedy responses (nats)", "kl/aligned_vs_sft"),
]
SINGLE_COLUMNS = ["metric", "value", "95% CI", "real (vs 0.5)"]


def interval_text(metrics: dict[str, float], low: str, high: str) -> str:
    """`[low, high]` to 3 decimals, '' when the interval was not measured."""
    if low not in metrics or high not in metrics or not all(math.isfinite(metrics[k]) for k in (low, high)):
        return ""
    return f"[{metrics[low]:.3f}, {metrics[high]:.3f}]"


def _better(a: float, b: float, higher: bool | None, real: bool | None) -> str:
    if higher is None:
        return ""
    if real is False:
        return "neither (within noise)"
    return "tie" if a == b else "aligned" if (b > a) == higher else "sft"


def comparison_rows(metrics: dict[str, float]) -> list[list[Any]]:
    """One row of COMPARED_COLUMNS for every measured pair in COMPARED (the report's summary, W&B `eval/summary`)."""
    rows = []
    for label, k_sft, k_al, higher, paired in COMPARED:
        if k_sft not in metrics or k_al not in metrics:
            continue
        a, b = metrics[k_sft], metrics[k_al]
        tested = paired is not None and f"{paired}/real" in metrics
        real = bool(metrics[f"{paired}/real"]) if tested else None
        rows.append([
            label, a, interval_text(metrics, f"{k_sft}/low", f"{k_sft}/high"),
            b, interval_text(metrics, f"{k_al}/low", f"{k_al}/high"),
            metrics[f"{paired}/diff"] if tested else b - a,
            interval_text(metrics, f"{paired}/diff_low", f"{paired}/diff_high") if tested else "",
            metrics[f"{paired}/p_value"] if tested else None,
            "" if real is None else "yes" if real else "no",
            _better(a, b, higher, real),
        ])
    return rows


def single_rows(metrics: dict[str, float]) -> list[list[Any]]:
    """One row of SINGLE_COLUMNS for each measured entry of SINGLE (W&B table `eval/aligned`)."""
    rows = []
    for label, k in SINGLE:
        if k not in metrics:
            continue
        ci = interval_text(metrics, f"{k}/low", f"{k}/high")
        real = "" if not ci else "yes" if metrics[f"{k}/low"] > 0.5 or metrics[f"{k}/high"] < 0.5 else "no"
        rows.append([label, int(metrics[k]) if k == "pairs/count" else metrics[k], ci, real])
    return rows


def verdict_rows(metrics: dict[str, float]) -> list[list[Any]]:
    """`[set, model, complied, refused, deflected, off_topic, unreadable]`: the judge's verdict breakdown."""
    from kubealign.refusal.verdict import VERDICTS

    rows = []
    for name in ("harmful", "jailbreak", "benign_edgy"):
        for model in ("sft", "aligned"):
            keys = [f"verdicts/{name}/{model}/{v}" for v in (*VERDICTS, "unreadable")]
            if all(k in metrics for k in keys):
                rows.append([name, model, *(int(metrics[k]) for k in keys)])
    return rows


VERDICT_COLUMNS = ["set", "model", "complied", "refused", "deflected", "off_topic", "unreadable"]


def sample_rows(prompts: dict[str, list[Any]], responses: dict[str, dict[str, list[str]]], key: str,
                limit: int | None = None) -> list[list[str]]:
    """`[last prompt turn, SFT response, aligned response]` for prompt set `key`."""
    return [[p[-1]["content"], s, a] for p, s, a in
            zip(prompts[key][:limit], responses["sft"][key], responses["aligned"][key], strict=False)]


def log_tables(tracker: Any, metrics: dict[str, float], prompts: dict[str, list[Any]],
               responses: dict[str, dict[str, list[str]]]) -> None:
    """The report's tables, whole, as W&B tables next to the run summary."""
    tracker.log_table("eval/summary", COMPARED_COLUMNS, comparison_rows(metrics))
    tracker.log_table("eval/aligned", SINGLE_COLUMNS, single_rows(metrics))
    tracker.log_table("eval/verdicts", VERDICT_COLUMNS, verdict_rows(metrics))
    for key in ("held_out", "harmful", "jailbreak", "benign_edgy"):
        if key in prompts:
            tracker.log_table(f"eval/samples/{key}", ["prompt", "sft", "aligned"], sample_rows(prompts, responses, key))


__all__ = ["COMPARED", "COMPARED_COLUMNS", "SINGLE", "SINGLE_COLUMNS", "VERDICT_COLUMNS", "comparison_rows",
           "interval_text", "log_tables", "sample_rows", "single_rows", "verdict_rows"]
