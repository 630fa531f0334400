"""Publish a model folder to a registry: `<root>/<model_name>/<version>/` through fsspec.

Layout: every file of the model folder under the same relative name, plus `MANIFEST.json`:

    {"format": "kubealign-manifest/1", "name": ..., "version": ..., "created_utc": ..., "source": ...,
     "total_bytes": n, "files": [{"path": "model.safetensors", "sha256": "...", "size": 123}, ...]}

Publishing is atomic and exclusive, the same way on a local disk and on an object store:
1. stage: upload every file under a name no one else uses, `<root>/<model_name>/.staging-<version>-<id>/`;
2. claim: create `<version>/.publish-claim` with a create-if-absent write (`storage.create_exclusive`:
   link(2) locally, a conditional PUT `If-None-Match: *` on S3). Of two publishers racing on one
   version exactly one gets it; the other removes its staging copy and gets `VersionExists`;
3. move the staged files into the version (rename locally, server-side copy on object stores) and
   check every size;
4. write `MANIFEST.json` LAST (create-if-absent as well). A reader trusts nothing without it: `verify`
   reports a version without one as incomplete and `published_versions` does not list it.
The claim stays with the version, so nothing can claim a published version again. A publish that
fails after claiming removes what it moved and then its claim; one that is killed leaves the claim
and no manifest, and the next publish of that version is refused with a message saying so, unless
it comes from the same `owner` (a retried KFP task of the same run), which takes over.
A version folder with no claim and no manifest (written by an older kubealign) is cleared and
replaced by whoever claims it. Dotfiles (cache markers such as `.complete`) are not published.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubealign import storage
from kubealign.config import PublishConfig

MANIFEST = "MANIFEST.json"
CLAIM = ".publish-claim"
STAGING_PREFIX = ".staging-"
FORMAT = "kubealign-manifest/1"


class PublishError(ValueError):
    """The model cannot be published as asked; the message says where and what to change."""


class VersionExists(PublishError):
    """The version is published, or claimed by another publish; the message names its URI."""


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


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _refuse_if_published(cfg: PublishConfig, dest: str) -> None:
    if storage.exists(storage.join(dest, MANIFEST)):
        raise VersionExists(f"{dest}: version {cfg.version!r} of {cfg.model_name!r} is already published "
                            f"({MANIFEST} exists); published versions are immutable: choose a new version")


def run(cfg: PublishConfig, model_dir: str, owner: str | None = None) -> dict[str, Any]:
    """Copy `model_dir` (local path or URI) to `<root>/<name>/<version>/`; returns where and what.

    `owner` names this publish in the claim (default: unique per call); a later call with the same
    owner may finish a version that an earlier, killed call claimed (a retried task of one run).
    """
    dest = version_uri(cfg)
    _refuse_if_published(cfg, dest)
    owner = owner or uuid.uuid4().hex
    staging = storage.join(cfg.root, cfg.model_name, f"{STAGING_PREFIX}{cfg.version}-{uuid.uuid4().hex[:12]}")
    with tempfile.TemporaryDirectory(prefix="kubealign-publish-") as tmp:
        src = _local_copy(model_dir, tmp)
        entries = file_entries(src)
        if not any(e["path"] == "config.json" for e in entries):
            raise PublishError(f"{model_dir}: not a model folder (no config.json); publish a merged model")
        try:
            for e in entries:
                _put(src / e["path"], storage.join(staging, e["path"]))
            _claim(cfg, dest, owner, staging)
            try:
                _clear_leftovers(dest)
                _move_in(staging, dest, entries)
                manifest = {"format": FORMAT, "name": cfg.model_name, "version": cfg.version,
                            "source": str(model_dir), "created_utc": _utc(),
                            "total_bytes": sum(e["size"] for e in entries), "files": entries}
                data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
                if not storage.create_exclusive(storage.join(dest, MANIFEST), data, staging):  # last: complete
                    raise VersionExists(f"{dest}: {MANIFEST} appeared while this publish held the claim")
            except BaseException:
                _release(dest)
                raise
        finally:
            storage.remove(staging)
    total = manifest["total_bytes"]
    print(f"publish: {len(entries)} files ({total / 2**20:.1f} MiB) -> {dest}", flush=True)
    return {"uri": dest, "manifest": storage.join(dest, MANIFEST), "files": len(entries), "bytes": total}


def _claim(cfg: PublishConfig, dest: str, owner: str, staging: str) -> None:
    """Take the version for this publish, or raise VersionExists naming who holds it."""
    claim_uri = storage.join(dest, CLAIM)
    doc = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid(), "claimed_utc": _utc()}
    if not storage.create_exclusive(claim_uri, json.dumps(doc).encode(), staging):
        holder = _read_claim(claim_uri)
        _refuse_if_published(cfg, dest)
        if holder.get("owner") != owner:
            who = f" ({holder.get('host')}, pid {holder.get('pid')}, at {holder.get('claimed_utc')})" if holder else ""
            raise VersionExists(
                f"{dest}: version {cfg.version!r} of {cfg.model_name!r} exists: claimed by another publish{who} "
                f"that has not written {MANIFEST}; choose a new version, or, if that publish died, remove "
                f"{dest} and publish again")
        print(f"publish: taking over {dest}, claimed by an earlier attempt of this run ({owner})", flush=True)
    elif storage.exists(storage.join(dest, MANIFEST)):  # published by a kubealign that wrote no claim
        storage.remove(claim_uri)
        _refuse_if_published(cfg, dest)


def _read_claim(claim_uri: str) -> dict[str, Any]:
    try:
        return json.loads(storage.read_bytes(claim_uri))
    except (ValueError, storage.StorageError):  # removed meanwhile, or not ours: name no holder
        return {}


def _clear_leftovers(dest: str) -> None:
    """Remove what an interrupted publish left in a version this call has claimed."""
    fs, root = storage.fs_and_path(dest)
    root = root.rstrip("/")
    stale = [f for f in fs.find(root) if f[len(root):].lstrip("/") != CLAIM]
    if stale:
        print(f"publish: {dest} has {len(stale)} files and no {MANIFEST} (an interrupted publish); "
              "replacing them", flush=True)
        fs.rm(stale)


def _release(dest: str) -> None:
    """Undo a claimed publish that failed: its files first, the claim last, so no one claims too early."""
    fs, root = storage.fs_and_path(dest)
    root = root.rstrip("/")
    for path in [f for f in fs.find(root) if f[len(root):].lstrip("/") != CLAIM]:
        fs.rm(path)
    storage.remove(storage.join(dest, CLAIM))


def _move_in(staging: str, dest: str, entries: list[dict[str, Any]]) -> None:
    """Move every staged file into the claimed version and check its size there."""
    fs, root = storage.fs_and_path(dest)
    root = root.rstrip("/")
    for e in entries:
        src, dst = storage.join(staging, e["path"]), storage.join(dest, e["path"])
        if storage.is_local(dst):
            storage.local_path(dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(storage.local_path(src), storage.local_path(dst))
        else:
            fs.copy(storage.fs_and_path(src)[1], storage.fs_and_path(dst)[1])  # server-side copy
    for e in entries:  # every file is there in full before the manifest says so
        size = fs.info(f"{root}/{e['path']}")["size"]
        if size != e["size"]:
            raise PublishError(f"{storage.join(dest, e['path'])}: {size} bytes, expected {e['size']}")


def _put(local: Path, uri: str) -> None:
    """Copy one file into the staging area (streamed: model shards can be many GiB)."""
    if storage.is_local(uri):
        target = storage.local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
        return
    fs, path = storage.fs_and_path(uri)
    fs.put_file(str(local), path)  # one PUT (or a multipart upload completed at the end)


def published_versions(root: str, model_name: str) -> list[str]:
    """Versions of `model_name` under `root` that are complete (have a manifest), sorted by name."""
    fs, path = storage.fs_and_path(storage.join(root, model_name))
    if not fs.exists(path):
        return []
    names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)]
    return sorted(n for n in names if not n.startswith(".")
                  and fs.exists(f"{path.rstrip('/')}/{n}/{MANIFEST}"))


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
        if rel not in (MANIFEST, CLAIM) and rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems


__all__ = ["CLAIM", "MANIFEST", "PublishError", "VersionExists", "file_entries", "published_versions", "run",
           "verify", "version_uri"]
