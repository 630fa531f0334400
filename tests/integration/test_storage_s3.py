"""Checkpoints and model folders on s3:// against moto (a real S3-protocol server on 127.0.0.1).

s3fs/botocore speak real HTTP to moto; only AWS itself stands in. The marker rule is the point:
a checkpoint counts only once its COMPLETE marker, written after every file, exists.
"""

from __future__ import annotations

from pathlib import Path

from kubealign import storage


def test_checkpoints_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    store = storage.CheckpointStore(f"{s3_bucket}/ckpt/run1", keep=2)
    assert store.latest() is None
    for step in (2, 4, 6):
        (tmp_path / "state.pt").write_bytes(f"state at {step}".encode())
        store.save(step, tmp_path)
    assert store.complete_steps() == [4, 6]  # keep=2 pruned step 2
    # an upload cut short: files but no marker -> not a checkpoint
    storage.write_bytes(f"{store.step_uri(8)}/state.pt", b"partial")
    assert store.latest() == 6
    out = store.load(6, tmp_path / "restored")
    assert (out / "state.pt").read_bytes() == b"state at 6"
    # saving step 8 for real replaces the partial folder
    (tmp_path / "state.pt").write_bytes(b"state at 8")
    store.save(8, tmp_path)
    assert store.latest() == 8 and storage.read_bytes(f"{store.step_uri(8)}/state.pt") == b"state at 8"


def test_model_folder_round_trip_through_s3(s3_bucket: str, tiny_model_dir: Path, tmp_path: Path,
                                            monkeypatch) -> None:
    from kubealign import models

    monkeypatch.setattr(models, "CACHE_DIR", tmp_path / "cache")

    uri = f"{s3_bucket}/models/tiny"
    storage.upload_dir(tiny_model_dir, uri)
    local = models.resolve_model_dir(uri)
    assert (local / "config.json").read_bytes() == (tiny_model_dir / "config.json").read_bytes()
    assert storage.sha256_file(local / "model.safetensors") == storage.sha256_file(tiny_model_dir / "model.safetensors")
