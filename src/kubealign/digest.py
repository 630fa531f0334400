"""Content digest of a data URI: what KFP's cache key needs to follow the data, not the URI's text.

Local files and folders: sha256 of the bytes (a folder: of every file's relative path and sha256,
in sorted order). Object stores: the listing's ETag (and version id where the bucket keeps
versions) with size, so no object is downloaded; a store that gives neither falls back to hashing
the bytes. The digest names its method, e.g. `sha256:ab12..` or `etag:9c4e..`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def local_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's (relative path, file sha256) list."""
    if path.is_file():
        return "sha256:" + _sha256_file(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}\0{_sha256_file(f)}\n".encode())
        return "sha256:" + h.hexdigest()
    raise FileNotFoundError(f"{path}: no such file or folder")


def _object_tag(info: dict[str, Any]) -> str | None:
    """ETag / version id / generation as the object store lists them; None when it lists none."""
    parts = [str(info[k]).strip('"') for k in ("ETag", "etag", "VersionId", "version_id", "generation", "md5Hash")
             if info.get(k)]
    return ",".join(parts) if parts else None


def remote_digest(uri: str) -> str:
    """Digest of an fsspec URI from its listing (ETag/version + size per object), hashing bytes only as a fallback."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise FileNotFoundError(f"{uri}: no such object or prefix")
    listing = fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)}
    h = hashlib.sha256()
    method = "etag"
    for name in sorted(listing):
        info = listing[name]
        tag = _object_tag(info)
        if tag is None:
            method = "sha256"
            with fs.open(name, "rb") as f:
                tag = hashlib.sha256(f.read()).hexdigest()
        h.update(f"{name[len(path):]}\0{info.get('size')}\0{tag}\n".encode())
    return f"{method}:{h.hexdigest()}"


def content_digest(uri: str) -> str:
    """The digest of a local path, file:// URI or any fsspec URI (see the module docstring)."""
    if "://" not in uri or uri.startswith("file://"):
        return local_digest(Path(uri.removeprefix("file://")))
    return remote_digest(uri)
