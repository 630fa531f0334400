"""Trainer Dockerfiles: hadolint and checkov find nothing, the final stage is lean and non-root, the pins
match, and the image tag has one home (kubealign.profiles).

Real: hadolint 2.15 and checkov's Dockerfile policies on the actual files. Not covered: `docker build`
itself (no Docker engine here); the final-stage checks read the Dockerfile text, not a built image.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version
from platform_tools import IMAGES, REPO, failed_checks_text, run, run_checkov

import kubealign
from kubealign.profiles import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE, IMAGE_UID

DOCKERFILES = {"trainer-cpu": DEFAULT_IMAGE, "trainer-cuda": DEFAULT_GPU_IMAGE}
PINS = {
    "torch": "2.13.0", "kfp": "2.17.0", "kfp-kubernetes": "2.17.0", "transformers": "5.23.0", "peft": "0.21.2",
    "accelerate": "1.15.0", "wandb": "0.31.0", "pydantic": "2.14.3", "fsspec": "2026.9.0", "s3fs": "2026.9.0",
    "gguf": "0.19.0", "pyarrow": "26.0.1",
}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3-dev|python3\.\d+-dev)\b")


def dockerfile(name: str) -> Path:
    return IMAGES / f"{name}.Dockerfile"


def stages(text: str) -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) grouped by FROM."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    groups: list[list[str]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        if line.upper().startswith("FROM "):
            groups.append([])
        if groups:
            groups[-1].append(line.strip())
    return groups


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(hadolint: str, name: str) -> None:
    proc = run([hadolint, "--no-color", "-f", "json", str(dockerfile(name))])
    findings = json.loads(proc.stdout or "[]")
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_hadolint_ignore_says_why(name: str) -> None:
    lines = dockerfile(name).read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[i - 1].strip() if i else ""
            assert reason.startswith("#") and "hadolint" not in reason and len(reason) > 20, (
                f"{name}.Dockerfile:{i + 1}: put the reason for the ignore on the comment line above"
            )


def test_checkov_finds_nothing_in_the_dockerfiles(checkov: str) -> None:
    report = run_checkov(checkov, IMAGES, "dockerfile")
    assert report["summary"]["failed"] == 0, "checkov failures:\n" + failed_checks_text(report)
    assert report["summary"]["skipped"] == 0
    scanned = {Path(c["file_path"]).name for c in report["results"]["passed_checks"]}
    assert scanned == {f"{n}.Dockerfile" for n in DOCKERFILES}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_multi_stage_with_a_lean_non_root_final_stage(name: str) -> None:
    builder, final = stages(dockerfile(name).read_text())
    assert builder[0].endswith(" AS builder")
    assert builder[0].removesuffix(" AS builder") == final[0], "both stages must use the same base image"
    assert not re.search(r":latest\b", final[0]) and ":" in final[0], "base image needs a fixed tag"
    users = [i for i in final if i.startswith("USER ")]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].split()[1].partition(":")
    assert uid.isdigit() and int(uid) == IMAGE_UID != 0, f"USER must be the numeric non-root {IMAGE_UID}"
    assert gid.isdigit() and int(gid) != 0
    assert any(i == "COPY --from=builder /opt/venv /opt/venv" for i in final), "final stage copies the venv"
    installs = " ".join(i for i in final if i.startswith("RUN "))
    assert not BUILD_TOOLS.search(installs), f"compilers or build tools in the final stage: {installs}"
    assert "pip install" not in installs, "nothing is pip-installed in the final stage; it copies the venv"
    assert any(i.startswith("HEALTHCHECK") for i in final)
    labels = " ".join(i for i in final if i.startswith("LABEL "))
    for key in ("title", "source", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_bases_are_cuda_runtime_and_python_slim() -> None:
    cuda_final = stages(dockerfile("trainer-cuda").read_text())[-1][0]
    assert re.fullmatch(r"FROM nvidia/cuda:[\d.]+-runtime-ubuntu[\d.]+", cuda_final), cuda_final
    cpu_final = stages(dockerfile("trainer-cpu").read_text())[-1][0]
    assert cpu_final.startswith("FROM python:3.11-slim"), cpu_final
    assert "download.pytorch.org/whl/cpu" in dockerfile("trainer-cpu").read_text()


@pytest.mark.parametrize("name", DOCKERFILES)
def test_builder_installs_kubealign_with_the_constraints(name: str) -> None:
    builder = stages(dockerfile(name).read_text())[0]
    runs = [i for i in builder if i.startswith("RUN ") and "pip install" in i]
    assert any("--constraint /tmp/constraints.txt ." in r for r in runs)
    assert "COPY images/constraints.txt /tmp/constraints.txt" in builder


def read_constraints() -> dict[str, str]:
    pins = {}
    for line in (IMAGES / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[name.lower()] = version
    return pins


def test_constraints_pin_exactly_the_agreed_versions() -> None:
    assert read_constraints() == PINS


def test_constraints_agree_with_pyproject() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = read_constraints()
    for dep in map(Requirement, deps):
        if dep.name.lower() in pins:
            assert dep.specifier.contains(Version(pins[dep.name.lower()])), (
                f"pyproject asks {dep}, constraints.txt pins {pins[dep.name.lower()]}"
            )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_tag_lives_only_in_profiles(name: str) -> None:
    text = dockerfile(name).read_text()
    assert kubealign.__version__ not in text, "the image version comes from --build-arg VERSION, not the file"
    assert DOCKERFILES[name].rsplit(":", 1) == [f"ghcr.io/kubealign/{name}", kubealign.__version__]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerignore_sends_only_what_the_build_copies(name: str) -> None:
    ignore = (IMAGES / f"{name}.Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for instr in stages(dockerfile(name).read_text())[0]:
        if instr.startswith("COPY ") and "--from" not in instr:
            for src in instr.split()[1:-1]:
                assert src.rstrip("/") in allowed, f"COPY {src} is excluded by the .dockerignore"
                assert (REPO / src).exists(), f"COPY {src}: no such path in the repository"
