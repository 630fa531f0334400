"""Run the reward-model or PPO stage on its own and report wall time, key metrics and peak memory.

    python scripts/measure_ppo.py reward --sft MODEL_DIR --prefs SPLITS_DIR --out DIR [--set key=value ...]
    python scripts/measure_ppo.py ppo --sft MODEL_DIR --rm RM_DIR --prefs SPLITS_DIR --out DIR [--set ...]

SPLITS_DIR is a data_prep output folder (train.jsonl, eval.jsonl). `--set` takes RewardConfig / PPOConfig
fields (dotted for nested ones: lora.r=8). Peak resident memory is this process's (getrusage), so run one
stage per call to read it next to the sizes of the models it holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"tracking": {"mode": "disabled"}}
    for item in pairs:
        key, value = item.split("=", 1)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*.safetensors")) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("stage", choices=["reward", "ppo"])
    ap.add_argument("--sft", required=True)
    ap.add_argument("--rm")
    ap.add_argument("--prefs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args(argv)

    from kubealign.config import PPOConfig, RewardConfig, build

    t0 = time.perf_counter()
    if args.stage == "reward":
        from kubealign.stages import reward

        cfg = build(RewardConfig, _settings(args.set))
        summary = reward.run(cfg, args.sft, f"{args.prefs}/train.jsonl", args.out, eval_uri=f"{args.prefs}/eval.jsonl")
        keys = ("eval/accuracy", "eval/margin", "train/accuracy", "tokens_per_s")
        sizes = {"sft_mib": _mib(Path(args.sft)), "reward_model_mib": _mib(Path(args.out))}
    else:
        from kubealign.stages import ppo

        if not args.rm:
            ap.error("ppo needs --rm")
        cfg = build(PPOConfig, _settings(args.set))
        summary = ppo.run(cfg, args.sft, args.rm, f"{args.prefs}/train.jsonl", args.out)
        keys = ("score/first_quarter", "score/last_quarter", "kl/first_quarter", "kl/last_quarter",
                "time/generation_total_s", "time/scoring_total_s", "time/training_total_s")
        sizes = {"policy_base_mib": _mib(Path(args.sft)), "reward_model_mib": _mib(Path(args.rm)),
                 "adapter_mib": _mib(Path(args.out))}
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result = {"stage": args.stage, "wall_s": round(wall, 1), "peak_rss_mib": round(peak_mib),
              **{k: round(v, 1) for k, v in sizes.items()}, **{k: summary.get(k) for k in keys}}
    print(json.dumps(result, indent=1))
    if args.stage == "ppo":
        history = json.loads((Path(args.out) / "summary.json").read_text())["history"]
        print(f"{'step':>4} {'score':>8} {'rm':>8} {'kl':>8} {'rlhf':>8} {'len':>6} {'eos':>4} {'gen_s':>6} {'train_s':>7}")
        for h in history:
            print(f"{h['step']:>4} {h['objective/scores']:8.3f} {h['objective/rm_score']:8.3f} {h['objective/kl']:8.3f} "
                  f"{h['objective/rlhf_reward']:8.3f} {h['response_length']:6.1f} {h['val/num_eos_tokens']:4.0f} "
                  f"{h['time/generation_s']:6.1f} {h['time/training_s']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
