"""A reward model's pair accuracy on held-out pairs, by kind: does it prefer refusing harmful requests
and serving benign ones on prompts it never trained on?

    python scripts/reward_heldout.py out/demo-rlaif-ppo/kubealign-rlaif-ppo-<stamp> \
        --config configs/demo-rlaif-ppo.yaml --prompts-dir out/rlaif-prompts/held_out [--per-kind 80]

The pairs are built the way the run built its training pairs: the preferences stage (the run's own
settings, from the config file and --set as `kubealign run` resolves them) samples K answers from the
run's SFT model (`merge-lora/merged`) to held-out prompts (`kubealign preferences split`: never in
train.jsonl) and keeps (best, worst) under the constitution. Harmful prompts come from
`harmful.jsonl`; benign ones half from `benign_edgy.jsonl`, half from `helpful.jsonl`. The run's reward
model (`reward-model/model`) then scores both answers of every pair; accuracy is the share of pairs with
chosen scored strictly above rejected, per kind, with its 95% bootstrap interval. Where the run's PPO
stage adds the constitution's rule-based reward (`ppo_constitution_weight` > 0), the same table follows for
the score PPO optimises: reward model + weight x constitution total (the missing-EOS penalty left out: these
answers are whole). Pairs and scores are written to `<run>/reward-heldout/`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from kubealign import knobs
from kubealign.config import PPOConfig, PreferencesConfig
from kubealign.graphs import pipeline
from kubealign.pipeline_params import _defaults_of, resolve


def prompt_rows(prompts_dir: Path, harmful: int, benign: int) -> list[dict[str, str]]:
    """The first `harmful` harmful prompts, and `benign` benign ones split evenly between the two benign
    sets (where one set runs short, the other makes up the difference; fewer only when both run out)."""
    def read(name: str, label: str) -> list[dict[str, str]]:
        lines = (prompts_dir / f"{name}.jsonl").read_text().splitlines()
        return [{"prompt": json.loads(line)["prompt"], "label": label} for line in lines if line.strip()]

    edgy, helpful = read("benign_edgy", "benign"), read("helpful", "benign")
    n_edgy = min(len(edgy), max(benign // 2, benign - len(helpful)))
    return read("harmful", "harmful")[:harmful] + edgy[:n_edgy] + helpful[:benign - n_edgy]


def stage_settings(config: str | None, sets: list[str]) -> tuple[PreferencesConfig, PPOConfig]:
    """The run's preferences settings (all prompts, none held back; the policy's own answers only: a
    borrowed refusal would make benign pairs easy) and its PPO settings."""
    full = resolve(pipeline("rlaif_ppo"), _defaults_of("rlaif_ppo"), config, sets, require=False)
    data = knobs.settings_data("preferences", knobs.args_for("rlaif_ppo", "preferences", full))
    prefs = PreferencesConfig.model_validate({**data, "num_prompts": 0, "eval_fraction": 0.0,
                                              "borrow_refusals": False})
    return prefs, PPOConfig.model_validate(knobs.settings_data("ppo", knobs.args_for("rlaif_ppo", "ppo", full)))


def print_table(title: str, acc: dict[str, float]) -> None:
    print(f"{title}\n| kind | pairs | pair accuracy [95% interval] |\n|---|---|---|")
    for kind in ("harmful", "benign"):
        if f"accuracy/{kind}" in acc:
            print(f"| {kind} | {acc[f'accuracy/{kind}/n']:.0f} | {acc[f'accuracy/{kind}']:.3f} "
                  f"[{acc[f'accuracy/{kind}/low']:.3f}, {acc[f'accuracy/{kind}/high']:.3f}] |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--config")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--prompts-dir", type=Path, default=Path("out/rlaif-prompts/held_out"))
    ap.add_argument("--per-kind", type=int, default=80, help="held-out prompts of each kind (harmful, benign)")
    ap.add_argument("--benign", type=int, help="held-out benign prompts, when not --per-kind (the SFT model "
                    "serves most benign prompts on every sample, so few of them make a pair)")
    a = ap.parse_args()

    import torch

    from kubealign import models
    from kubealign.constitution import accuracy_by_label
    from kubealign.scoring import load_reward_model, pair_rewards, tokenize_pairs
    from kubealign.stages import preferences
    from kubealign.stages.common import read_jsonl

    sft, reward = a.run / "merge-lora" / "merged", a.run / "reward-model" / "model"
    for d in (sft, reward):
        if not d.is_dir():
            raise SystemExit(f"{d}: missing: not a finished rlaif_ppo run")
    out = a.run / "reward-heldout"
    pairs_dir = out / "pairs"
    rows = prompt_rows(a.prompts_dir, a.per_kind, a.per_kind if a.benign is None else a.benign)
    cfg, ppo_cfg = stage_settings(a.config, a.set)
    prompts, listing = out / "prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows)
    # the pairs of an earlier call are reused only when they came from the same prompts
    if not (pairs_dir / "train.jsonl").is_file() or not prompts.is_file() or prompts.read_text() != listing:
        if pairs_dir.exists():
            shutil.rmtree(pairs_dir)
        out.mkdir(parents=True, exist_ok=True)
        prompts.write_text(listing)
        print(f"sampling {cfg.num_responses} answers to {len(rows)} held-out prompts from {sft} ...",
              file=sys.stderr, flush=True)
        preferences.run(cfg, str(sft), str(prompts), str(pairs_dir))
    records = read_jsonl(str(pairs_dir / "train.jsonl"))

    tokenizer = models.load_tokenizer(reward)
    model = load_reward_model(reward, torch.float32, torch.device("cpu"), pad_token_id=tokenizer.pad_token_id)
    chosen, rejected = pair_rewards(model, tokenize_pairs(tokenizer, records, cfg.max_length),
                                    tokenizer.pad_token_id, cfg.batch_size, torch.device("cpu"))
    labels = [r.get("label") for r in records]
    acc = accuracy_by_label(labels, chosen.tolist(), rejected.tolist(), prefix="accuracy")
    result: dict[str, object] = {"labels": labels, "chosen": chosen.tolist(), "rejected": rejected.tolist(), **acc}
    print(f"held-out prompts: {sum(r['label'] == 'harmful' for r in rows)} harmful, "
          f"{sum(r['label'] == 'benign' for r in rows)} benign -> {len(records)} pairs")
    print_table("reward model alone:", acc)
    if ppo_cfg.constitution_weight > 0:
        from kubealign.stages.ppo import RuleReward

        rule, w = RuleReward(ppo_cfg), ppo_cfg.constitution_weight
        prompts_of = [r["prompt"] for r in records]
        rule_c = rule(prompts_of, labels, [r["chosen"][-1]["content"] for r in records])
        rule_r = rule(prompts_of, labels, [r["rejected"][-1]["content"] for r in records])
        total_c = [c + w * x for c, x in zip(chosen.tolist(), rule_c, strict=True)]
        total_r = [r + w * x for r, x in zip(rejected.tolist(), rule_r, strict=True)]
        combined = accuracy_by_label(labels, total_c, total_r, prefix="accuracy")
        result["ppo_score"] = {"constitution_weight": w, "rule_chosen": rule_c, "rule_rejected": rule_r, **combined}
        print_table(f"the score PPO optimises, reward model + {w:g} x constitution total:", combined)
    (out / "scores.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
