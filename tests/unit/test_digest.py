"""Content digests: local files and folders (sha256), and S3 objects (ETag) on a real moto server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kubealign.digest import content_digest


def test_local_file_digest_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"x": 1}\n')
    assert content_digest(str(f)) == "sha256:" + hashlib.sha256(b'{"x": 1}\n').hexdigest()
    assert content_digest(f"file://{f}") == content_digest(str(f))


def test_folder_digest_changes_with_any_file_and_its_name(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.jsonl").write_text("1\n")
    (d / "b.jsonl").write_text("2\n")
    first = content_digest(str(d))
    assert content_digest(str(d)) == first
    (d / "b.jsonl").write_text("3\n")
    second = content_digest(str(d))
    assert second != first
    (d / "b.jsonl").rename(d / "c.jsonl")
    assert content_digest(str(d)) not in (first, second)


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        content_digest(str(tmp_path / "nope.jsonl"))


def test_s3_digest_follows_the_etag(s3_bucket: str) -> None:
    import fsspec

    uri = f"{s3_bucket}/prefs.jsonl"
    with fsspec.open(uri, "wb") as f:
        f.write(b'{"prompt": "a"}\n')
    first = content_digest(uri)
    assert first.startswith("etag:") and content_digest(uri) == first
    with fsspec.open(uri, "wb") as f:
        f.write(b'{"prompt": "b"}\n')
    fsspec.filesystem("s3").invalidate_cache()
    assert content_digest(uri) != first
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        content_digest(f"{s3_bucket}/missing.jsonl")
