"""Build a trainer image from this tree, tagged with the tree's source digest (kubealign.images).

    python scripts/build_image.py cpu [--base IMAGE] [--torch-wheels DIR]
    python scripts/build_image.py cuda

The build context is a tar of exactly the files kubealign.images hashes (plus README.md and, for a
local build, the torch wheel), piped to `docker build -`: what is hashed is what is built, and no
.dockerignore or builder feature is needed. Without --base / --torch-wheels the Dockerfiles' own base
image and package index are used, as on a cluster's CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kubealign import __version__, images
from kubealign.profiles import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE

TAGS = {"cpu": DEFAULT_IMAGE, "cuda": DEFAULT_GPU_IMAGE}


def torch_wheel(folder: Path, root: Path) -> Path:
    """The CPU torch wheel for the pinned release and the images' Python (3.11) in `folder`."""
    pin = next(line.split("==", 1)[1] for line in (root / "images/constraints.txt").read_text().splitlines()
               if line.startswith("torch=="))
    found = sorted(folder.glob(f"torch-{pin}+cpu-cp311-cp311-*linux*x86_64.whl"))
    if not found:
        sys.exit(f"build_image: no torch-{pin}+cpu cp311 linux wheel in {folder}; "
                 "pass --torch-wheels '' to install torch from PyTorch's CPU index")
    return found[-1]


def legacy_builder() -> bool:
    """True where BuildKit (docker buildx) is missing: Debian's docker.io 20.10 on this machine."""
    return subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("flavor", choices=sorted(TAGS))
    p.add_argument("--base", default="", help="base image instead of the Dockerfile's (a local stand-in)")
    p.add_argument("--torch-wheels", default="", help="folder with the CPU torch wheel instead of PyTorch's index")
    args = p.parse_args()
    root = images.repo_root()
    if root is None:
        sys.exit("build_image: run from a kubealign source checkout (kubealign is installed, not editable)")
    digest = images.current_digest()
    build_args = {"VERSION": __version__, "SOURCE_DIGEST": digest or ""}
    extra = {}
    if args.base:
        build_args["BASE_IMAGE"] = args.base
    if args.torch_wheels and args.flavor == "cpu":
        wheel = torch_wheel(Path(args.torch_wheels), root)
        extra[f"images/wheels/{wheel.name}"] = wheel
        build_args["TORCH_INDEX"] = "none"
    cmd = ["docker", "build", "--network", "host", "-f", f"images/trainer-{args.flavor}.Dockerfile",
           "-t", TAGS[args.flavor]]
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"} if legacy_builder() else dict(os.environ)
    with tempfile.TemporaryFile() as context:
        images.write_context(root, context, extra)
        context.seek(0)
        print(f"build_image: {TAGS[args.flavor]} from source {digest}", flush=True)
        return subprocess.run([*cmd, "-"], stdin=context, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
