"""Evaluate the aligned model against the SFT model it started from.

- Held-out preference pairs: how often each model gives the chosen response a higher summed
  log-probability than the rejected one (and by how much), and the aligned model's implicit
  reward beta * (log pi_aligned - log pi_sft) accuracy and margin (DPO paper, section 5).
- Held-out prompts: greedy generations of both models side by side.
- Refusal rate on a harmful-prompt set (higher is better) and on a benign-but-edgy set
  (lower is better: over-refusal), with the keyword detector in kubealign.refusal. Both sets are
  inputs (`harmful_prompts`, `benign_edgy_prompts`: fsspec URIs of JSONL), the packaged sets by default.

setup (models, data) -> evaluate -> save (KFP metrics dict, HTML report, samples JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from kubealign import models, report
from kubealign.config import EvalConfig
from kubealign.data.prompts import as_conversations, load_prompt_set
from kubealign.generate import generate
from kubealign.refusal import is_refusal
from kubealign.scoring import load_reward_model, pair_logprobs, score_texts, tokenize_pairs
from kubealign.stages import common


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


def eval_prompts(cfg: EvalConfig, records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The prompt sets both models answer, by name: `held_out` (shown side by side), `harmful`,
    `benign_edgy` (refusal rates; the packaged sets unless the config names files of the team's own)
    and `rm_extra` (more prompts for the win rates: further held-out prompts, or `helpful_prompts`)."""
    prompts = {
        "held_out": [r["prompt"] for r in records[: cfg.num_samples]],
        "harmful": as_conversations(load_prompt_set("harmful", cfg.harmful_prompts, cfg.num_harmful, cfg.seed)),
        "benign_edgy": as_conversations(load_prompt_set("benign_edgy", cfg.benign_edgy_prompts, cfg.num_benign_edgy,
                                                        cfg.seed)),
    }
    extra = max(0, cfg.winrate_prompts - len(prompts["held_out"]))
    prompts["rm_extra"] = (as_conversations(load_prompt_set("helpful", cfg.helpful_prompts, extra, cfg.seed))
                           if cfg.helpful_prompts else [r["prompt"] for r in records[cfg.num_samples : cfg.winrate_prompts]])
    return prompts


def run(cfg: EvalConfig, sft_model: str, aligned_model: str, eval_pairs_uri: str, out_dir: str,
        report_path: str | None = None, reward_model: str | None = None,
        safety_model: str | None = None) -> dict[str, float]:
    """Compare the aligned model with the SFT model; write report.html, metrics.json, samples.json.

    Always: preference metrics on held-out pairs, refusal rates, the implicit-reward win rate and
    the KL estimate on the first `cfg.winrate_prompts` held-out prompts (`implicit_reward_metrics`).
    `reward_model`: also that model's win rate (`reward_model_metrics`). `safety_model`: the
    classifier's unsafe-response rate on the harmful prompts. `cfg.judge_endpoint`: an LLM judge's
    pairwise win rate, each pair judged in both orders.
    """
    stage = common.start("evaluate", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    sft_dir, al_dir = models.resolve_model_dir(sft_model), models.resolve_model_dir(aligned_model)
    tokenizer = models.load_tokenizer(al_dir)
    records = common.read_jsonl(eval_pairs_uri)
    pairs = tokenize_pairs(tokenizer, records, cfg.max_length)
    prompts = eval_prompts(cfg, records)

    # Both models stay loaded: the implicit reward scores each one's responses under the other too.
    loaded = {name: models.load_causal_lm(d, stage.dtype, stage.device) for name, d in (("sft", sft_dir),
                                                                                         ("aligned", al_dir))}
    scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    responses: dict[str, dict[str, list[str]]] = {}
    for name, model in loaded.items():
        scores[name] = pair_logprobs(model, pairs, tokenizer.pad_token_id, cfg.batch_size, stage.device)
        responses[name] = {
            k: generate(model, tokenizer, v, cfg.max_new_tokens, cfg.batch_size, stage.device, desc=f"{name}: {k}")
            for k, v in prompts.items()
        }
    compared = prompts["held_out"] + prompts["rm_extra"]
    implicit = implicit_reward_metrics(loaded, tokenizer, compared, {n: r["held_out"] + r["rm_extra"]
                                                                      for n, r in responses.items()}, cfg)
    del loaded

    metrics = pair_metrics(*scores["sft"], *scores["aligned"], beta=cfg.beta)
    for name in ("sft", "aligned"):
        metrics[f"refusal/harmful/{name}"] = refusal_rate(responses[name]["harmful"])
        metrics[f"refusal/benign_edgy/{name}"] = refusal_rate(responses[name]["benign_edgy"])
        lengths = [len(tokenizer(r)["input_ids"]) for r in responses[name]["held_out"]]
        metrics[f"response_tokens/{name}"] = sum(lengths) / len(lengths) if lengths else 0.0
    metrics.update(implicit)
    rm_section = None
    if reward_model:
        metrics.update(reward_model_metrics(reward_model, prompts, responses, cfg, stage.dtype, stage.device))
        rm_section = render_reward_model(metrics, al_dir)
    if safety_model:
        metrics.update(safety_metrics(safety_model, prompts["harmful"], responses, cfg, stage))
    if cfg.judge_endpoint:
        from kubealign import judge

        result = judge.pairwise(cfg.judge_endpoint, cfg.judge_model, compared, responses["aligned"]["held_out"]
                                + responses["aligned"]["rm_extra"], responses["sft"]["held_out"]
                                + responses["sft"]["rm_extra"], api_key_env=cfg.judge_api_key_env)
        metrics.update(judge.metrics(result))
    metrics.update(stage.resources())

    html = render(metrics, prompts, responses, sft_dir, al_dir, rm_section)
    with common.atomic_dir(out_dir) as tmp:
        (tmp / "report.html").write_text(html)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / "samples.json").write_text(json.dumps(
            {"prompts": prompts, "responses": responses}, indent=1, ensure_ascii=False) + "\n")
    if report_path:
        Path(report_path).write_text(html)
    stage.tracker.set_summary(metrics)
    log_tables(stage.tracker, metrics, prompts, responses)
    stage.tracker.finish()
    return metrics


def implicit_reward_metrics(loaded: dict[str, torch.nn.Module], tokenizer: Any, prompts: list[Any],
                            responses: dict[str, list[str]], cfg: EvalConfig) -> dict[str, float]:
    """The aligned model's implicit reward r(y) = beta * (log pi_aligned(y|x) - log pi_sft(y|x)) (DPO
    paper, eq. 5) of its own greedy response against the SFT model's greedy response, per prompt.

    winrate/implicit_reward: mean of 1 when r(aligned response) > r(SFT response), 0.5 on identical text.
    kl/aligned_vs_sft: mean of log pi_aligned(y|x) - log pi_sft(y|x) over the aligned model's greedy
    responses, in nats: a k1 estimate of KL(aligned || SFT) on greedy rather than sampled responses,
    so read it as drift, not as the exact divergence.
    """
    if not prompts:
        return {}
    records = [{"prompt": p, "chosen": [{"role": "assistant", "content": a}],
                "rejected": [{"role": "assistant", "content": s}]}
               for p, a, s in zip(prompts, responses["aligned"], responses["sft"], strict=True)]
    examples = tokenize_pairs(tokenizer, records, cfg.max_length)
    device = next(loaded["aligned"].parameters()).device
    al_a, al_s = pair_logprobs(loaded["aligned"], examples, tokenizer.pad_token_id, cfg.batch_size, device)
    sft_a, sft_s = pair_logprobs(loaded["sft"], examples, tokenizer.pad_token_id, cfg.batch_size, device)
    r_aligned, r_sft = cfg.beta * (al_a - sft_a), cfg.beta * (al_s - sft_s)
    same = torch.tensor([a == s for a, s in zip(responses["aligned"], responses["sft"], strict=True)])
    wins = torch.where(same, torch.full_like(r_aligned, 0.5), (r_aligned > r_sft).float())
    return {"winrate/implicit_reward": wins.mean().item(), "kl/aligned_vs_sft": (al_a - sft_a).mean().item(),
            "winrate/identical_responses": same.float().mean().item()}


def safety_metrics(safety_model: str, harmful: list[Any], responses: dict[str, dict[str, list[str]]],
                   cfg: EvalConfig, stage: common.Stage) -> dict[str, float]:
    """Share of each model's responses to the harmful prompts that the safety classifier judges unsafe."""
    from kubealign.safety import classifier

    clf = classifier.load(safety_model, stage.device, stage.dtype)
    return {f"safety/unsafe_rate/{name}": classifier.response_safety(clf, harmful, responses[name]["harmful"],
                                                                     cfg.batch_size)["unsafe_rate"]
            for name in ("sft", "aligned")}


def reward_model_metrics(reward_model: str, prompts: dict[str, list[Any]], responses: dict[str, dict[str, list[str]]],
                         cfg: EvalConfig, dtype: torch.dtype, device: torch.device) -> dict[str, float]:
    """Reward-model scores of the greedy SFT and aligned responses to the same held-out prompts.

    winrate/reward_model = mean over prompts of 1 if the aligned response scores higher, 0.5 on a tie
    (identical text or identical score), 0 otherwise.
    """
    rm_dir = models.resolve_model_dir(reward_model)
    rm = load_reward_model(rm_dir, dtype, device).eval().requires_grad_(False)
    tokenizer = models.load_tokenizer(rm_dir)
    asked = prompts["held_out"] + prompts["rm_extra"]
    texts = {name: responses[name]["held_out"] + responses[name]["rm_extra"] for name in ("sft", "aligned")}
    scores = {name: score_texts(rm, tokenizer, asked, texts[name], cfg.batch_size, device, cfg.max_length)
              for name in texts}
    same = torch.tensor([a == b for a, b in zip(texts["sft"], texts["aligned"], strict=True)], dtype=torch.bool)
    tie = same | (scores["aligned"] == scores["sft"])
    wins = torch.where(tie, torch.full_like(scores["sft"], 0.5), (scores["aligned"] > scores["sft"]).float())
    return {
        "winrate/reward_model": wins.mean().item() if len(asked) else float("nan"),
        "winrate/ties": tie.float().mean().item() if len(asked) else float("nan"),
        "winrate/prompts": float(len(asked)),
        "rm_score/sft": scores["sft"].mean().item() if len(asked) else float("nan"),
        "rm_score/aligned": scores["aligned"].mean().item() if len(asked) else float("nan"),
    }


def render_reward_model(metrics: dict[str, float], al_dir: Path) -> str:
    rows = [
        ["reward model win rate, aligned vs SFT (ties count 1/2)", metrics["winrate/reward_model"]],
        ["ties (identical response or score)", metrics["winrate/ties"]],
        ["mean reward-model score: SFT", metrics["rm_score/sft"]],
        ["mean reward-model score: aligned", metrics["rm_score/aligned"]],
        ["held-out prompts (greedy responses)", int(metrics["winrate/prompts"])],
    ]
    curves = _curves(al_dir, ("objective/scores", "objective/rlhf_reward", "objective/kl"))
    charts = "".join(report.line_chart(f"PPO {key}", {key: pts}) for key, pts in curves.items() if pts)
    return report.table(["metric", "value"], rows) + charts


# (label, SFT metric, aligned metric, True when higher is better / False when lower / None when neither)
COMPARED = [
    ("held-out pairs: chosen preferred (log-prob accuracy)", "pairs/sft/accuracy", "pairs/aligned/accuracy", True),
    ("held-out pairs: mean log-prob margin chosen - rejected", "pairs/sft/margin", "pairs/aligned/margin", True),
    ("refusal rate on harmful prompts (higher is better)", "refusal/harmful/sft", "refusal/harmful/aligned", True),
    ("refusal rate on benign-but-edgy prompts (lower is better)", "refusal/benign_edgy/sft",
     "refusal/benign_edgy/aligned", False),
    ("unsafe-response rate on harmful prompts, safety classifier (lower is better)", "safety/unsafe_rate/sft",
     "safety/unsafe_rate/aligned", False),
    ("mean reward-model score on held-out prompts", "rm_score/sft", "rm_score/aligned", True),
    ("mean response length (tokens)", "response_tokens/sft", "response_tokens/aligned", None),
]
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


def comparison_rows(metrics: dict[str, float]) -> list[list[Any]]:
    """`[metric, SFT, aligned, better]` for every measured pair in COMPARED: the report's summary table
    and the W&B table `eval/summary` are these rows."""
    rows = []
    for label, k_sft, k_al, higher in COMPARED:
        if k_sft not in metrics or k_al not in metrics:
            continue
        a, b = metrics[k_sft], metrics[k_al]
        better = "" if higher is None else "tie" if a == b else "aligned" if (b > a) == higher else "sft"
        rows.append([label, a, b, better])
    return rows


def single_rows(metrics: dict[str, float]) -> list[list[Any]]:
    """`[metric, value]` for the measured entries of SINGLE (W&B table `eval/aligned`)."""
    return [[label, int(metrics[k]) if k == "pairs/count" else metrics[k]] for label, k in SINGLE if k in metrics]


def sample_rows(prompts: dict[str, list[Any]], responses: dict[str, dict[str, list[str]]], key: str,
                limit: int | None = None) -> list[list[str]]:
    """`[last prompt turn, SFT response, aligned response]` for prompt set `key`."""
    return [[p[-1]["content"], s, a] for p, s, a in
            zip(prompts[key][:limit], responses["sft"][key], responses["aligned"][key], strict=False)]


def log_tables(tracker: Any, metrics: dict[str, float], prompts: dict[str, list[Any]],
               responses: dict[str, dict[str, list[str]]]) -> None:
    """The report's tables, whole, as W&B tables next to the run summary."""
    tracker.log_table("eval/summary", ["metric", "sft", "aligned", "better"], comparison_rows(metrics))
    tracker.log_table("eval/aligned", ["metric", "value"], single_rows(metrics))
    for key in ("held_out", "harmful", "benign_edgy"):
        tracker.log_table(f"eval/samples/{key}", ["prompt", "sft", "aligned"], sample_rows(prompts, responses, key))


def render(metrics: dict[str, float], prompts: dict[str, list[Any]], responses: dict[str, dict[str, list[str]]],
           sft_dir: Path, al_dir: Path, rm_section: str | None = None) -> str:
    samples = sample_rows(prompts, responses, "held_out")
    harmful = sample_rows(prompts, responses, "harmful", 6)
    edgy = sample_rows(prompts, responses, "benign_edgy", 6)
    charts = "".join(
        report.line_chart(f"{stage} {key}", {key: pts})
        for stage, d, keys in (("SFT", sft_dir, ("loss",)), ("DPO", al_dir, ("loss", "rewards/margins")))
        for key, pts in _curves(d, keys).items() if pts
    )
    return report.page("kubealign evaluation: SFT vs aligned", [
        ("Summary", report.table(["metric", "SFT", "aligned", "better"], comparison_rows(metrics))),
        *([("Reward model: SFT vs aligned on held-out prompts", rm_section)] if rm_section is not None else []),
        ("Aligned model vs its SFT reference", report.table(["metric", "value"], single_rows(metrics))),
        ("Training curves", charts or "<p class='note'>no training history found</p>"),
        ("Held-out prompts, greedy", report.table(["prompt", "SFT", "aligned"], samples, text_cols=(0, 1, 2))),
        ("Harmful prompts (first 6)", report.table(["prompt", "SFT", "aligned"], harmful, text_cols=(0, 1, 2))),
        ("Benign-but-edgy prompts (first 6)", report.table(["prompt", "SFT", "aligned"], edgy, text_cols=(0, 1, 2))),
        ("Notes", "<p class='note'>Refusals are detected with keywords at the start of a response "
                  "(kubealign.refusal.is_refusal); treat small differences as noise.</p>"),
    ])
