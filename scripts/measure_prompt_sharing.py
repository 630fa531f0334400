"""Reading each prompt once, measured on a stored `make run` (RLAIF demo) run folder, old way against new.

    python scripts/measure_prompt_sharing.py score <run>   # evaluate's win-rate pairs: pair_logprobs vs
                                                           # cached_pair_logprobs, SFT model, batch 16
    python scripts/measure_prompt_sharing.py dpo <run>     # the DPO stage on the run's pairs, demo settings
                                                           # (30 steps of 4, LoRA r16, no checkpointing),
                                                           # packed pairs with the prompt once vs twice

Each side runs once in this process, one after the other, fp32 on CPU; prints seconds and the figures
that must agree (summed log-probs; DPO's final train loss).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from kubealign import lm, models, scoring
from kubealign.stages.evaluate import answer_pairs, win_rate_items


def score(run: Path) -> None:
    model_dir = models.resolve_model_dir(str(run / "merge-lora" / "merged"))
    tokenizer = models.load_tokenizer(model_dir)
    model = models.load_causal_lm(model_dir, torch.float32, torch.device("cpu"))
    samples = json.loads((run / "evaluate" / "results" / "samples.json").read_text())
    prompts = win_rate_items(samples["prompts"])
    answers = {m: win_rate_items(samples["responses"][m]) for m in ("aligned", "sft")}
    records = answer_pairs(prompts, answers["aligned"], answers["sft"])
    pairs = scoring.tokenize_pairs(tokenizer, records, 256)
    got = {}
    for name, fn in (("pair_logprobs", scoring.pair_logprobs), ("cached_pair_logprobs", scoring.cached_pair_logprobs)):
        start = time.perf_counter()
        got[name] = torch.cat(fn(model, pairs, tokenizer.pad_token_id, 16, torch.device("cpu")))
        print(f"{name}: {len(pairs)} pairs in {time.perf_counter() - start:.1f} s", flush=True)
    diff = (got["pair_logprobs"] - got["cached_pair_logprobs"]).abs().max().item()
    print(f"max |difference| of summed log-probs: {diff:.2e} (mean |log-prob| {got['pair_logprobs'].abs().mean():.1f})")


def dpo(run: Path) -> None:
    from kubealign.config import DPOConfig, LoraSettings, TrackingConfig
    from kubealign.stages import dpo as stage

    cfg = DPOConfig(learning_rate=1e-4, beta=0.1, max_steps=30, batch_size=4, max_length=256, seed=0,
                    gradient_checkpointing=False, lora=LoraSettings(r=16, alpha=32),
                    tracking=TrackingConfig(mode="disabled"))
    shared = lm.supports_shared_prompt
    for name, share in (("prompt twice", False), ("prompt once", True)):
        lm.supports_shared_prompt = shared if share else (lambda model: False)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = stage.run(cfg, str(run / "merge-lora" / "merged"), str(run / "preferences" / "pairs" / "train.jsonl"),
                                out, str(run / "preferences" / "pairs" / "eval.jsonl"))
            print(f"dpo, {name}: {time.perf_counter() - start:.1f} s, train/loss {summary['train/loss']:.7f}",
                  flush=True)
    lm.supports_shared_prompt = shared


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("score", "dpo"):
        print(__doc__, file=sys.stderr)
        return 2
    {"score": score, "dpo": dpo}[sys.argv[1]](Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
