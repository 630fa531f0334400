"""The RLAIF demo's table: the SFT model, every round's policy, with 95% intervals and paired tests vs SFT.

    python scripts/rlaif_table.py out/demo-rlaif/kubealign-rlaif-<stamp> --config configs/demo-rlaif.yaml
                                  [--set key=value ...] [--extra NAME=METRICS_JSON ...]

A finished `kubealign run rlaif --rounds R` folder holds the SFT policy (`merge-lora/merged`), round r's
policy (`merge-lora-<r+1>/merged`), round 1's pairs (`preferences/pairs`) and the graph's own
evaluation of round R against SFT (`evaluate/results/metrics.json`). This script runs the evaluate stage
with the same settings (the config file and --set, as `kubealign run` resolves them) on each earlier
round's policy against the same SFT model, on the same prompts (`<run>/round-eval/round-<r>/`, skipped
when already there), and prints one Markdown table. `--extra NAME=FILE` adds a column from another
evaluation's metrics.json (e.g. the PPO graph's, `make run-rlaif-ppo`);
`--graph rlaif_ppo` reads a `make run-rlaif-ppo` folder itself (its one column is the PPO policy). `--rejudge` recomputes every
column's refusal rates from its saved answers (samples.json) with the current heuristic refusal judge, for
when the judge changed after the run; no model is loaded for that.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from kubealign import knobs
from kubealign.config import EvalConfig
from kubealign.graphs import pipeline
from kubealign.pipeline_params import _defaults_of, resolve

# (label, metric prefix): rates judged on prompt sets, the same prompts for both models
RATES = (("refusal, held-out harmful (higher is better)", "refusal/harmful"),
         ("refusal, jailbreak-wrapped harmful (higher is better)", "refusal/jailbreak"),
         ("over-refusal, benign-but-edgy (lower is better)", "refusal/benign_edgy"),
         ("off-topic answers, benign-but-edgy (lower is better)", "offtopic/benign_edgy"))


def round_dirs(run: Path) -> list[Path]:
    """Round r's merged policy is the (r+1)-th merge task: merge-lora (SFT), merge-lora-2 (round 1), ..."""
    found = {}
    for d in run.iterdir():
        m = re.fullmatch(r"merge-lora-(\d+)", d.name)
        if m and (d / "merged").is_dir():
            found[int(m.group(1)) - 1] = d / "merged"
    return [found[r] for r in sorted(found)]


def eval_settings(config: str | None, sets: list[str], graph: str = "rlaif") -> EvalConfig:
    full = resolve(pipeline(graph), _defaults_of(graph), config, sets, require=False)  # defaults < file < --set
    return EvalConfig.model_validate(knobs.settings_data("evaluate", knobs.args_for(graph, "evaluate", full)))


def evaluate_round(run: Path, r: int, policy: Path, cfg: EvalConfig) -> dict[str, float]:
    from kubealign.stages import evaluate

    out = run / "round-eval" / f"round-{r}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    print(f"evaluating round {r} ({policy}) against SFT ...", file=sys.stderr, flush=True)
    return evaluate.run(cfg, str(run / "merge-lora" / "merged"), str(policy),
                        str(run / "preferences" / "pairs" / "eval.jsonl"), str(out))


def rejudged(metrics: dict[str, float], samples_path: Path, cfg: EvalConfig) -> dict[str, float]:
    """`metrics` with the refusal-set rates recomputed from the saved answers by the heuristic judge
    (evaluate's own `refusal_metrics`, on the requests and answers its samples.json kept)."""
    from kubealign.stages.evaluate import refusal_metrics

    samples = json.loads(samples_path.read_text())
    judged, _ = refusal_metrics("heuristic", samples["judged_requests"], samples["responses"], cfg)
    return {**metrics, **judged}


def cell(m: dict[str, float], key: str) -> str:
    return f"{m[key]:.3f} [{m[f'{key}/low']:.3f}, {m[f'{key}/high']:.3f}]" if key in m else "n/a"


def diff(m: dict[str, float], prefix: str) -> str:
    if f"{prefix}/diff" not in m:
        return ""
    verdict = "real" if m[f"{prefix}/real"] else "within noise"
    return (f"; {m[f'{prefix}/diff']:+.3f} [{m[f'{prefix}/diff_low']:+.3f}, {m[f'{prefix}/diff_high']:+.3f}], "
            f"p {m[f'{prefix}/p_value']:.3g}: {verdict}")


def table(columns: dict[str, dict[str, float]]) -> str:
    first = next(iter(columns.values()))
    head = ["", "SFT (n)"] + list(columns)
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, prefix in RATES:
        n = int(first.get(f"{prefix}/n", 0))
        rows.append(f"| {label} | {cell(first, prefix + '/sft')} ({n}) | "
                    + " | ".join(cell(m, prefix + "/aligned") + diff(m, prefix) for m in columns.values()) + " |")
    # the PPO graph's own reward model where the run has one (what its gate reads), else DPO's implicit reward
    rows.append("| win rate vs SFT: reward model (PPO graph), implicit reward (DPO) (0.5 = even) | | "
                + " | ".join(cell(m, "winrate/reward_model" if "winrate/reward_model" in m
                                  else "winrate/implicit_reward") for m in columns.values()) + " |")
    rows.append("| KL estimate vs SFT (nats) | | "
                + " | ".join(f"{m.get('kl/aligned_vs_sft', float('nan')):.2f}" for m in columns.values()) + " |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--config")
    ap.add_argument("--graph", default="rlaif", choices=("rlaif", "rlaif_ppo"),
                    help="rlaif_ppo: the PPO graph's run (its merge-lora-2 is the PPO policy, one column)")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--extra", action="append", default=[], help="NAME=metrics.json of another evaluation")
    ap.add_argument("--rejudge", action="store_true", help="recompute refusal rates with the current heuristic judge")
    a = ap.parse_args()
    rounds = round_dirs(a.run)
    if not rounds:
        raise SystemExit(f"{a.run}: no merge-lora-<n>/merged folder: not a finished rlaif run")
    cfg = eval_settings(a.config, a.set, a.graph)
    columns = {}
    for r, policy in enumerate(rounds[:-1], 1):
        columns[f"round {r}"] = evaluate_round(a.run, r, policy, cfg)
    columns["PPO" if a.graph == "rlaif_ppo" else f"round {len(rounds)}"] = json.loads((a.run / "evaluate" / "results" / "metrics.json").read_text())
    for item in a.extra:
        name, _, path = item.partition("=")
        columns[name] = json.loads(Path(path).read_text())
    if a.rejudge:
        samples = [a.run / "round-eval" / f"round-{r}" / "samples.json" for r in range(1, len(rounds))]
        samples.append(a.run / "evaluate" / "results" / "samples.json")
        samples += [Path(item.partition("=")[2]).parent / "samples.json" for item in a.extra]
        columns = {k: rejudged(m, p, cfg) for (k, m), p in zip(columns.items(), samples, strict=True)}
    print(table(columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
