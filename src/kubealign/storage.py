"""Object-storage I/O through fsspec: local paths, file://, s3://, gs:// alike.

Two promises hold for everything written here:
- a reader never sees a half-written file or checkpoint: files are written under a temporary
  name and renamed (local) or uploaded whole (object stores, where one PUT is atomic), and a
  checkpoint counts only once its `COMPLETE` marker, written last, exists;
- errors name the URI.

S3-compatible endpoints (MinIO, moto) come from the standard `AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL` variables, which botocore reads itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from fsspec.core import url_to_fs

T = TypeVar("T")


class StorageError(OSError):
    """An I/O problem at a named URI."""


def fs_and_path(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Split a URI into its filesystem and the path inside it."""
    try:
        return url_to_fs(uri)
    except (ImportError, ValueError) as err:
        raise StorageError(f"{uri}: cannot open this location ({err})") from None


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str) -> bool:
    fs, path = fs_and_path(uri)
    return fs.exists(path)


def read_bytes(uri: str) -> bytes:
    fs, path = fs_and_path(uri)
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise StorageError(f"{uri}: no such file") from None


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file so that readers see the old content or the new, never a part."""
    if is_local(uri):
        target = local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    fs, path = fs_and_path(uri)
    with fs.open(path, "wb") as f:  # one object PUT: visible only once complete
        f.write(data)


# Stores whose fsspec driver sends a real conditional write for mode="create": s3fs (If-None-Match: *)
# and gcsfs (ifGenerationMatch=0). Only s3 is exercised by the tests (moto).
ATOMIC_CREATE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs"})


def create_exclusive(uri: str, data: bytes, scratch: str | None = None, attempts: int = 5) -> bool:
    """Write a whole file only if nothing is at `uri`: True if this call created it, False if it existed.

    The create-if-absent write that concurrent writers race on; exactly one of them gets True.
    - local: the bytes go to a temporary file first, then `link(2)` gives it the name; link fails when
      the name exists, and a reader never sees a half-written file. `scratch` (a local folder on the
      same filesystem; default the target's folder) holds the temporary file, so that a reader
      listing the target's folder sees no stray file;
    - object stores: a conditional PUT (`If-None-Match: *`, s3fs's `mode="create"`), which the store
      decides atomically. S3 answers 409 ConditionalRequestConflict while another conditional write
      to the key is in flight and asks the client to retry ("Conditional writes", S3 user guide).
    """
    if is_local(uri):
        target = local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = local_path(scratch) if scratch else target.parent
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.link(tmp, target)
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)
        return True
    fs, path = fs_and_path(uri)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if not protocols & ATOMIC_CREATE_PROTOCOLS:
        # fsspec's generic mode="create" is exists-then-write, which two writers can both pass
        raise StorageError(f"{uri}: this store offers no atomic create-if-absent write through fsspec; "
                           "use a local path, s3:// or gs://")
    for attempt in range(attempts):
        try:
            fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False
        except (NotImplementedError, TypeError) as err:
            raise StorageError(f"{uri}: this store offers no create-if-absent write ({err})") from None
        except OSError as err:
            if any(w in str(err).lower() for w in ("pre-condition", "precondition")):  # 412, untranslated
                return False
            if "conflicting conditional" not in str(err).lower() or attempt == attempts - 1:
                raise StorageError(f"{uri}: conditional write failed ({err})") from None
            time.sleep(0.2 * 2**attempt)
    return False


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def upload_dir(local_dir: str | Path, uri: str) -> list[str]:
    """Copy every file under local_dir to uri (same relative names); returns the names."""
    local_dir = Path(local_dir)
    names = sorted(str(p.relative_to(local_dir)) for p in local_dir.rglob("*") if p.is_file())
    if is_local(uri):
        dest = local_path(uri)
        for name in names:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local_dir / name, dest / name)
        return names
    fs, path = fs_and_path(uri)
    for name in names:
        fs.put_file(str(local_dir / name), f"{path.rstrip('/')}/{name}")
    return names


def download_dir(uri: str, local_dir: str | Path) -> Path:
    """Copy a folder at uri to local_dir (created); returns local_dir."""
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    fs, path = fs_and_path(uri)
    if not fs.exists(path):
        raise StorageError(f"{uri}: no such folder")
    root = path.rstrip("/")
    for remote in fs.find(root):
        rel = remote[len(root):].lstrip("/")
        (local_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local_dir / rel))
    return local_dir


def remove(uri: str) -> None:
    fs, path = fs_and_path(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


class CheckpointStore:
    """Numbered checkpoints under one URI: `<uri>/step-00000012/...` plus a `COMPLETE` marker.

    The marker is written after every file of the checkpoint, so a pod killed mid-upload leaves
    a folder without a marker, which `latest()` ignores and the next save replaces.

    Two writers may share one store (two runs with the same inputs and checkpoint root). Locally a
    checkpoint is built under a name of its own and renamed into place whole, marker included, and the
    first rename of a step wins; on an object store each file is one atomic PUT, so whichever writer's
    file a reader gets is whole. Pruning and resuming tolerate checkpoints another writer removed.
    """

    _STEP = re.compile(r"step-(\d{8})$")

    def __init__(self, uri: str, keep: int = 2) -> None:
        self.uri = uri.rstrip("/")
        self.keep = keep

    def step_uri(self, step: int) -> str:
        return join(self.uri, f"step-{step:08d}")

    def complete_steps(self) -> list[int]:
        fs, path = fs_and_path(self.uri)
        if not fs.exists(path):
            return []
        steps = []
        for entry in fs.ls(path, detail=False):
            m = self._STEP.search(entry.rstrip("/"))
            if m and fs.exists(f"{entry.rstrip('/')}/COMPLETE"):
                steps.append(int(m.group(1)))
        return sorted(steps)

    def latest(self) -> int | None:
        steps = self.complete_steps()
        return steps[-1] if steps else None

    def save(self, step: int, local_dir: str | Path, meta: dict[str, Any] | None = None) -> str:
        target = self.step_uri(step)
        marker = {"step": step, "files": sorted(str(p.relative_to(local_dir)) for p in Path(local_dir).rglob("*")
                                                if p.is_file()), **(meta or {})}
        if is_local(target):
            self._save_local(local_path(target), Path(local_dir), marker)
        else:  # overwrite in place: every PUT is whole, and the marker goes last
            upload_dir(local_dir, target)
            write_json(join(target, "COMPLETE"), marker)
        self._prune(keep_latest=step)
        return target

    def _save_local(self, target: Path, local_dir: Path, marker: dict[str, Any]) -> None:
        staging = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex[:12]}")
        try:
            shutil.copytree(local_dir, staging)
            (staging / "COMPLETE").write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
            if target.exists() and not (target / "COMPLETE").exists():
                _remove_local(target)  # a folder left by an interrupted save of the old layout
            for attempt in range(3):
                try:
                    os.rename(staging, target)
                    break
                except OSError:
                    if (target / "COMPLETE").exists():
                        break  # another writer of the same run put this step in place first: keep theirs
                    if target.exists() or attempt == 2:
                        raise
                    # the step that blocked the rename was pruned by its writer before this check: try again
        finally:
            _remove_local(staging)

    def load(self, step: int, local_dir: str | Path) -> Path:
        return download_dir(self.step_uri(step), local_dir)

    def load_latest(self, restore: Callable[[int], T], tries: int = 5) -> tuple[int | None, T | None]:
        """`restore(step)` of the latest complete step, or (None, None) when there is none.

        When another writer prunes that step between listing and reading it, the next latest is read.
        """
        for _ in range(tries):
            step = self.latest()
            if step is None:
                return None, None
            try:
                return step, restore(step)
            except (FileNotFoundError, StorageError):
                if step in self.complete_steps():
                    raise  # still there: a real read error, not a prune
        raise StorageError(f"{self.uri}: checkpoints kept vanishing while resuming ({tries} tries)")

    # a staging or trash folder this old was left by a writer killed mid-save (a save takes seconds)
    STALE_S = 3600.0

    def _prune(self, keep_latest: int) -> None:
        if is_local(self.uri):
            self._remove_stale_debris(local_path(self.uri))
        steps = [s for s in self.complete_steps() if s <= keep_latest]
        for old in steps[: max(0, len(steps) - self.keep)]:
            uri = self.step_uri(old)
            try:
                if is_local(uri):
                    _remove_local(local_path(uri))
                else:
                    remove(uri)
            except FileNotFoundError:
                pass  # another writer of the same run pruned it first

    def _remove_stale_debris(self, root: Path) -> None:
        now = time.time()
        for entry in root.glob("*step-*.*-*"):  # step-N.partial-ID, .step-N.deleting-ID
            try:
                if ".partial-" in entry.name or ".deleting-" in entry.name:
                    if now - entry.stat().st_mtime > self.STALE_S:
                        _remove_local(entry)
            except FileNotFoundError:
                pass  # another writer cleaned it first


def _remove_local(path: Path) -> None:
    """Delete a folder that another process may be deleting too: claim it by renaming, then delete."""
    trash = path.with_name(f".{path.name}.deleting-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash)


def iter_files(uri: str) -> Iterable[str]:
    fs, path = fs_and_path(uri)
    return fs.find(path)
