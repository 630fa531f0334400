"""Where kubealign's and TRL's DPO first diverge: one model, one fresh adapter, two steps, both sides.

    PYTHONPATH=src .venv-bench/bin/python bench/grad_check.py [--pairs 2] [--max-length 512]
        [--trl-checkpointing on|off] [--model DIR]

The bench's step-1 losses agree (both ln 2: a fresh adapter's B is zero, so policy = reference) while
step 2 does not. This script builds one PEFT model (SmolLM2-135M-Instruct fp32, LoRA r16 alpha 32 on all
seven linear kinds, fresh adapter, seed 0) and takes the first 2 x `--pairs` bench pairs in kubealign's
data order for seed 0 (TRL gets them in that order with a sequential sampler, as in the bench):
1. the token ids each side scores (prompt + response, and how many positions count), per row;
2. step 1 on batch 1: kubealign's DPO loss and gradient (padded path, reference on the fly,
   `stages.dpo.dpo_step`) and TRL's (`DPOTrainer.compute_loss` on the first batch of its own train
   dataloader, its defaults): losses, gradient norms, cosine, relative difference;
3. one AdamW step (lr 1e-4, betas 0.9 / 0.999, eps 1e-8, clip 1.0: the bench's settings) with
   kubealign's gradient, then step 2's loss on batch 2 from both sides on the very same weights.
If step 2's losses agree here but not in the bench, the difference is in the trainers' optimizer or
schedule, not in the loss.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from side import TARGETS, _order  # bench/side.py: the bench's LoRA targets and kubealign's data order

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
    ap.add_argument("--trainer-step", action="store_true", help="also run TRL's trainer for one optimizer step")
    ap.add_argument("--trl-bf16", choices=["on", "off"], default="on",
                    help="bf16 of TRL's trainer in --trainer-step: TRL 1.16's DPOConfig defaults to bf16=True (mixed "
                    "precision through accelerate's autocast, on a CPU too); off = fp32, as kubealign runs here")
    a = ap.parse_args()

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    lines = (ROOT / "data" / "dpo_pairs.jsonl").read_text().splitlines()[: 2 * a.pairs]
    records = [json.loads(lines[i]) for i in _order(2 * a.pairs, a.pairs)]
    # kubealign: its tokenisation, the padded collate, the DPO step with the reference on the fly
    cfg = DPOConfig.model_validate({"beta": 0.1, "loss_type": "sigmoid", "max_length": a.max_length,
                                    "batch_size": a.pairs, "padding_free": False,
                                    "reference_logps": "on_the_fly", "tracking": {"mode": "disabled"}})
    pairs = tokenize_pairs(tok, records, a.max_length)
    batches = [collate_preference(pairs[k: k + a.pairs], pad_id=tok.pad_token_id, padding_free=False)
               for k in (0, a.pairs)]
    fresh = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.train()
    loss_k, metrics_k, _ = dpo_step(model, batches[0], cfg)
    loss_k.backward()
    g_k = grads(model)

    # TRL: its own dataset preparation, collator and loss
    trainer = trl_trainer(a, model, tok, records, "/tmp/grad-check")
    trl_batches = list(trainer.get_train_dataloader())
    trl_batch = trl_batches[0]
    model.train()
    loss_t = trainer.compute_loss(model, trl_batch)
    loss_t.backward()
    g_t = grads(model)

    # 1. the tokens each side scores
    ids, mask = trl_batch["input_ids"], trl_batch["completion_mask"]
    print("row | kubealign tokens (prompt + response) | TRL tokens | same ids | kubealign scored | TRL scored")
    for i, p in enumerate(pairs[: a.pairs]):
        for side, key in ((0, "chosen"), (1, "rejected")):
            row = side * a.pairs + i
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

    # 3. one AdamW step with kubealign's step-1 gradient, then step 2 on batch 2 from both sides
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    named = dict(model.named_parameters())
    for n, g in g_k.items():
        named[n].grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0).step()
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        model.train()
        step2_k, metrics2_k, _ = dpo_step(model, batches[1], cfg)
        step2_t = trainer.compute_loss(model, trl_batches[1])
    print(f"step 2 loss after the same update: kubealign {step2_k.item():.8f}  TRL {step2_t.item():.8f}  "
          f"diff {abs(step2_k.item() - step2_t.item()):.2e}")
    print(f"kubealign step-2 metrics: {json.dumps({k: round(v, 5) for k, v in metrics2_k.items()})}")
    if a.trainer_step:
        trainer_step(a, model, fresh, tok, records, batches[1], cfg, step2_k.item())


def trl_trainer(a: argparse.Namespace, model: torch.nn.Module, tok: object, records: list[dict], out: str,
                **extra: object) -> object:
    """TRL's DPOTrainer on `records` in order (sequential sampler), batch `--pairs`, beta 0.1 sigmoid, CPU."""
    from datasets import Dataset
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    args = TRLConfig(output_dir=out, per_device_train_batch_size=a.pairs, max_length=a.max_length, beta=0.1,
                     loss_type=["sigmoid"], use_cpu=True, report_to=[], save_strategy="no",
                     train_sampling_strategy="sequential", dataloader_num_workers=0, disable_tqdm=True,
                     gradient_checkpointing=a.trl_checkpointing == "on", **extra)
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tok)


class OneStepDone(Exception):
    """Raised after the TRL trainer's first optimizer step."""


def trainer_step(a: argparse.Namespace, model: torch.nn.Module, fresh: dict[str, torch.Tensor], tok: object,
                 records: list[dict], batch2: dict[str, torch.Tensor], cfg: object, manual_loss: float) -> None:
    """4. TRL's own trainer for one optimizer step from the same fresh adapter; then its weights' step-2 loss
    (kubealign's dpo_step on batch 2) against the manual AdamW step's, and the update's difference."""

    from kubealign.stages.dpo import dpo_step

    named = dict(model.named_parameters())
    manual = {n: named[n].detach().clone() for n in fresh}
    with torch.no_grad():
        for n, p in fresh.items():
            named[n].copy_(p)
    if "ref" in model.peft_config:  # the first trainer's copy of the adapter; the new trainer makes its own
        model.delete_adapter("ref")
    lrs: list[float] = []
    trainer = trl_trainer(a, model, tok, records, "/tmp/grad-check-train", learning_rate=1e-4,
                          lr_scheduler_type="cosine", warmup_steps=0, num_train_epochs=1, max_grad_norm=1.0,
                          weight_decay=0.0, optim="adamw_torch", logging_steps=1, seed=0, bf16=a.trl_bf16 == "on")
    trainer.create_optimizer_and_scheduler(num_training_steps=len(records) // a.pairs)
    opt = trainer.optimizer
    print(f"TRL trainer: optimizer {type(opt).__name__} {json.dumps({k: v for k, v in opt.defaults.items() if isinstance(v, (int, float, bool, tuple))}, default=str)}; "
          f"scheduler lr at step 0 {trainer.lr_scheduler.get_last_lr()[0]:.3e}")
    orig_step = opt.step

    def step_once(*args_: object, **kw: object) -> object:
        lrs.append(opt.param_groups[0]["lr"])
        out = orig_step(*args_, **kw)
        raise OneStepDone(out)  # one optimizer step, then stop

    opt.step = step_once
    try:
        trainer.train()
    except OneStepDone:
        pass
    model.zero_grad(set_to_none=True)
    delta_m = torch.cat([(manual[n] - fresh[n]).flatten() for n in fresh])
    delta_t = torch.cat([(named[n].detach() - fresh[n]).flatten() for n in fresh])
    cos = torch.nn.functional.cosine_similarity(delta_m, delta_t, dim=0).item()
    print(f"trainer step 1: lr used {lrs}; update norm manual {delta_m.norm().item():.6e} TRL trainer "
          f"{delta_t.norm().item():.6e} (ratio {(delta_t.norm() / delta_m.norm()).item():.6f}); cosine {cos:.6f}")
    with torch.no_grad():
        model.train()
        loss2, _, _ = dpo_step(model, batch2, cfg)
    print(f"step 2 loss on batch 2: after the manual step {manual_loss:.8f}; after TRL's trainer step {loss2.item():.8f}")
    ref_moved = max(((p.detach() - fresh[n.replace(".ref.", ".default.")]).abs().max().item()
                     for n, p in model.named_parameters() if ".ref." in n), default=float("nan"))
    trainable_ref = sum(p.requires_grad for n, p in model.named_parameters() if ".ref." in n)
    print(f"TRL's 'ref' adapter after the step: largest change from the initial adapter {ref_moved:.3e}; "
          f"{trainable_ref} of its tensors require grad; active adapter(s) {model.active_adapters}")
    # TRL's own loss on batch 2 as its training loop computes it (train mode, gradients on, its checkpointing)
    trl_batch2 = list(trainer.get_train_dataloader())[1]
    print(f"batch 2 rows, kubealign (tokens): {batch2['attention_mask'].sum(-1).tolist()}; TRL after train(): "
          f"{trl_batch2['attention_mask'].sum(-1).tolist()} (completion {trl_batch2['completion_mask'].sum(-1).tolist()})")
    model.train()
    loss2_t = trainer.compute_loss(model, trl_batch2)
    print(f"TRL's compute_loss on batch 2 in its training state (gradient checkpointing "
          f"{getattr(model, 'is_gradient_checkpointing', '?')}): {loss2_t.item():.8f}")
    got = {k: round(sum(v) / len(v), 5) for k, v in trainer._metrics["train"].items() if v}
    print(f"TRL's metrics of that call: {json.dumps(got)}")
    trainer._metrics["train"].clear()
    model.gradient_checkpointing_disable()
    loss2_nockpt = trainer.compute_loss(model, trl_batch2)
    got = {k: round(sum(v) / len(v), 5) for k, v in trainer._metrics["train"].items() if v}
    print(f"the same with gradient checkpointing switched off: {loss2_nockpt.item():.8f} {json.dumps(got)}")


if __name__ == "__main__":
    main()
