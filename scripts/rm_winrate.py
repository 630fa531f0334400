"""Win rate of an evaluation's aligned answers over its SFT answers, judged by a reward model of your choice.

    python scripts/rm_winrate.py <run>/round-eval/round-1/samples.json --reward-model <rm dir>

An evaluation's `samples.json` keeps every greedy answer of the SFT and aligned models. This scores the
answers to the win-rate prompts (`held_out` + `rm_extra`, as evaluate does) with the given reward model,
through evaluate's own `reward_model_metrics` (ties count 1/2, 95% bootstrap interval). Use: judge a DPO
policy, whose built-in win rate is its own implicit reward, with a reward model trained elsewhere on the
same constitution's pairs (e.g. the `make run-rlaif-ppo` run's `reward-model/model`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("samples", type=Path)
    ap.add_argument("--reward-model", required=True)
    a = ap.parse_args()

    import torch

    from kubealign.config import EvalConfig
    from kubealign.stages.evaluate import reward_model_metrics

    saved = json.loads(a.samples.read_text())
    prompts = {k: saved["prompts"][k] for k in ("held_out", "rm_extra")}
    responses = {name: {k: saved["responses"][name][k] for k in prompts} for name in ("sft", "aligned")}
    cfg = EvalConfig.model_validate({"tracking": {"mode": "disabled"}})
    m = reward_model_metrics(a.reward_model, prompts, responses, cfg, torch.float32, torch.device("cpu"))
    print(f"{a.samples}: {m['winrate/prompts']:.0f} prompts; win rate by {a.reward_model}: "
          f"{m['winrate/reward_model']:.3f} [{m['winrate/reward_model/low']:.3f}, {m['winrate/reward_model/high']:.3f}]"
          f" (ties {m['winrate/ties']:.3f}; mean score SFT {m['rm_score/sft']:.3f}, aligned {m['rm_score/aligned']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
