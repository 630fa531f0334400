"""The evaluation tables: one set of rows feeds the HTML report and the W&B tables.

Hand-made metrics in (as evaluate and kubealign.refusal.rates name them), rows checked cell by cell.
"""

from __future__ import annotations

from typing import Any

from kubealign import report
from kubealign.eval_tables import COMPARED_COLUMNS, SINGLE_COLUMNS, VERDICT_COLUMNS, verdict_rows
from kubealign.stages.evaluate import comparison_rows, log_tables, sample_rows, single_rows

METRICS = {
    "pairs/sft/accuracy": 0.5, "pairs/aligned/accuracy": 0.75,
    "pairs/sft/margin": 2.0, "pairs/aligned/margin": 2.0,
    "refusal/harmful/sft": 0.5, "refusal/harmful/aligned": 0.25,
    "refusal/harmful/sft/low": 0.4, "refusal/harmful/sft/high": 0.6,
    "refusal/harmful/aligned/low": 0.17, "refusal/harmful/aligned/high": 0.34,
    "refusal/harmful/diff": -0.25, "refusal/harmful/diff_low": -0.36, "refusal/harmful/diff_high": -0.14,
    "refusal/harmful/p_value": 0.0001, "refusal/harmful/real": 1.0,
    "refusal/benign_edgy/sft": 0.25, "refusal/benign_edgy/aligned": 0.0,
    "refusal/benign_edgy/diff": -0.25, "refusal/benign_edgy/diff_low": -0.5, "refusal/benign_edgy/diff_high": 0.0,
    "refusal/benign_edgy/p_value": 0.5, "refusal/benign_edgy/real": 0.0,
    "safety/unsafe_rate/sft": 0.125, "safety/unsafe_rate/aligned": 0.375,
    "response_tokens/sft": 12.0, "response_tokens/aligned": 9.5,
    "pairs/aligned/implicit_accuracy": 1.0, "pairs/aligned/implicit_margin": 3.0, "pairs/count": 36.0,
    "winrate/implicit_reward": 0.9, "winrate/implicit_reward/low": 0.8, "winrate/implicit_reward/high": 0.97,
    "winrate/reward_model": 0.55, "winrate/reward_model/low": 0.45, "winrate/reward_model/high": 0.65,
    "kl/aligned_vs_sft": 2.75,
    **{f"verdicts/harmful/{m}/{v}": float(n) for m, counts in (("sft", (2, 1, 1, 0, 0)), ("aligned", (3, 1, 0, 0, 0)))
       for v, n in zip(("complied", "refused", "deflected", "off_topic", "unreadable"), counts, strict=True)},
}


def test_comparison_rows_carry_intervals_the_paired_test_and_mark_real_differences() -> None:
    rows = {r[0]: r[1:] for r in comparison_rows(METRICS)}
    assert COMPARED_COLUMNS == ["metric", "sft", "sft 95% CI", "aligned", "aligned 95% CI", "aligned - sft",
                                "diff 95% CI", "p (McNemar)", "real", "better"]
    # a real drop in harmful refusals: the SFT model is better
    assert rows["refusal rate on harmful prompts (higher is better)"] == [
        0.5, "[0.400, 0.600]", 0.25, "[0.170, 0.340]", -0.25, "[-0.360, -0.140]", 0.0001, "yes", "sft"]
    # a drop in over-refusal whose interval touches 0: not real, no winner
    assert rows["over-refusal on benign-but-edgy prompts: refused or deflected (lower is better)"] == [
        0.25, "", 0.0, "", -0.25, "[-0.500, 0.000]", 0.5, "no", "neither (within noise)"]
    # figures without a paired test keep the direction and an empty test
    assert rows["held-out pairs: chosen preferred (log-prob accuracy)"] == [
        0.5, "", 0.75, "", 0.25, "", None, "", "aligned"]
    assert rows["held-out pairs: mean log-prob margin chosen - rejected"][-1] == "tie"
    assert rows["unsafe-response rate on harmful prompts, safety classifier (lower is better)"][-1] == "sft"
    assert rows["mean response length (tokens)"][-1] == ""
    assert len(rows) == 6  # no jailbreak, off-topic or reward-model score rows: not measured


def test_single_rows_mark_win_rates_whose_interval_excludes_one_half() -> None:
    rows = {r[0]: r[1:] for r in single_rows(METRICS)}
    assert SINGLE_COLUMNS == ["metric", "value", "95% CI", "real (vs 0.5)"]
    assert rows["held-out pairs"] == [36, "", ""] and isinstance(rows["held-out pairs"][0], int)
    assert rows["win rate, aligned vs SFT greedy responses, by implicit reward"] == [0.9, "[0.800, 0.970]", "yes"]
    assert rows["win rate, aligned vs SFT, by reward model (ties count 1/2)"] == [0.55, "[0.450, 0.650]", "no"]
    assert rows["KL estimate aligned || SFT on aligned greedy responses (nats)"] == [2.75, "", ""]
    assert not any("judge" in k for k in rows)


def test_verdict_rows_and_the_html_marks_real_rows() -> None:
    assert verdict_rows(METRICS) == [["harmful", "sft", 2, 1, 1, 0, 0], ["harmful", "aligned", 3, 1, 0, 0, 0]]
    html = report.table(COMPARED_COLUMNS, comparison_rows(METRICS), real_col=COMPARED_COLUMNS.index("real"))
    assert html.count('<tr class="real">') == 1 and "<td class=\"\">yes</td>" in html


class RecordingTracker:
    def __init__(self) -> None:
        self.tables: dict[str, tuple[list[str], list[list[Any]]]] = {}

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        self.tables[key] = (columns, rows)


def test_log_tables_sends_the_report_tables_whole() -> None:
    keys = ("held_out", "harmful", "jailbreak", "benign_edgy")
    prompts = {k: [[{"role": "user", "content": f"{k} {i}"}] for i in range(8)] for k in keys}
    responses = {m: {k: [f"{m} says {k} {i}" for i in range(8)] for k in prompts} for m in ("sft", "aligned")}
    tracker = RecordingTracker()
    log_tables(tracker, METRICS, prompts, responses)
    assert set(tracker.tables) == {"eval/summary", "eval/aligned", "eval/verdicts", *(f"eval/samples/{k}" for k in keys)}
    assert tracker.tables["eval/summary"] == (COMPARED_COLUMNS, comparison_rows(METRICS))
    assert tracker.tables["eval/verdicts"] == (VERDICT_COLUMNS, verdict_rows(METRICS))
    columns, harmful = tracker.tables["eval/samples/harmful"]
    assert columns == ["prompt", "sft", "aligned"] and len(harmful) == 8  # all of them, the HTML shows 6
    assert harmful[7] == ["harmful 7", "sft says harmful 7", "aligned says harmful 7"]
    assert len(sample_rows(prompts, responses, "harmful", 6)) == 6


def test_win_rate_prompts_too_long_to_score_are_left_out_and_counted(tiny_tokenizer: Any) -> None:
    from kubealign.config import EvalConfig
    from kubealign.data.chat import tokenize_prompt
    from kubealign.stages.evaluate import fitting

    short = [{"role": "user", "content": "Why is the sky blue?"}]
    long = [{"role": "user", "content": " ".join(["the sky is blue"] * 40)}]
    cfg = EvalConfig(max_length=64, max_new_tokens=4)
    assert len(tokenize_prompt(tiny_tokenizer, short)) + 4 <= 64 < len(tokenize_prompt(tiny_tokenizer, long))
    assert fitting(tiny_tokenizer, [long, short, long], cfg) == ([short], 2)


def test_mean_response_tokens_counts_every_win_rate_answer(tiny_tokenizer: Any) -> None:
    """Over the held-out pairs' prompts and the extra win-rate prompts alike (it once read the first only,
    one prompt in the RLAIF demo); other sets (harmful, ...) do not count."""
    from kubealign.stages.evaluate import mean_response_tokens

    def n(text: str) -> int:
        return len(tiny_tokenizer(text)["input_ids"])

    long, short = "The sky is blue because air scatters short waves more.", "Blue."
    responses = {"sft": {"held_out": [long], "rm_extra": [short, short], "harmful": [long * 3]},
                 "aligned": {"held_out": [], "rm_extra": [], "harmful": [long]}}
    got = mean_response_tokens(tiny_tokenizer, responses)
    assert n(long) > n(short)
    assert got["response_tokens/sft"] == (n(long) + 2 * n(short)) / 3
    assert got["response_tokens/aligned"] == 0.0
