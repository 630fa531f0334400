"""dtype and device choice: fp32 on CPUs (no bf16 units), bf16 only on GPUs that support it."""

from __future__ import annotations

import pytest
import torch

from kubealign import models


def test_cpu_gets_fp32() -> None:
    assert models.pick_dtype("auto", torch.device("cpu")) is torch.float32


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_gpu_gets_bf16_only_when_supported(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: torch.dtype) -> None:
    # Stands in for a CUDA device: only the capability query is faked, the choice logic is real.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert models.pick_dtype("auto", torch.device("cuda")) is expected


def test_explicit_dtype_wins() -> None:
    assert models.pick_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16


def test_missing_model_folder_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(models.ModelError, match="model folder not found"):
        models.resolve_model_dir(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="no config.json"):
        models.resolve_model_dir(str(tmp_path / "empty"))
