"""Where kubealign's and TRL's DPO first diverge: one batch, one model, one adapter, both losses and gradients.

    PYTHONPATH=src .venv-bench/bin/python bench/grad_check.py [--pairs 2] [--max-length 512]
        [--trl-checkpointing on|off] [--model DIR]

The bench's step-1 losses agree (both ln 2: a fresh adapter's B is zero, so policy = reference) while
step 2 does not; step 1's gradient decides step 2. This script builds one PEFT model (SmolLM2-135M-
Instruct fp32, LoRA r16 alpha 32 on all seven linear kinds, B set to small seeded values so policy and
reference differ and the loss is not ln 2), takes the first `--pairs` bench pairs, and
1. compares the token ids each side scores (prompt + response, and which positions count),
2. computes kubealign's DPO loss and gradient (padded path, reference on the fly, `stages.dpo.dpo_step`)
   and TRL's (`DPOTrainer.compute_loss` on the batch of its own train dataloader, its defaults), and
3. prints both losses, the gradient norms, and the cosine and relative difference of the gradients.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ROOT = Path(__file__).resolve().parent


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--trl-checkpointing", choices=["on", "off"], default="on")
    ap.add_argument("--model")
    a = ap.parse_args()

    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    from kubealign.config import DPOConfig
    from kubealign.data.collate import collate_preference
    from kubealign.scoring import tokenize_pairs
    from kubealign.stages.dpo import dpo_step

    if a.model is None:
        from kubealign.demo_model import prepare_demo_model

        a.model = str(prepare_demo_model())
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    with torch.no_grad():  # a non-zero B: policy != reference, so the gradient reaches A as well as B
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 1e-3)
    records = [json.loads(x) for x in (ROOT / "data" / "dpo_pairs.jsonl").read_text().splitlines()[: a.pairs]]

    # kubealign: its tokenisation, the padded collate, the DPO step with the reference on the fly
    cfg = DPOConfig.model_validate({"beta": 0.1, "loss_type": "sigmoid", "max_length": a.max_length,
                                    "batch_size": a.pairs, "padding_free": False,
                                    "reference_logps": "on_the_fly", "tracking": {"mode": "disabled"}})
    pairs = tokenize_pairs(tok, records, a.max_length)
    batch = collate_preference(pairs, pad_id=tok.pad_token_id, padding_free=False)
    model.train()
    loss_k, metrics_k, _ = dpo_step(model, batch, cfg)
    loss_k.backward()
    g_k = grads(model)

    # TRL: its own dataset preparation, collator and loss
    args = TRLConfig(output_dir="/tmp/grad-check", per_device_train_batch_size=a.pairs, max_length=a.max_length,
                     beta=0.1, loss_type=["sigmoid"], use_cpu=True, report_to=[], save_strategy="no",
                     train_sampling_strategy="sequential", dataloader_num_workers=0, disable_tqdm=True,
                     gradient_checkpointing=a.trl_checkpointing == "on")
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tok)
    trl_batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    loss_t = trainer.compute_loss(model, trl_batch)
    loss_t.backward()
    g_t = grads(model)

    # 1. the tokens each side scores
    ids, mask = trl_batch["input_ids"], trl_batch["completion_mask"]
    print("row | kubealign tokens (prompt + response) | TRL tokens | same ids | kubealign scored | TRL scored")
    for i, p in enumerate(pairs):
        for side, key in ((0, "chosen"), (1, "rejected")):
            row = side * len(pairs) + i
            kub_ids = list(p["prompt_ids"]) + list(p[f"{key}_ids"])
            trl_ids = ids[row][trl_batch["attention_mask"][row].bool()].tolist()
            print(f"{i}.{key} | {len(kub_ids)} | {len(trl_ids)} | {kub_ids == trl_ids} | {len(p[f'{key}_ids'])} | "
                  f"{int(mask[row].sum())}")
            if kub_ids != trl_ids:
                pairs_of = enumerate(zip(kub_ids, trl_ids, strict=False))
                at = next((j for j, (x, y) in pairs_of if x != y), min(len(kub_ids), len(trl_ids)))
                print(f"   first difference at {at}: kubealign {tok.decode(kub_ids[at:at + 6])!r} "
                      f"TRL {tok.decode(trl_ids[at:at + 6])!r}")
    # 2. losses and gradients
    print(f"loss: kubealign {loss_k.item():.8f}  TRL {loss_t.item():.8f}  diff {abs(loss_k.item() - loss_t.item()):.2e}")
    print(f"kubealign metrics: {json.dumps({k: round(v, 5) for k, v in metrics_k.items()})}")
    names = sorted(set(g_k) | set(g_t))
    only = [n for n in names if (n in g_k) != (n in g_t)]
    common = [n for n in names if n in g_k and n in g_t]
    flat_k = torch.cat([g_k[n].flatten() for n in common])
    flat_t = torch.cat([g_t[n].flatten() for n in common])
    cos = torch.nn.functional.cosine_similarity(flat_k, flat_t, dim=0).item()
    rel = ((flat_k - flat_t).norm() / flat_t.norm().clamp_min(1e-30)).item()
    print(f"gradient: {len(common)} tensors on both sides, {len(only)} on one side only {only[:4]}")
    print(f"grad norm: kubealign {flat_k.norm().item():.6e}  TRL {flat_t.norm().item():.6e}  ratio "
          f"{(flat_k.norm() / flat_t.norm()).item():.6f}; cosine {cos:.8f}; relative difference {rel:.2e}")
    worst = sorted(common, key=lambda n: -((g_k[n] - g_t[n]).norm() / g_t[n].norm().clamp_min(1e-30)).item())[:3]
    for n in worst:
        print(f"  {n}: |k| {g_k[n].norm().item():.3e} |t| {g_t[n].norm().item():.3e} "
              f"rel diff {((g_k[n] - g_t[n]).norm() / g_t[n].norm().clamp_min(1e-30)).item():.2e}")


if __name__ == "__main__":
    main()
