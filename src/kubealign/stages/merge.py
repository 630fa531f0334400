"""LoRA merge: fold the adapter into its base and write plain safetensors + tokenizer.

The merged model needs no peft at serving time. Its logits equal base+adapter's up to float
rounding (tests/integration/test_stages.py checks this).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kubealign import models
from kubealign.config import MergeConfig
from kubealign.stages import common


def run(cfg: MergeConfig, base_model: str, adapter: str, out_dir: str) -> dict[str, float]:
    stage_dtype = models.pick_dtype(cfg.dtype)
    base_dir = models.resolve_model_dir(base_model)
    adapter_dir = models.resolve_model_dir(adapter)
    with common.atomic_dir(out_dir) as tmp:
        models.merge_adapter(base_dir, adapter_dir, tmp, stage_dtype)
        # Training curves travel with the model so the evaluation report can plot them.
        if (adapter_dir / "summary.json").exists():
            shutil.copy(adapter_dir / "summary.json", Path(tmp) / "training_summary.json")
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.safetensors"))
    print(f"merge: {adapter_dir} + {base_dir} -> {out_dir} ({size / 2**20:.0f} MiB)", flush=True)
    return {"merged_mib": size / 2**20}
