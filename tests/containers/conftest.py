"""Stages inside the built CPU trainer image (`make test-containers`; not part of `make test`).

Real: the Docker engine, the image `make images` built from this tree (its tag carries the tree's
source digest), kfp's DockerRunner starting every task with the compiled component's command and
arguments, the tiny model and tokenizer from tests/conftest.py, moto's S3 server on 127.0.0.1.
What stands in: the image's base (a debootstrap'd Debian bookworm with Python 3.11, where a cluster's
build uses python:3.11-slim-bookworm) and dockerd's vfs storage / no bridge network, which make
container start-up slower than on a cluster node.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kubealign import images
from kubealign.profiles import DEFAULT_IMAGE, IMAGE_UID

# What the restricted Pod Security Standard and the project's default-deny NetworkPolicy leave a pod:
# a non-root UID, a read-only root filesystem, no capabilities, no privilege escalation, no network.
RESTRICTED = ["--read-only", "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--user", f"{IMAGE_UID}:{IMAGE_UID}", "--tmpfs", "/tmp:rw,size=1g"]


@pytest.fixture(scope="session")
def image() -> str:
    """The CPU image for this tree; fails (never skips) with the fix when it is missing or stale."""
    try:
        images.check_local_images([DEFAULT_IMAGE])
    except ValueError as err:
        pytest.fail(f"{err} (`make test-containers` does this itself)")
    return DEFAULT_IMAGE


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder the container's UID may write: the only writable mount a task gets."""
    path = tmp_path / "work"
    path.mkdir()
    os.chown(path, IMAGE_UID, IMAGE_UID)
    return path


@pytest.fixture
def run_restricted(image: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`docker run` under the restricted settings; mounts: {host path: (container path, writable)}."""

    def run(*cmd: str, mounts: dict[Path, tuple[str, bool]] | None = None, network: str = "none",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        args = ["docker", "run", "--rm", *RESTRICTED]
        args[args.index("--network") + 1] = network
        for host, (target, writable) in (mounts or {}).items():
            args += ["--mount", f"type=bind,source={host},target={target}" + ("" if writable else ",readonly")]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        return subprocess.run([*args, image, *cmd], capture_output=True, text=True, timeout=600)

    return run


def readable(*paths: Path) -> None:
    """Let the container's UID read test inputs: pytest makes its temporary folders 0700 (owner only)."""
    for top in paths:
        for p in [top, *top.rglob("*")] if top.is_dir() else [top]:
            p.chmod(p.stat().st_mode | 0o055 if p.is_dir() else p.stat().st_mode | 0o044)
