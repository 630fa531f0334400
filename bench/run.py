"""kubealign vs TRL, side by side: DPO (DPOTrainer) and SFT (SFTTrainer, packing off on both).

    make bench                      # or: .venv-bench/bin/python bench/run.py [--pairs 16] ...

Each side runs in its own subprocess, one after the other, on the same model, records, order,
initial LoRA weights and hyper-parameters (bench/side.py). Prints pairs/s (examples/s for SFT),
real (non-padding) tokens/s, peak RSS and the per-step losses of every side, plus the load average
(the machine may be shared: compare the ratio from one run, not absolute figures across runs).
kubealign runs three times: with its defaults (padding_free on, reference log-probs precomputed,
gradient checkpointing on, as TRL's is by default), with checkpointing off (faster, more memory), and
with padding_free off, the layout TRL uses by default, for the loss comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (implementation, kubealign's padding_free, kubealign's gradient_checkpointing)
SIDES = {algo: [("kubealign", "on", "default"), ("kubealign", "on", "off"), ("kubealign", "off", "default"),
                ("trl", "off", "default")] for algo in ("dpo", "sft")}


def real_tokens(algo: str, model: str, data: str, n: int, max_length: int) -> int:
    """Non-padding tokens one epoch feeds the model (prompt + chosen and prompt + rejected for DPO)."""
    from kubealign import models
    from kubealign.data.chat import tokenize_sft
    from kubealign.scoring import tokenize_pairs

    tok = models.load_tokenizer(model)
    records = [json.loads(line) for line in Path(data).read_text().splitlines()[:n]]
    if algo == "dpo":
        return sum(2 * len(e["prompt_ids"]) + len(e["chosen_ids"]) + len(e["rejected_ids"])
                   for e in tokenize_pairs(tok, records, max_length))
    return sum(len(tokenize_sft(tok, r["messages"], max_length=max_length)["input_ids"]) for r in records)


def side_name(impl: str, padding_free: str, checkpointing: str) -> str:
    if impl == "trl":
        return "TRL"
    return f"kubealign padding_free={padding_free}" + (", no checkpointing" if checkpointing == "off" else "")


def run_side(algo: str, impl: str, padding_free: str, checkpointing: str, a: argparse.Namespace, init: Path,
             tmp: Path) -> dict:
    out = tmp / f"{algo}-{impl}-{padding_free}-{checkpointing}.json"
    cmd = [sys.executable, str(ROOT / "bench" / "side.py"), algo, impl, str(out), "--model", a.model,
           "--data", str(ROOT / "bench" / "data" / ("dpo_pairs.jsonl" if algo == "dpo" else "sft.jsonl")),
           "--pairs", str(a.pairs), "--batch-size", str(a.batch_size), "--max-length", str(a.max_length),
           "--lr", str(a.lr), "--padding-free", padding_free, "--init-lora", str(init),
           "--trl-checkpointing", a.trl_checkpointing, "--trl-bf16", a.trl_bf16, "--checkpointing", checkpointing]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false"}
    print(f"--- {algo} {side_name(impl, padding_free, checkpointing)}", flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=sys.stderr)
    return json.loads(out.read_text())


def report(algo: str, results: dict[str, dict], n: int, tokens: int) -> None:
    unit = "pairs/s" if algo == "dpo" else "examples/s"
    trl = results["TRL"]
    print(f"\n{algo.upper()}: {n} {'pairs' if algo == 'dpo' else 'examples'}, {tokens} real tokens per epoch")
    print(f"{'side':<42}{unit:>12}{'tokens/s':>10}{'peak RSS MiB':>14}{'vs TRL':>8}{'mem/TRL':>9}{'max |dloss|':>13}")
    for name, r in results.items():
        d = max((abs(x - y) for x, y in zip(r["losses"], trl["losses"], strict=True)), default=float("nan"))
        print(f"{name:<42}{n / r['wall_s']:>12.3f}{tokens / r['wall_s']:>10.1f}{r['peak_rss_mib']:>14.0f}"
              f"{trl['wall_s'] / r['wall_s']:>7.2f}x{r['peak_rss_mib'] / trl['peak_rss_mib']:>9.2f}{d:>13.2e}")
    print("per-step losses | gradient norms (before clipping):")
    print("step " + "".join(f"{name:>42}" for name in results) + " |" + "".join(f"{name:>42}" for name in results))
    for i in range(len(trl["losses"])):
        print(f"{i + 1:<5}" + "".join(f"{r['losses'][i]:>42.8f}" for r in results.values()) + " |"
              + "".join(f"{r['grad_norms'][i]:>42.6f}" for r in results.values()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the demo model, `kubealign prepare-demo`)")
    p.add_argument("--pairs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--only", choices=["dpo", "sft"], default=None)
    p.add_argument("--no-padded", action="store_true", help="skip kubealign's padding_free=off side (saves time)")
    p.add_argument("--trl-bf16", choices=["on", "off"], default="off",
                   help="TRL's bf16 (TRL 1.16 defaults to on: bf16 autocast, ~100x slower than fp32 on a CPU without "
                   "bf16 units, and other losses); off = fp32 on both sides")
    p.add_argument("--trl-checkpointing", choices=["on", "off"], default="on",
                   help="TRL's gradient_checkpointing (on is TRL's default; off for the per-step loss comparison)")
    a = p.parse_args()
    if a.model is None:
        from kubealign.demo_model import prepare_demo_model

        a.model = str(prepare_demo_model())
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for algo in [a.only] if a.only else ["dpo", "sft"]:
            init = Path(tmp) / f"init-lora-{algo}.safetensors"
            results = {side_name(impl, pf, ck): run_side(algo, impl, pf, ck, a, init, Path(tmp))
                       for impl, pf, ck in SIDES[algo] if not (a.no_padded and impl == "kubealign" and pf == "off")}
            data = str(ROOT / "bench" / "data" / ("dpo_pairs.jsonl" if algo == "dpo" else "sft.jsonl"))
            report(algo, results, a.pairs, real_tokens(algo, a.model, data, a.pairs, a.max_length))
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
