"""Trainer Dockerfiles: hadolint and checkov find nothing, the final stage is lean and non-root, the pins
match, and the image tag has one home (kubealign.profiles).

Real: hadolint 2.15 and checkov's Dockerfile policies on the actual files; the source digest computed on
real copies of the tree. The built image itself is checked by tests/containers (`make test-containers`);
the stale-image check's docker calls are tested there, its decision here.
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
from kubealign import images
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


def stages(text: str, resolve_from: bool = True) -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) grouped by FROM; a FROM's `${ARG}` is
    replaced by that global ARG's default (the real base, as a cluster build gets it)."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    groups: list[list[str]] = []
    global_args: dict[str, str] = {}
    for line in joined.splitlines():
        if not line.strip():
            continue
        if not groups and line.startswith("ARG ") and "=" in line:
            key, _, value = line[4:].strip().partition("=")
            global_args[key] = value
        if line.upper().startswith("FROM "):
            groups.append([])
            if resolve_from:  # ${NAME} or ${NAME:-default}
                line = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: global_args.get(m.group(1)) or m.group(2), line)
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


def test_constraints_pin_the_agreed_versions_and_everything_they_need() -> None:
    pins = read_constraints()
    assert {k: pins.get(k) for k in PINS} == PINS
    # generated from the whole requirement closure: torch's and kfp's own dependencies are pinned too
    for dep in ("sympy", "networkx", "jinja2", "protobuf", "kfp-pipeline-spec", "aiobotocore", "huggingface-hub"):
        assert dep in pins, f"constraints.txt lacks {dep}: rerun scripts/gen_constraints.py"
    assert "kubealign" not in pins and "pytest" not in pins and "moto" not in pins  # no test extras


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
    digest = images.source_digest(REPO)[: images.DIGEST_LEN]
    assert DOCKERFILES[name].rsplit(":", 1) == [f"ghcr.io/kubealign/{name}", f"{kubealign.__version__}-{digest}"]
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    # the digest is stored in the image (label) and in its environment, where profiles.py reads it
    assert 'io.kubealign.source-digest="${SOURCE_DIGEST}"' in text and "KUBEALIGN_SOURCE_DIGEST=${SOURCE_DIGEST}" in text


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerignore_sends_only_what_the_build_copies(name: str) -> None:
    ignore = (IMAGES / f"{name}.Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for instr in stages(dockerfile(name).read_text())[0]:
        if instr.startswith("COPY ") and "--from" not in instr:
            for src in instr.split()[1:-1]:
                if src == ".":  # the whole context: exactly what scripts/build_image.py sends, and no more
                    other = "images/trainer-cuda.Dockerfile" if name == "trainer-cpu" else "images/trainer-cpu.Dockerfile"
                    assert allowed == {*images.SOURCE_PATHS, *images.UNHASHED_PATHS} - {other}
                    continue
                assert src.rstrip("/") in allowed, f"COPY {src} is excluded by the .dockerignore"
                assert (REPO / src).exists(), f"COPY {src}: no such path in the repository"


def test_build_args_default_to_the_real_base_and_index() -> None:
    text = dockerfile("trainer-cpu").read_text()
    raw = stages(text, resolve_from=False)
    base = "${BASE_IMAGE:-python:3.11-slim-bookworm}"  # the default inline, where hadolint and checkov read it
    assert raw[0][0] == f"FROM {base} AS builder" and raw[1][0] == f"FROM {base}"
    assert "ARG BASE_IMAGE" in text.splitlines()
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in raw[0]


def _tree(root: Path) -> Path:
    """A minimal copy of the parts of the repository the digest reads."""
    for rel in (*images.SOURCE_PATHS, "README.md"):
        src, dst = REPO / rel, root / rel
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
        else:
            for f in images.source_files(REPO, [rel]):
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                (root / f).write_bytes((REPO / f).read_bytes())
    return root


def test_source_digest_follows_the_code_not_the_prose_or_caches(tmp_path: Path) -> None:
    copy = _tree(tmp_path / "copy")
    here = images.source_digest(REPO)
    assert images.source_digest(copy) == here  # same files, same digest, wherever the tree lives
    (copy / "README.md").write_text("edited prose\n")
    (copy / "src/kubealign/__pycache__").mkdir(exist_ok=True)
    (copy / "src/kubealign/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    assert images.source_digest(copy) == here
    ops = copy / "src/kubealign/ops.py"
    ops.write_text(ops.read_text() + "\n# one more line\n")
    assert images.source_digest(copy) != here
    ops.write_text((REPO / "src/kubealign/ops.py").read_text())
    (copy / "images/constraints.txt").write_text((REPO / "images/constraints.txt").read_text() + "tqdm==1.0\n")
    assert images.source_digest(copy) != here  # a dependency pin is part of what the image is


def test_build_context_holds_exactly_the_hashed_files(tmp_path: Path) -> None:
    import tarfile

    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"stand-in")
    with (tmp_path / "ctx.tar").open("wb") as f:
        names = images.write_context(REPO, f, {f"images/wheels/{wheel.name}": wheel})
    with tarfile.open(tmp_path / "ctx.tar") as tar:
        assert tar.getnames() == names
        assert {m.mtime for m in tar.getmembers()} == {0}
    hashed = {f.as_posix() for f in images.source_files(REPO)}
    assert hashed <= set(names)
    assert set(names) - hashed == {"README.md", "images/wheels/README.md", f"images/wheels/{wheel.name}"}
    assert not any(".venv" in n or n.startswith(("tests/", ".git")) for n in names)


DIGEST = "1b37def8e207"
TAG = f"ghcr.io/kubealign/trainer-cpu:0.1.0-{DIGEST}"


def test_image_check_passes_the_image_built_from_this_tree() -> None:
    assert images.image_problem(TAG, {images.DIGEST_LABEL: DIGEST, "other": "x"}, DIGEST) is None


def test_image_check_names_a_missing_image_and_the_fix() -> None:
    msg = images.image_problem(TAG, None, DIGEST, others=["ghcr.io/kubealign/trainer-cpu:0.1.0-0123456789ab"])
    assert msg == (f"image {TAG} is not on this machine (found only ghcr.io/kubealign/trainer-cpu:0.1.0-0123456789ab: "
                   "built from other trees); build it from this tree with `make images`")
    assert images.image_problem(TAG, None, DIGEST) == (
        f"image {TAG} is not on this machine; build it from this tree with `make images`")


def test_image_check_names_a_stale_or_unlabelled_image() -> None:
    # a tag re-pointed by hand at an image from another tree: the label tells
    msg = images.image_problem(TAG, {images.DIGEST_LABEL: "0123456789ab"}, DIGEST)
    assert msg == (f"image {TAG} was built from source 0123456789ab, this tree is {DIGEST}; "
                   "build it from this tree with `make images`")
    assert "built from source (unlabelled)" in images.image_problem(TAG, {}, DIGEST)


def test_image_check_without_docker_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match=r"no `docker` command on this machine: install Docker .*make images"):
        images.check_local_images([TAG], DIGEST)


def test_container_inputs_make_local_paths_absolute_and_leave_uris(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    params, mounts = images.container_inputs({
        "sft_data": "data.jsonl", "base_model": f"file://{tmp_path}", "preference_data": "s3://b/p.jsonl",
        "lora_rank": 4, "registry_root": "", "taxonomy_uri": "missing.yaml"})
    assert params == {"sft_data": str(tmp_path / "data.jsonl"), "base_model": str(tmp_path),
                      "preference_data": "s3://b/p.jsonl", "lora_rank": 4, "registry_root": "",
                      "taxonomy_uri": "missing.yaml"}
    assert mounts == sorted([str(tmp_path), str(tmp_path / "data.jsonl")])
