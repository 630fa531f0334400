"""Evaluate the aligned model against the SFT model it started from.

- Held-out preference pairs: how often each model gives the chosen response a higher summed
  log-probability than the rejected one (and by how much), and the aligned model's implicit
  reward beta * (log pi_aligned - log pi_sft) accuracy and margin (DPO paper, section 5).
- Held-out prompts: greedy generations of both models side by side.
- Refusal rate on a harmful-prompt set (higher is better) and on a benign-but-edgy set
  (lower is better: over-refusal), with the keyword detector in kubealign.demo.prompt_sets.

setup (models, data) -> evaluate -> save (KFP metrics dict, HTML report, samples JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from kubealign import models, report
from kubealign.config import EvalConfig
from kubealign.demo.prompt_sets import is_refusal, load_prompt_set
from kubealign.generate import generate
from kubealign.stages import common
from kubealign.stages.dpo import score_pairs, tokenize_pairs


def pair_metrics(sft_c: torch.Tensor, sft_r: torch.Tensor, al_c: torch.Tensor, al_r: torch.Tensor,
                 beta: float) -> dict[str, float]:
    """Preference metrics from summed log-probs of chosen/rejected responses, each shape (N,)."""
    implicit = beta * ((al_c - sft_c) - (al_r - sft_r))
    return {
        "pairs/sft/accuracy": (sft_c > sft_r).float().mean().item(),
        "pairs/sft/margin": (sft_c - sft_r).mean().item(),
        "pairs/aligned/accuracy": (al_c > al_r).float().mean().item(),
        "pairs/aligned/margin": (al_c - al_r).mean().item(),
        "pairs/aligned/implicit_accuracy": (implicit > 0).float().mean().item(),
        "pairs/aligned/implicit_margin": implicit.mean().item(),
        "pairs/count": float(sft_c.numel()),
    }


def refusal_rate(responses: list[str]) -> float:
    return sum(is_refusal(r) for r in responses) / len(responses) if responses else float("nan")


def _curves(model_dir: Path, keys: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    path = model_dir / "training_summary.json"
    if not path.exists():
        return {}
    history = json.loads(path.read_text()).get("history", [])
    return {k: [(h["step"], h[k]) for h in history if k in h] for k in keys}


def run(cfg: EvalConfig, sft_model: str, aligned_model: str, eval_pairs_uri: str, out_dir: str,
        report_path: str | None = None) -> dict[str, float]:
    stage = common.start("evaluate", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    sft_dir, al_dir = models.resolve_model_dir(sft_model), models.resolve_model_dir(aligned_model)
    tokenizer = models.load_tokenizer(al_dir)
    records = common.read_jsonl(eval_pairs_uri)
    pairs = tokenize_pairs(tokenizer, records, cfg.max_length)
    prompts = {
        "held_out": [r["prompt"] for r in records[: cfg.num_samples]],
        "harmful": [[{"role": "user", "content": p["prompt"]}] for p in load_prompt_set("harmful", cfg.num_harmful, cfg.seed)],
        "benign_edgy": [[{"role": "user", "content": p["prompt"]}]
                        for p in load_prompt_set("benign_edgy", cfg.num_benign_edgy, cfg.seed)],
    }

    scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    responses: dict[str, dict[str, list[str]]] = {}
    for name, model_dir in (("sft", sft_dir), ("aligned", al_dir)):
        model = models.load_causal_lm(model_dir, stage.dtype, stage.device)
        scores[name] = score_pairs(model, pairs, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        responses[name] = {
            k: generate(model, tokenizer, v, cfg.max_new_tokens, cfg.batch_size, stage.device)
            for k, v in prompts.items()
        }
        del model

    metrics = pair_metrics(*scores["sft"], *scores["aligned"], beta=cfg.beta)
    for name in ("sft", "aligned"):
        metrics[f"refusal/harmful/{name}"] = refusal_rate(responses[name]["harmful"])
        metrics[f"refusal/benign_edgy/{name}"] = refusal_rate(responses[name]["benign_edgy"])
        lengths = [len(tokenizer(r)["input_ids"]) for r in responses[name]["held_out"]]
        metrics[f"response_tokens/{name}"] = sum(lengths) / len(lengths) if lengths else 0.0
    metrics["wall_s"] = stage.elapsed()

    html = render(metrics, prompts, responses, sft_dir, al_dir)
    with common.atomic_dir(out_dir) as tmp:
        (tmp / "report.html").write_text(html)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / "samples.json").write_text(json.dumps(
            {"prompts": prompts, "responses": responses}, indent=1, ensure_ascii=False) + "\n")
    if report_path:
        Path(report_path).write_text(html)
    stage.tracker.set_summary(metrics)
    rows = [[json.dumps(p[-1]["content"]), s, a] for p, s, a in
            zip(prompts["held_out"], responses["sft"]["held_out"], responses["aligned"]["held_out"], strict=True)]
    stage.tracker.log_table("eval/samples", ["prompt", "sft", "aligned"], rows)
    stage.tracker.finish()
    return metrics


def render(metrics: dict[str, float], prompts: dict[str, list[Any]], responses: dict[str, dict[str, list[str]]],
           sft_dir: Path, al_dir: Path) -> str:
    def better(key_sft: str, key_al: str, higher: bool = True) -> str:
        a, b = metrics[key_sft], metrics[key_al]
        return "aligned" if (b > a if higher else b < a) else ("tie" if a == b else "sft")

    rows = [
        ["held-out pairs: chosen preferred (log-prob accuracy)", metrics["pairs/sft/accuracy"],
         metrics["pairs/aligned/accuracy"], better("pairs/sft/accuracy", "pairs/aligned/accuracy")],
        ["held-out pairs: mean log-prob margin chosen - rejected", metrics["pairs/sft/margin"],
         metrics["pairs/aligned/margin"], better("pairs/sft/margin", "pairs/aligned/margin")],
        ["refusal rate on harmful prompts (higher is better)", metrics["refusal/harmful/sft"],
         metrics["refusal/harmful/aligned"], better("refusal/harmful/sft", "refusal/harmful/aligned")],
        ["refusal rate on benign-but-edgy prompts (lower is better)", metrics["refusal/benign_edgy/sft"],
         metrics["refusal/benign_edgy/aligned"],
         better("refusal/benign_edgy/sft", "refusal/benign_edgy/aligned", higher=False)],
        ["mean response length (tokens)", metrics["response_tokens/sft"], metrics["response_tokens/aligned"], ""],
    ]
    implicit = report.table(["metric", "value"], [
        ["implicit reward accuracy (aligned vs SFT reference)", metrics["pairs/aligned/implicit_accuracy"]],
        ["implicit reward margin", metrics["pairs/aligned/implicit_margin"]],
        ["held-out pairs", int(metrics["pairs/count"])],
    ])
    samples = [[p[-1]["content"], s, a] for p, s, a in
               zip(prompts["held_out"], responses["sft"]["held_out"], responses["aligned"]["held_out"], strict=True)]
    harmful = [[p[-1]["content"], s, a] for p, s, a in
               zip(prompts["harmful"][:6], responses["sft"]["harmful"], responses["aligned"]["harmful"], strict=False)]
    edgy = [[p[-1]["content"], s, a] for p, s, a in
            zip(prompts["benign_edgy"][:6], responses["sft"]["benign_edgy"], responses["aligned"]["benign_edgy"], strict=False)]
    charts = "".join(
        report.line_chart(f"{stage} {key}", {key: pts})
        for stage, d, keys in (("SFT", sft_dir, ("loss",)), ("DPO", al_dir, ("loss", "rewards/margins")))
        for key, pts in _curves(d, keys).items() if pts
    )
    return report.page("kubealign evaluation: SFT vs aligned", [
        ("Summary", report.table(["metric", "SFT", "aligned", "better"], rows)),
        ("Implicit reward (DPO)", implicit),
        ("Training curves", charts or "<p class='note'>no training history found</p>"),
        ("Held-out prompts, greedy", report.table(["prompt", "SFT", "aligned"], samples, text_cols=(0, 1, 2))),
        ("Harmful prompts (first 6)", report.table(["prompt", "SFT", "aligned"], harmful, text_cols=(0, 1, 2))),
        ("Benign-but-edgy prompts (first 6)", report.table(["prompt", "SFT", "aligned"], edgy, text_cols=(0, 1, 2))),
        ("Notes", "<p class='note'>Refusals are detected with keywords at the start of a response "
                  "(kubealign.demo.prompt_sets.is_refusal); treat small differences as noise.</p>"),
    ])
