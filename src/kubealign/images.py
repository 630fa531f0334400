"""The trainer images: a tag that names the source tree an image is built from, the build context that
tree makes, and the check that a local Docker run finds the image for this tree before any task starts.

Tag: `<kubealign version>-<source digest, 12 hex>`. The digest is a sha256 over the files the image build
installs (`SOURCE_PATHS`: pyproject.toml, the constraints, the Dockerfiles, src/, components/,
pipelines/), so two trees with the same code get the same tag on any machine, with or without git, and a
one-line change gets a new one. README.md goes into the build context too (pyproject names it as the long
description) but is not hashed: prose edits do not ask for a new image.

Where the digest comes from:
- a source checkout (kubealign imported from `<repo>/src`, editable installs included): the files;
- inside the image (kubealign installed into /opt/venv, no tree): `KUBEALIGN_SOURCE_DIGEST`, which the
  Dockerfile sets from the same build argument it writes into the `io.kubealign.source-digest` label.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

SOURCE_PATHS = (
    "pyproject.toml", "images/constraints.txt", "images/trainer-cpu.Dockerfile",
    "images/trainer-cuda.Dockerfile", "src", "components", "pipelines",
)
# In the build context but not in the digest: README.md (see above) and the local torch wheels folder
# (empty in git; the wheel it may hold is the one constraints.txt pins).
UNHASHED_PATHS = ("README.md", "images/wheels")
SKIP_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")
SKIP_SUFFIXES = (".pyc", ".pyo")
DIGEST_LABEL = "io.kubealign.source-digest"
DIGEST_ENV = "KUBEALIGN_SOURCE_DIGEST"
DIGEST_LEN = 12
FIX = "build it from this tree with `make images`"


def repo_root() -> Path | None:
    """The source checkout kubealign runs from, or None when it is installed (as in the image)."""
    root = Path(__file__).resolve().parents[2]
    is_checkout = (root / "pyproject.toml").is_file() and (root / "images").is_dir()
    return root if is_checkout else None


def _skipped(rel: Path) -> bool:
    return any(p in SKIP_PARTS or p.endswith(".egg-info") for p in rel.parts) or rel.suffix in SKIP_SUFFIXES


def source_files(root: Path, paths: Iterable[str] = SOURCE_PATHS) -> list[Path]:
    """Files under `paths` (relative to root), sorted, without caches and build leftovers."""
    files: list[Path] = []
    for name in paths:
        top = root / name
        if top.is_file():
            files.append(Path(name))
        elif top.is_dir():
            files.extend(p.relative_to(root) for p in top.rglob("*") if p.is_file())
        else:
            raise FileNotFoundError(f"{top}: part of the trainer image's source, but missing")
    return sorted(f for f in files if not _skipped(f))


def source_digest(root: Path) -> str:
    """sha256 (hex) over each source file's path and content: equal trees, equal digests."""
    outer = hashlib.sha256()
    for rel in source_files(root):
        outer.update(rel.as_posix().encode() + b"\0")
        outer.update(hashlib.sha256((root / rel).read_bytes()).hexdigest().encode() + b"\n")
    return outer.hexdigest()


def current_digest() -> str | None:
    """The short digest of the code running now: from the tree, else from the image's environment."""
    root = repo_root()
    if root is not None:
        return source_digest(root)[:DIGEST_LEN]
    return os.environ.get(DIGEST_ENV) or None


def image_tag(version: str, digest: str | None) -> str:
    """`0.1.0-3f2a9c1b7d4e`; the bare version only where no digest can be known (profiles.py alone)."""
    return f"{version}-{digest}" if digest else version


def write_context(root: Path, out: io.BufferedIOBase, extra: Mapping[str, Path] | None = None) -> list[str]:
    """Write the docker build context (a tar) holding exactly the hashed files plus README.md.

    `extra` maps names inside the context to local files (the torch wheel of a local build). Returns
    the names written. Timestamps and owners are fixed so the context depends on content alone.
    """
    names = []
    with tarfile.open(fileobj=out, mode="w|") as tar:
        entries = [(r.as_posix(), root / r) for r in source_files(root, SOURCE_PATHS + UNHASHED_PATHS)]
        entries += sorted((extra or {}).items())
        for name, path in entries:
            info = tar.gettarinfo(str(path), arcname=name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
            names.append(name)
    return names


def image_problem(image: str, labels: Mapping[str, str] | None, digest: str | None,
                  others: Iterable[str] = ()) -> str | None:
    """Why `image` cannot run this tree's code, with the fix; None when it can.

    `labels` are the local image's labels (None: no such image here), `digest` the tree's short
    digest, `others` the tags of the same repository that do exist locally.
    """
    if labels is None:
        found = sorted(others)
        seen = f" (found only {', '.join(found)}: built from other trees)" if found else ""
        return f"image {image} is not on this machine{seen}; {FIX}"
    built_from = labels.get(DIGEST_LABEL)
    if digest and built_from != digest:
        return (f"image {image} was built from source {built_from or '(unlabelled)'}, this tree is {digest}; "
                f"{FIX}")
    return None


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError as err:
        raise ValueError("no `docker` command on this machine: install Docker (Debian: apt-get install "
                         "docker.io), start it, then `make images`") from err


def local_image_labels(image: str) -> dict[str, str] | None:
    """Labels of a local image, None when it is not here. Raises ValueError when no engine answers."""
    proc = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)
    if proc.returncode == 0:
        return json.loads(proc.stdout) or {}
    if "no such image" in proc.stderr.lower():
        return None
    raise ValueError(f"docker could not inspect {image}: {proc.stderr.strip()} (is the Docker engine running?)")


def local_tags(repository: str) -> list[str]:
    proc = _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository)
    return [t for t in proc.stdout.split() if not t.endswith(":<none>")] if proc.returncode == 0 else []


def check_local_images(images: Iterable[str], digest: str | None = None) -> None:
    """Raise ValueError naming every image a Docker run would lack or run stale, and the fix.

    Run before any task starts: kfp's DockerRunner would otherwise try to pull a missing tag from its
    registry, mid-pipeline, and fail with a pull error that says nothing about the source tree.
    """
    digest = digest or current_digest()
    problems = []
    for image in sorted(set(images)):
        repository = image.rsplit(":", 1)[0]
        problem = image_problem(image, local_image_labels(image), digest, local_tags(repository))
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError("; ".join(problems))


def pipeline_images(pipeline_func: object) -> set[str]:
    """Every container image of a pipeline, as compiled (profile overrides included)."""
    import tempfile

    import yaml
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline_func, str(path))
        spec = next(yaml.safe_load_all(path.read_text()))
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    return {ex["container"]["image"] for ex in executors.values() if "container" in ex}


def local_docker_profile() -> object:
    """`kubealign run --runner docker`: a CPU-only machine's cluster profile, every stage on the CPU image.
    (A function: kubealign.profiles imports this module.)"""
    from kubealign.profiles import ClusterProfile

    return ClusterProfile.model_validate({"name": "local-docker", "defaults": {"image": "cpu"}})


def container_inputs(params: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
    """Pipeline parameters for a run whose tasks are containers, and the local paths they must see.

    A local path (or file:// URI) that exists becomes absolute, and is returned for a read-only bind
    mount at the same path, so a task reads it exactly as a subprocess would. URIs pass unchanged.
    """
    out: dict[str, object] = dict(params)
    paths: list[str] = []
    for key, value in params.items():
        if not isinstance(value, str) or not value or ("://" in value and not value.startswith("file://")):
            continue
        path = Path(value.removeprefix("file://")).resolve()
        if path.exists():
            out[key] = str(path)
            paths.append(str(path))
    return out, sorted(set(paths))


def docker_runner(pipeline_root: Path, read_only_paths: Iterable[str] = (), network: str = "none") -> object:
    """kfp's DockerRunner, each task as a restricted pod runs it: non-root (the image's UID 10001, or the
    caller's own UID where it cannot hand the pipeline root to 10001), read-only root filesystem, no
    capabilities, no privilege escalation, `network` ("none", or "host" to reach a local S3 server),
    only the pipeline root (mounted by kfp) and a /tmp tmpfs writable."""
    from docker.types import Mount
    from kfp import local

    from kubealign.profiles import IMAGE_UID

    if os.geteuid() == 0:
        os.chown(pipeline_root, IMAGE_UID, IMAGE_UID)  # the only folder tasks write outside /tmp
        user = f"{IMAGE_UID}:{IMAGE_UID}"
    else:
        user = f"{os.getuid()}:{os.getgid()}"
    mounts = [Mount(target=p, source=p, type="bind", read_only=True) for p in read_only_paths]
    return local.DockerRunner(
        user=user, read_only=True, network_mode=network, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        tmpfs={"/tmp": "rw,exec,nosuid,size=4g"}, mounts=mounts,
        # HOME and the Hugging Face cache on the tmpfs: libraries that write a cache there find it
        # writable, as a pod's emptyDir would be.
        environment={"HOME": "/tmp", "HF_HOME": "/tmp/huggingface", "TOKENIZERS_PARALLELISM": "false",
                     **forwarded_env()},
    )


# Object-store settings a task needs to read s3:// inputs, passed on from this shell as a cluster passes
# them from a Secret (kubealign.profiles `secrets`); never pipeline parameters.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
