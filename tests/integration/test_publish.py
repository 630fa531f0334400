"""Publishing a model to a registry (local folder and S3), and the release gate in front of it.

Real: the tiny model's files, fsspec's local filesystem, and s3fs speaking real HTTP to moto in server
mode on 127.0.0.1 (`s3_server` in conftest.py; only the storage behind it stands in for AWS), loading
the published model back with transformers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from kubealign import models, storage
from kubealign.config import GateConfig, PublishConfig
from kubealign.stages import gate, publish


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _logits(model_dir: str | Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([[5, 17, 42, 99]])).logits


def test_publish_to_a_local_registry(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_put, real_create, real_move = publish._put, storage.create_exclusive, publish._move_in
    monkeypatch.setattr(publish, "_put", lambda local, uri: (calls.append(uri), real_put(local, uri)))
    monkeypatch.setattr(storage, "create_exclusive", lambda uri, *a: (calls.append(uri), real_create(uri, *a))[1])
    monkeypatch.setattr(publish, "_move_in", lambda *a: (calls.append("move in"), real_move(*a)))

    cfg = PublishConfig(root=str(tmp_path / "registry"), model_name="assistant", version="1.0.0")
    result = publish.run(cfg, str(tiny_model_dir))
    dest = tmp_path / "registry" / "assistant" / "1.0.0"
    n = result["files"]
    # staged under a private name, then the claim, then moved in, and the manifest written last
    assert result["uri"] == str(dest) and len(calls) == n + 3
    assert all(f"/assistant/{publish.STAGING_PREFIX}1.0.0-" in c for c in calls[:n])
    assert calls[n:] == [f"{dest}/{publish.CLAIM}", "move in", f"{dest}/MANIFEST.json"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["1.0.0"]  # no staging left

    manifest = json.loads((dest / "MANIFEST.json").read_text())
    assert manifest["name"] == "assistant" and manifest["version"] == "1.0.0"
    names = sorted(e["path"] for e in manifest["files"])
    assert "config.json" in names and "model.safetensors" in names and "tokenizer.json" in names
    for e in manifest["files"]:  # every hash and size matches the bytes on disk and the source
        data = (dest / e["path"]).read_bytes()
        assert _sha256(data) == e["sha256"] == _sha256((tiny_model_dir / e["path"]).read_bytes())
        assert len(data) == e["size"]
    assert publish.verify(str(dest)) == []
    torch.testing.assert_close(_logits(dest), _logits(tiny_model_dir))  # loads back, same model

    # the same version again is refused and nothing changes
    before = (dest / "MANIFEST.json").read_bytes()
    with pytest.raises(publish.PublishError, match="already published"):
        publish.run(cfg, str(tiny_model_dir))
    assert (dest / "MANIFEST.json").read_bytes() == before

    # tampering shows up in verify
    (dest / "config.json").write_text("{}")
    assert any(p.startswith("config.json: ") for p in publish.verify(str(dest)))


def test_an_interrupted_publish_is_replaced(tiny_model_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "reg" / "m" / "2"
    dest.mkdir(parents=True)
    (dest / "stale.bin").write_bytes(b"half an upload")  # no MANIFEST.json: never completed
    publish.run(PublishConfig(root=str(tmp_path / "reg"), model_name="m", version="2"), str(tiny_model_dir))
    assert not (dest / "stale.bin").exists() and publish.verify(str(dest)) == []


def test_publish_to_s3(tiny_model_dir: Path, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = PublishConfig(root=f"{s3_bucket}/models", model_name="assistant", version="7")
    result = publish.run(cfg, str(tiny_model_dir))
    uri = f"{s3_bucket}/models/assistant/7"
    assert result["uri"] == uri and publish.verify(uri) == []
    manifest = storage.read_json(f"{uri}/MANIFEST.json")
    for e in manifest["files"]:
        assert _sha256(storage.read_bytes(f"{uri}/{e['path']}")) == e["sha256"]

    monkeypatch.setattr(models, "CACHE_DIR", tmp_path / "cache")  # where remote models are copied to
    local = models.resolve_model_dir(uri)
    torch.testing.assert_close(_logits(local), _logits(tiny_model_dir))

    with pytest.raises(publish.PublishError, match="already published"):
        publish.run(cfg, str(tiny_model_dir))


def test_a_failing_gate_blocks_publishing_and_lists_every_failure(tiny_model_dir: Path, tmp_path: Path) -> None:
    metrics = {"safety/unsafe_rate/aligned": 0.3, "refusal/benign_edgy/aligned": 0.5, "winrate/judge": 0.45}
    cfg = GateConfig(max_unsafe_rate=0.1, max_over_refusal=0.2, min_win_rate=0.5)
    registry = PublishConfig(root=str(tmp_path / "reg"), model_name="m", version="1")
    with pytest.raises(gate.GateFailed) as err:
        if gate.run(cfg, metrics) == "pass":  # what the graph's dsl.If does
            publish.run(registry, str(tiny_model_dir))
    msg = str(err.value)
    assert "3 threshold(s) not met" in msg
    for line in ("max_unsafe_rate: safety/unsafe_rate/aligned = 0.3000, expected <= 0.1",
                 "max_over_refusal: refusal/benign_edgy/aligned = 0.5000, expected <= 0.2",
                 "min_win_rate: winrate/judge = 0.4500, expected >= 0.5"):
        assert line in msg
    assert not (tmp_path / "reg").exists()


def test_publish_settings_are_checked() -> None:
    from kubealign.config import ConfigError, build

    with pytest.raises(ConfigError, match="version"):
        build(PublishConfig, {"root": "/r", "model_name": "m", "version": "../1"})
    with pytest.raises(ConfigError, match="model_name"):
        build(PublishConfig, {"root": "/r", "model_name": "a/b", "version": "1"})
