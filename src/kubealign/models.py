"""Load and save models and tokenizers; LoRA; dtype and device choice; merge.

Models are folders in the Hugging Face layout (config.json + safetensors + tokenizer files) at
any fsspec URI; remote ones are copied to a local cache first. Nothing here reaches a model hub:
`HF_HUB_OFFLINE` is set before transformers is imported anywhere in kubealign.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402

from kubealign import storage  # noqa: E402
from kubealign.config import LoraSettings  # noqa: E402

CACHE_DIR = Path(os.environ.get("KUBEALIGN_CACHE", Path.home() / ".cache" / "kubealign"))


class ModelError(ValueError):
    """A model location that cannot be used; the message says which and what was expected."""


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def pick_dtype(setting: str = "auto", device: torch.device | None = None) -> torch.dtype:
    """fp32 on CPUs (no bf16 units here: bf16 runs ~100x slower), bf16 on GPUs that support it."""
    if setting != "auto":
        return getattr(torch, setting)
    device = device or pick_device()
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def local_copy(uri: str) -> Path:
    """A local folder with the contents of `uri`; remote folders are copied into the cache once."""
    if storage.is_local(uri):
        path = storage.local_path(uri)
        if not path.is_dir():
            raise ModelError(f"{uri}: model folder not found (expected a folder with config.json)")
        return path
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    path = CACHE_DIR / "models" / key
    if not (path / ".complete").exists():
        try:
            storage.download_dir(uri, path)
        except storage.StorageError as err:
            raise ModelError(str(err)) from None
        (path / ".complete").write_text(uri)
    return path


def resolve_model_dir(uri: str) -> Path:
    """A local folder holding the model (or adapter) at `uri`."""
    path = local_copy(uri)
    if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        raise ModelError(f"{uri}: not a model folder: no config.json (model) or adapter_config.json (adapter)")
    return path


# Files whose bytes decide what a model computes: its config, weights and tokenizer (chat template too).
_DIGESTED = ("config.json", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "chat_template.jinja", "*.safetensors", "*.safetensors.index.json", "*.bin")
DIGEST_CACHE = ".kubealign-digest.json"


def content_digest(model_dir: str | Path) -> str:
    """sha256 over the names, sizes and sha256 of a model folder's config, weight and tokenizer files.

    Two folders with the same files get the same digest wherever they live, so resumable state keyed on
    it survives a new run folder. Hashing the weights costs one read (about 1 s per GB); the result is
    cached in `DIGEST_CACHE` beside them and reused while every file keeps its size and mtime.
    """
    root = Path(model_dir)
    files = sorted({p for pattern in _DIGESTED for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise ModelError(f"{model_dir}: no config, weight or tokenizer files to fingerprint")
    stats = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
    cache = root / DIGEST_CACHE
    try:
        cached = json.loads(cache.read_text())
        if cached.get("files") == stats:
            return str(cached["digest"])
    except (OSError, ValueError, AttributeError):
        pass  # no cache yet, or an unreadable one: hash again
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\0{p.stat().st_size}\0{storage.sha256_file(p)}\n".encode())
    digest = h.hexdigest()
    try:
        storage.write_json(str(cache), {"files": stats, "digest": digest})
    except OSError:
        pass  # a read-only model folder: hash again next time
    return digest


def load_tokenizer(model_dir: str | Path) -> Any:
    """The tokenizer of a local model folder; it must carry a chat template."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise ModelError(f"{model_dir}: cannot load the tokenizer ({err})") from None
    if tok.chat_template is None:
        raise ModelError(f"{model_dir}: the tokenizer has no chat_template (expected a chat model)")
    if tok.pad_token_id is None:
        # Padding positions are masked out of every loss; any id will do, eos is always there.
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(model_dir: str | Path, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    except (OSError, ValueError) as err:
        raise ModelError(f"{model_dir}: cannot load the model ({err})") from None
    return model.to(device)


def add_lora(model: torch.nn.Module, lora: LoraSettings) -> torch.nn.Module:
    """Wrap `model` with a fresh LoRA adapter; the base weights are frozen and shared."""
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in present]
    if missing:
        raise ModelError(
            f"lora.target_modules: {missing} not found in the model (it has e.g. {sorted(present)[:12]})"
        )
    cfg = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_model(model: torch.nn.Module, tokenizer: Any, out_dir: str | Path, meta: dict[str, Any],
               state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Save an adapter (PEFT) or full weights as safetensors, the tokenizer and `kubealign.json`.

    `state_dict`: the weights to write instead of the model's own (FSDP: gathered from the shards).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = {"state_dict": state_dict} if state_dict is not None else {}
    model.save_pretrained(str(out_dir), safe_serialization=True, **extra)
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / "kubealign.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "kubealign.json"
    return json.loads(path.read_text()) if path.exists() else {}


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: torch.dtype) -> None:
    """Fold a LoRA adapter into its base and save plain safetensors + tokenizer.

    A full fine-tune (no adapter_config.json) is copied through as is.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    tokenizer = load_tokenizer(adapter_dir)
    meta = {**read_meta(adapter_dir), "merged_from": str(adapter_dir)}
    if not (adapter_dir / "adapter_config.json").exists():
        model = load_causal_lm(adapter_dir, dtype, torch.device("cpu"))
        save_model(model, tokenizer, out_dir, meta)
        return
    base = load_causal_lm(base_dir, torch.float32, torch.device("cpu"))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    save_model(merged.to(dtype), tokenizer, out_dir, meta)


def describe(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable}
