"""Generation speed of evaluate's `generate`, old (a git revision) against new (the working tree).

    python scripts/measure_generate.py [--model DIR] [--prompts 64] [--batch-size 16] [--max-new-tokens 48]
                                       [--old-ref 84c0a9f] [--versions old,new] [--judge-out FILE]
                                       [--samples K --temperature 0.7 --top-p 0.9]

Prompts: a seeded sample of the packaged benign-but-edgy and helpfulness sets (half each: short and
long prompts, as evaluate mixes them), or of the sets `--sets` names. Each version runs once on the same prompts, greedy, fp32 on
CPU; tokens/s = generated tokens (each response re-tokenized, the same count for both versions) / wall
seconds. `--judge-out` also writes the new version's benign-but-edgy responses with the heuristic
refusal judge's verdicts (JSONL), to read what the judge calls off-topic.

`--samples K` times the preference stage's sampling instead: K samples per prompt at `--temperature` /
`--top-p`, from seed 0 for each version; an "old" revision from before `generate(samples=K)` gets each
prompt K times (what the stage did then), a later one and "new" get it once with samples=K.
`--versions old,new,old,new` alternates runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

from kubealign import generate, models
from kubealign.data.prompts import as_conversations, load_prompt_set

DEMO_MODEL = Path.home() / ".cache" / "kubealign" / "models" / "smollm2-135m-instruct"


def old_module(ref: str, path: str = "src/kubealign/generate.py") -> ModuleType:
    """The module at `path` as it was at git revision `ref`, imported from a temporary file."""
    text = subprocess.run(["git", "show", f"{ref}:{path}"], check=True, capture_output=True, text=True).stdout
    name = f"{Path(path).stem}_old"
    target = Path(tempfile.mkdtemp()) / f"{name}.py"
    target.write_text(text)
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def timed(fn, model, tokenizer, prompts, args, version: str) -> tuple[list[str], float]:  # noqa: ANN001
    torch.manual_seed(0)
    start = time.perf_counter()
    if args.samples == 1:
        out = fn(model, tokenizer, prompts, args.max_new_tokens, args.batch_size, torch.device("cpu"))
    else:
        sampling = {"do_sample": True, "temperature": args.temperature, "top_p": args.top_p}
        if version == "old" and "samples" not in inspect.signature(fn).parameters:
            out = fn(model, tokenizer, [p for p in prompts for _ in range(args.samples)], args.max_new_tokens,
                     args.batch_size, torch.device("cpu"), **sampling)
        else:
            out = fn(model, tokenizer, prompts, args.max_new_tokens, args.batch_size, torch.device("cpu"),
                     samples=args.samples, **sampling)
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEMO_MODEL))
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--old-ref", default="84c0a9f")
    ap.add_argument("--judge-out")
    ap.add_argument("--versions", default="old,new", help="which to run, comma-separated: old, new")
    ap.add_argument("--sets", default="benign_edgy,helpful",
                    help="packaged prompt sets the prompts are drawn from, evenly (e.g. harmful)")
    ap.add_argument("--samples", type=int, default=1, help="samples per prompt (the preference stage's K)")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.9)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = models.load_causal_lm(models.resolve_model_dir(args.model), torch.float32, torch.device("cpu"))
    tokenizer = models.load_tokenizer(models.resolve_model_dir(args.model))
    names = args.sets.split(",")
    rows: list = []
    half = 0  # --judge-out judges the first set's answers
    for i, name in enumerate(names):
        share = args.prompts // len(names) + (1 if i < args.prompts % len(names) else 0)
        rows += load_prompt_set(name, None, share, 0)
        half = half or len(rows)
    prompts = as_conversations(rows)
    results = {}
    wanted = args.versions.split(",")
    versions = {"old": lambda: old_module(args.old_ref).generate, "new": lambda: generate.generate}
    for name in wanted:
        fn = versions[name]()
        out, secs = timed(fn, model, tokenizer, prompts, args, name)
        tokens = sum(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in out)
        results[name] = {"seconds": round(secs, 1), "tokens": tokens, "tokens_per_s": round(tokens / secs, 1),
                         "responses": out}
        print(f"{name}: {len(prompts)} prompts, {len(out)} responses, {tokens} tokens in {secs:.1f} s = "
              f"{tokens / secs:.1f} tokens/s", flush=True)
    if {"old", "new"} <= results.keys():
        same = sum(a == b for a, b in zip(results["old"]["responses"], results["new"]["responses"], strict=True))
        print(f"identical responses old vs new: {same} of {len(results['new']['responses'])}")
    if args.judge_out and "new" in results:
        from kubealign.refusal import judge_refusals

        edgy = [(r["prompt"], out) for r, out in zip(rows[:half], results["new"]["responses"][:half], strict=True)]
        verdicts = judge_refusals([p for p, _ in edgy], [o for _, o in edgy])
        with open(args.judge_out, "w") as f:
            for (p, o), v in zip(edgy, verdicts, strict=True):
                f.write(json.dumps({"prompt": p, "response": o, "verdict": v.verdict, "reason": v.reason}) + "\n")
        counts = {k: sum(v.verdict == k for v in verdicts) for k in ("complied", "refused", "deflected", "off_topic")}
        print(f"heuristic verdicts on {len(edgy)} benign-but-edgy responses: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
