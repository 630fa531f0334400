"""The evaluation tables: one set of rows feeds the HTML report and the W&B tables."""

from __future__ import annotations

from typing import Any

from kubealign.stages.evaluate import comparison_rows, log_tables, sample_rows, single_rows

METRICS = {
    "pairs/sft/accuracy": 0.5, "pairs/aligned/accuracy": 0.75,
    "pairs/sft/margin": 2.0, "pairs/aligned/margin": 2.0,
    "refusal/harmful/sft": 0.5, "refusal/harmful/aligned": 0.25,
    "refusal/benign_edgy/sft": 0.25, "refusal/benign_edgy/aligned": 0.0,
    "safety/unsafe_rate/sft": 0.125, "safety/unsafe_rate/aligned": 0.375,
    "response_tokens/sft": 12.0, "response_tokens/aligned": 9.5,
    "pairs/aligned/implicit_accuracy": 1.0, "pairs/aligned/implicit_margin": 3.0, "pairs/count": 36.0,
    "winrate/implicit_reward": 0.9, "kl/aligned_vs_sft": 2.75,
}


def test_comparison_rows_mark_the_better_model_by_direction() -> None:
    rows = {r[0]: r[1:] for r in comparison_rows(METRICS)}
    assert rows["held-out pairs: chosen preferred (log-prob accuracy)"] == [0.5, 0.75, "aligned"]
    assert rows["held-out pairs: mean log-prob margin chosen - rejected"] == [2.0, 2.0, "tie"]
    assert rows["refusal rate on harmful prompts (higher is better)"] == [0.5, 0.25, "sft"]
    assert rows["refusal rate on benign-but-edgy prompts (lower is better)"] == [0.25, 0.0, "aligned"]
    assert rows["unsafe-response rate on harmful prompts, safety classifier (lower is better)"] == [
        0.125, 0.375, "sft"]
    assert rows["mean response length (tokens)"] == [12.0, 9.5, ""]
    assert len(rows) == 6  # no reward-model row: rm_score/* not measured


def test_single_rows_keep_only_measured_metrics() -> None:
    rows = dict(single_rows(METRICS))
    assert rows["held-out pairs"] == 36 and isinstance(rows["held-out pairs"], int)
    assert rows["KL estimate aligned || SFT on aligned greedy responses (nats)"] == 2.75
    assert not any("judge" in k or "reward model" in k for k in rows)


class RecordingTracker:
    def __init__(self) -> None:
        self.tables: dict[str, tuple[list[str], list[list[Any]]]] = {}

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        self.tables[key] = (columns, rows)


def test_log_tables_sends_the_report_tables_whole() -> None:
    prompts = {k: [[{"role": "user", "content": f"{k} {i}"}] for i in range(8)] for k in ("held_out", "harmful",
                                                                                        "benign_edgy")}
    responses = {m: {k: [f"{m} says {k} {i}" for i in range(8)] for k in prompts} for m in ("sft", "aligned")}
    tracker = RecordingTracker()
    log_tables(tracker, METRICS, prompts, responses)
    assert set(tracker.tables) == {"eval/summary", "eval/aligned", "eval/samples/held_out", "eval/samples/harmful",
                                   "eval/samples/benign_edgy"}
    assert tracker.tables["eval/summary"] == (["metric", "sft", "aligned", "better"], comparison_rows(METRICS))
    columns, harmful = tracker.tables["eval/samples/harmful"]
    assert columns == ["prompt", "sft", "aligned"] and len(harmful) == 8  # all of them, the HTML shows 6
    assert harmful[7] == ["harmful 7", "sft says harmful 7", "aligned says harmful 7"]
    assert len(sample_rows(prompts, responses, "harmful", 6)) == 6
