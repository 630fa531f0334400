"""GPU check for issue 11: DPO training steps in bf16 on a GPU, padded vs padding-free.

    .venv/bin/python scripts/gpu_check.py [--steps 6] [--peak-tflops 989]

Two models: SmolLM2-135M-Instruct (the demo model, `kubealign prepare-demo`; random weights of the same
shape when it is not cached) on the shipped bench pairs, and a 7B-shaped Llama (4096 wide, 32 layers,
vocab 32000) with random weights, for memory, on random tokens with lengths like safety data (short
chosen, long rejected). Each runs kubealign's DPO step (policy = LoRA r16 on all seven linear kinds,
reference log-probs precomputed, as the stage's defaults) with `padding_free` off and on (under SDPA also
packed with each prompt once, the stage's default there), and with SDPA and, where the package is
installed, flash-attention 2 (packed into one row: its varlen kernels).
Prints real tokens/s, peak GPU memory and MFU = 6 * params * tokens/s / peak bf16 FLOP/s (the usual
training estimate; attention FLOPs left out, so MFU is a lower bound).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch

from kubealign import lm, models
from kubealign.config import LoraSettings
from kubealign.data.collate import collate_preference
from kubealign.losses import dpo_loss
from kubealign.scoring import batch_pair_logprobs, tokenize_pairs

ROOT = Path(__file__).resolve().parent.parent


def _smollm(attn: str) -> tuple[torch.nn.Module, list[dict]]:
    from transformers import AutoModelForCausalLM

    from kubealign.demo_model import DEMO_DIR

    tok = models.load_tokenizer(DEMO_DIR)
    model = AutoModelForCausalLM.from_pretrained(DEMO_DIR, dtype=torch.bfloat16, attn_implementation=attn)
    records = [json.loads(line) for line in (ROOT / "bench" / "data" / "dpo_pairs.jsonl").read_text().splitlines()]
    return model, tokenize_pairs(tok, records, 512)


def _seven_b(attn: str, n_pairs: int) -> tuple[torch.nn.Module, list[dict]]:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(cfg, dtype=torch.bfloat16, attn_implementation=attn)
    g = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(3, 32000, (n,), generator=g).tolist()

    return model, [{"prompt_ids": ids(128), "chosen_ids": ids(96), "rejected_ids": ids(1800)} for _ in range(n_pairs)]


def bench(model: torch.nn.Module, pairs: list[dict], batch_size: int, padding_free: bool, capacity: int | None,
          steps: int, peak_tflops: float, checkpointing: bool, share_prompt: bool = False) -> dict[str, float]:
    model = models.add_lora(model.cuda(), LoraSettings(r=16, alpha=32))
    if checkpointing:
        lm.enable_gradient_checkpointing(model)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    n_params = sum(p.numel() for p in model.parameters())
    torch.cuda.reset_peak_memory_stats()
    tokens, elapsed, done = 0, 0.0, 0
    for step in range(steps + 1):  # step 0 warms up kernels and the allocator, not timed
        chunk = pairs[(step * batch_size) % len(pairs):][:batch_size]
        batch = {k: v.cuda() for k, v in collate_preference(chunk, 0, padding_free, capacity, share_prompt).items()}
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad(), model.disable_adapter():  # what the precomputing pass does once per pair
            ref_c, ref_r = batch_pair_logprobs(model, batch)
        pol_c, pol_r = batch_pair_logprobs(model, batch)
        loss = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.1)[0].mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step:
            elapsed += time.perf_counter() - t0
            tokens += lm.real_tokens(batch)  # with the prompt shared, each prompt counts once
            done += len(chunk)
    tps = tokens / elapsed
    return {"tokens_per_s": tps, "pairs_per_s": done / elapsed, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            # 6N per trained token (forward + backward) + 2N for the reference forward
            "mfu": 8 * n_params * tps / (peak_tflops * 1e12)}  # recomputation under checkpointing not counted


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 SXM: 989)")
    a = p.parse_args()
    assert torch.cuda.is_available(), "no GPU visible"
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}; peak {a.peak_tflops} TFLOP/s bf16")
    attns = ["sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])
    print(f"{'model':<10}{'attn':<20}{'layout':<14}{'pairs/s':>9}{'tokens/s':>12}{'peak GiB':>10}{'MFU':>8}")
    # the 7B shape trains with activation checkpointing (the `gradient_checkpointing` setting)
    for name, build, batch_size, ckpt in (("135M", _smollm, 16, False), ("7B-shape", lambda at: _seven_b(at, 8), 4, True)):
        for attn in attns:
            # the DPO stage's layouts: padded, packed, and packed with each prompt once (its default under SDPA)
            layouts = [("padded", False, False), ("padding-free", True, False)]
            layouts += [("prompt once", True, True)] if attn == "sdpa" else []
            for layout, padding_free, share in layouts:
                # SDPA gets rows of at most one sequence's length (block-diagonal mask cost); flash one row
                capacity = None if attn == "flash_attention_2" else 2048
                model, pairs = build(attn)
                try:
                    r = bench(model, pairs, batch_size, padding_free, capacity, a.steps, a.peak_tflops, ckpt, share)
                    print(f"{name:<10}{attn:<20}{layout:<14}{r['pairs_per_s']:>9.2f}{r['tokens_per_s']:>12.0f}"
                          f"{r['peak_gib']:>10.1f}{r['mfu']:>8.1%}", flush=True)
                except torch.OutOfMemoryError:
                    print(f"{name:<10}{attn:<20}{layout:<14} out of memory")
                del model
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
