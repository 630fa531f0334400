"""Scoring time, old (a git revision's `kubealign.scoring`) against new (the working tree), side by side.

    python scripts/measure_scoring.py RUN_DIR [--old-ref 36add72] [--max-steps 50] [--batch-size 4]

RUN_DIR is a `make run-dpo` output (out/demo-dpo/<run>). Times, in one process, on the same models and inputs:
- evaluate's implicit-reward scoring of both models' stored greedy answers to the win-rate prompts
  (`evaluate/results/samples.json`; the SFT model and the aligned model each score every answer pair);
- DPO's reference pass before training: the old one over every train pair in file order, the new one over
  the pairs that `--max-steps` steps of `--batch-size` draw (`loop.visited`), batched by length.
Prints seconds and the largest difference between the old and new scores of the same pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from measure_generate import old_module  # scripts/ is sys.path[0] when run as a script

from kubealign import loop, models
from kubealign.config import DPOConfig
from kubealign.data.io import read_jsonl
from kubealign.scoring import pair_logprobs, tokenize_pairs
from kubealign.stages.evaluate import answer_pairs, win_rate_items


def timed(fn, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--old-ref", default="36add72")
    ap.add_argument("--max-steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--eval-batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()
    run, cpu = Path(args.run_dir), torch.device("cpu")
    old = old_module(args.old_ref, "src/kubealign/scoring.py")
    tok = models.load_tokenizer(run / "merge-lora" / "merged")
    sft = models.load_causal_lm(run / "merge-lora" / "merged", torch.float32, cpu)
    aligned = models.load_causal_lm(run / "merge-lora-2" / "merged", torch.float32, cpu)
    pad = tok.pad_token_id

    samples = json.loads((run / "evaluate" / "results" / "samples.json").read_text())
    prompts = win_rate_items(samples["prompts"])
    answers = {m: win_rate_items(samples["responses"][m]) for m in ("sft", "aligned")}
    records = answer_pairs(prompts, answers["aligned"], answers["sft"])
    pairs = tokenize_pairs(tok, records, args.max_length)
    results = {}
    for name, fn in (("old", old.pair_logprobs), ("new", pair_logprobs)):
        scores, secs = timed(lambda f=fn: [f(m, pairs, pad, args.eval_batch_size, cpu) for m in (aligned, sft)])
        results[name] = torch.cat([torch.cat(s) for s in scores])
        print(f"implicit reward, {name}: {len(pairs)} answer pairs x 2 models in {secs:.1f} s", flush=True)
    print(f"  largest |old - new| summed log-prob: {(results['old'] - results['new']).abs().max():.2e}")

    train = tokenize_pairs(tok, read_jsonl(str(run / "data-prep-2" / "splits" / "train.jsonl")), args.max_length)
    cfg = DPOConfig(max_steps=args.max_steps, batch_size=args.batch_size, seed=0)
    drawn = loop.visited(cfg, len(train))
    ref_old, secs_old = timed(old.pair_logprobs, sft, train, pad, args.batch_size, cpu, True, args.max_length)
    print(f"DPO reference pass, old: all {len(train)} train pairs in {secs_old:.1f} s", flush=True)
    ref_new, secs_new = timed(pair_logprobs, sft, [train[i] for i in drawn], pad, args.batch_size, cpu, True,
                              args.max_length)
    print(f"DPO reference pass, new: the {len(drawn)} pairs {args.max_steps} steps draw in {secs_new:.1f} s", flush=True)
    diff = max((ref_old[k][drawn] - ref_new[k]).abs().max().item() for k in (0, 1))
    print(f"  largest |old - new| reference log-prob on the drawn pairs: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
