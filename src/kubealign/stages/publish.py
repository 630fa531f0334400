"""Publish a model folder to a registry: `<root>/<model_name>/<version>/` through fsspec.

Layout: every file of the model folder under the same relative name, plus `MANIFEST.json`:

    {"format": "kubealign-manifest/1", "name": ..., "version": ..., "created_utc": ..., "source": ...,
     "total_bytes": n, "files": [{"path": "model.safetensors", "sha256": "...", "size": 123}, ...]}

- The manifest is written LAST, after every file is uploaded and its size checked, so a version with a
  manifest is complete; a reader should trust nothing without it.
- A version whose MANIFEST.json exists is never overwritten: publishing it again is refused.
- A version folder without a manifest is a publish that died half way; it is removed and replaced.
- Dotfiles (cache markers such as `.complete`) are not published.
Two publishers racing on the same new version are not excluded (object stores have no portable
create-if-absent through fsspec); give each run its own version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kubealign import storage
from kubealign.config import PublishConfig

MANIFEST = "MANIFEST.json"
FORMAT = "kubealign-manifest/1"


class PublishError(ValueError):
    """The model cannot be published as asked; the message says where and what to change."""


def version_uri(cfg: PublishConfig) -> str:
    return storage.join(cfg.root, cfg.model_name, cfg.version)


def file_entries(folder: Path) -> list[dict[str, Any]]:
    """`[{"path", "sha256", "size"}]` for every non-hidden file under `folder`, sorted by path."""
    entries = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            entries.append({"path": rel.as_posix(), "sha256": storage.sha256_file(p), "size": p.stat().st_size})
    return entries


def _local_copy(model_dir: str, tmp: str) -> Path:
    if storage.is_local(model_dir):
        path = storage.local_path(model_dir)
        if not path.is_dir():
            raise PublishError(f"{model_dir}: no such model folder")
        return path
    return storage.download_dir(model_dir, Path(tmp) / "model")


def run(cfg: PublishConfig, model_dir: str) -> dict[str, Any]:
    """Copy `model_dir` (local path or URI) to `<root>/<name>/<version>/`; returns where and what."""
    dest = version_uri(cfg)
    manifest_uri = storage.join(dest, MANIFEST)
    if storage.exists(manifest_uri):
        raise PublishError(f"{dest}: version {cfg.version!r} of {cfg.model_name!r} is already published "
                           f"({MANIFEST} exists); published versions are immutable: choose a new version")
    with tempfile.TemporaryDirectory(prefix="kubealign-publish-") as tmp:
        src = _local_copy(model_dir, tmp)
        entries = file_entries(src)
        if not any(e["path"] == "config.json" for e in entries):
            raise PublishError(f"{model_dir}: not a model folder (no config.json); publish a merged model")
        if storage.exists(dest):
            print(f"publish: {dest} has no {MANIFEST} (an interrupted publish); replacing it", flush=True)
            storage.remove(dest)
        fs, root = storage.fs_and_path(dest)
        for e in entries:
            _put(src / e["path"], storage.join(dest, e["path"]))
        for e in entries:  # every file is there in full before the manifest says so
            size = fs.info(f"{root.rstrip('/')}/{e['path']}")["size"]
            if size != e["size"]:
                raise PublishError(f"{storage.join(dest, e['path'])}: uploaded {size} bytes, expected {e['size']}")
    total = sum(e["size"] for e in entries)
    manifest = {"format": FORMAT, "name": cfg.model_name, "version": cfg.version, "source": str(model_dir),
                "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "total_bytes": total,
                "files": entries}
    storage.write_json(manifest_uri, manifest)  # last: its presence marks a complete version
    print(f"publish: {len(entries)} files ({total / 2**20:.1f} MiB) -> {dest}", flush=True)
    return {"uri": dest, "manifest": manifest_uri, "files": len(entries), "bytes": total}


def _put(local: Path, uri: str) -> None:
    """Copy one file; streamed (model shards can be many GiB), never half-visible under its name."""
    if storage.is_local(uri):
        target = storage.local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        shutil.copyfile(local, tmp)
        os.replace(tmp, target)
        return
    fs, path = storage.fs_and_path(uri)
    fs.put_file(str(local), path)  # one PUT (or a multipart upload completed at the end)


def verify(uri: str) -> list[str]:
    """Problems with a published version (empty = every file matches its manifest hash and size)."""
    manifest_uri = storage.join(uri, MANIFEST)
    if not storage.exists(manifest_uri):
        return [f"{manifest_uri}: missing (incomplete or never published)"]
    manifest = storage.read_json(manifest_uri)
    fs, root = storage.fs_and_path(uri)
    root = root.rstrip("/")
    problems = []
    listed = {e["path"] for e in manifest["files"]}
    for e in manifest["files"]:
        path = f"{root}/{e['path']}"
        if not fs.exists(path):
            problems.append(f"{e['path']}: missing")
            continue
        h = hashlib.sha256()
        with fs.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if fs.info(path)["size"] != e["size"]:
            problems.append(f"{e['path']}: size {fs.info(path)['size']} != {e['size']}")
        if h.hexdigest() != e["sha256"]:
            problems.append(f"{e['path']}: sha256 {h.hexdigest()} != {e['sha256']}")
    for found in fs.find(root):
        rel = found[len(root):].lstrip("/")
        if rel != MANIFEST and rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems


__all__ = ["MANIFEST", "PublishError", "file_entries", "run", "verify", "version_uri"]
