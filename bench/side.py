"""One side of the bench, in its own process (so ru_maxrss is that side's peak RSS alone).

    python bench/side.py {dpo,sft} {kubealign,trl} RESULT.json --model DIR --data JSONL --pairs N
        [--batch-size 4] [--max-length 512] [--lr 1e-4] [--padding-free on|off] [--init-lora FILE]

Both sides: the same model (fp32), the same first N records in the same order (kubealign's data order
for seed 0: TRL gets the records pre-permuted and a sequential sampler), LoRA r16 alpha 32 on all seven
linear kinds, the same initial adapter (kubealign writes it to --init-lora on first use; later sides load
it), AdamW (0.9, 0.999, eps 1e-8, no weight decay), cosine schedule without warm-up, clip 1.0, one epoch,
DPO beta 0.1 sigmoid. Wall time runs from before the model is loaded to the end of training.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _records(path: str, n: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()[:n]]


def _order(n: int, batch_size: int) -> list[int]:
    from kubealign.loop import DataOrder

    order = DataOrder(n, batch_size, seed=0)
    return [i for m in range(order.per_epoch) for i in order.indices(m)]


def _sync_init(model: torch.nn.Module, path: Path) -> None:
    """Save the fresh adapter to `path`, or load the one saved there: every side starts from the same."""
    from safetensors.torch import load_file, save_file

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if path.exists():
        saved = load_file(path)
        assert set(saved) == set(params), "initial adapters differ in layout"
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[n])
    else:
        save_file({n: p.detach().contiguous() for n, p in params.items()}, path)


def kubealign_side(a: argparse.Namespace, tmp: Path) -> tuple[list[float], list[float]]:
    from kubealign import models
    from kubealign.config import DPOConfig, SFTConfig
    from kubealign.stages import dpo, sft

    add_lora = models.add_lora

    def add_synced_lora(model: torch.nn.Module, lora: Any) -> torch.nn.Module:
        model = add_lora(model, lora)
        _sync_init(model, Path(a.init_lora))
        return model

    models.add_lora = add_synced_lora  # the stage calls models.add_lora: same adapter as the TRL side
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records(a.data, a.pairs)))
    common = {"learning_rate": a.lr, "batch_size": a.batch_size, "warmup_ratio": 0.0, "max_length": a.max_length,
              "epochs": 1, "seed": 0, "tracking": {"mode": "disabled"}, "lora": {"r": 16, "alpha": 32}}
    if "padding_free" in DPOConfig.model_fields:  # absent before issue 11: lets the bench time older code too
        common["padding_free"] = a.padding_free == "on"
    if a.checkpointing != "default":
        common["gradient_checkpointing"] = a.checkpointing == "on"
    if a.algo == "dpo":
        dpo.run(DPOConfig.model_validate({**common, "beta": 0.1, "loss_type": "sigmoid"}), a.model, str(data),
                str(tmp / "out"))
    else:
        sft.run(SFTConfig.model_validate(common), a.model, str(data), str(tmp / "out"))
    history = json.loads((tmp / "out" / "summary.json").read_text())["history"]
    return [h["loss"] for h in history], [h["grad_norm"] for h in history]


def trl_side(a: argparse.Namespace, tmp: Path) -> tuple[list[float], list[float]]:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    _sync_init(model, Path(a.init_lora))
    records = _records(a.data, a.pairs)
    records = [records[i] for i in _order(len(records), a.batch_size)]
    common = {"output_dir": str(tmp / "out"), "per_device_train_batch_size": a.batch_size,
              "gradient_accumulation_steps": 1, "learning_rate": a.lr, "lr_scheduler_type": "cosine",
              "warmup_steps": 0, "num_train_epochs": 1, "max_grad_norm": 1.0, "weight_decay": 0.0,
              "optim": "adamw_torch", "logging_steps": 1, "save_strategy": "no", "report_to": [], "seed": 0,
              "train_sampling_strategy": "sequential", "use_cpu": True, "dataloader_num_workers": 0,
              "max_length": a.max_length, "disable_tqdm": True,
              "gradient_checkpointing": a.trl_checkpointing == "on",
              # TRL 1.16's configs default to bf16=True (mixed precision through accelerate's autocast, also on a
              # CPU): the bench compares fp32 with fp32 unless --trl-bf16 on (bench/grad_check.py found it)
              "bf16": a.trl_bf16 == "on"}
    if a.algo == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, beta=0.1, loss_type=["sigmoid"])
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tok)
    else:
        from trl import SFTConfig, SFTTrainer

        rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in records]
        args = SFTConfig(**common, packing=False, completion_only_loss=True)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    return [h["loss"] for h in logged], [h["grad_norm"] for h in logged]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("algo", choices=["dpo", "sft"])
    p.add_argument("impl", choices=["kubealign", "trl"])
    p.add_argument("result")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--pairs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--padding-free", choices=["on", "off"], default="on")
    p.add_argument("--init-lora", required=True)
    p.add_argument("--trl-checkpointing", choices=["on", "off"], default="on")
    p.add_argument("--trl-bf16", choices=["on", "off"], default="off")
    p.add_argument("--checkpointing", choices=["default", "on", "off"], default="default",
                   help="kubealign's gradient_checkpointing setting (default: the stage's own default)")
    a = p.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        losses, grad_norms = (kubealign_side if a.impl == "kubealign" else trl_side)(a, Path(tmp))
        wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    Path(a.result).write_text(json.dumps({"wall_s": wall, "peak_rss_mib": peak_mib, "losses": losses, "grad_norms": grad_norms}))


if __name__ == "__main__":
    main()
