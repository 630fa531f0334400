"""The CPU trainer image itself: who it runs as, what it holds, and one stage run as a restricted pod.

Real: the built image, `docker run` with the restricted settings (see conftest.RESTRICTED), the tiny
model folder mounted read-only, a work folder mounted writable.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kubealign import images
from kubealign.cli import main
from kubealign.profiles import IMAGE_UID
from tests.containers.conftest import readable

pytestmark = pytest.mark.containers
REPO = Path(__file__).resolve().parents[2]


def inspect(image: str) -> dict:
    return json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                     check=True).stdout)[0]


def test_image_is_labelled_with_this_tree_and_runs_as_10001(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert config["Labels"][images.DIGEST_LABEL] == images.current_digest()
    assert f"{images.DIGEST_ENV}={images.current_digest()}" in config["Env"]


def test_help_and_identity_under_restricted_settings(image: str, run_restricted) -> None:
    proc = run_restricted("sh", "-c", "id -u; id -g; kubealign --help")
    assert proc.returncode == 0, proc.stderr
    uid, gid, *help_lines = proc.stdout.splitlines()
    assert (uid, gid) == (str(IMAGE_UID), str(IMAGE_UID))
    assert "kubealign validate {sft|preference|safety} PATH" in "\n".join(help_lines)
    # the root filesystem is read-only: only /tmp (tmpfs) and mounted work folders take writes
    proc = run_restricted("sh", "-c", "touch /opt/venv/x 2>&1; touch $HOME/x 2>&1; touch /tmp/x && echo tmp-ok")
    assert proc.stdout.count("Read-only file system") == 2 and proc.stdout.rstrip().endswith("tmp-ok"), proc.stdout


def test_installed_versions_are_exactly_the_constraints(image: str, run_restricted) -> None:
    # --all: setuptools too (some dependencies need it at run time); pip itself comes with the venv
    proc = run_restricted("python", "-m", "pip", "freeze", "--all", "--exclude", "kubealign", "--exclude", "pip")
    assert proc.returncode == 0, proc.stderr
    installed = {}
    for line in proc.stdout.splitlines():
        name, _, version = line.partition("==")
        installed[re.sub(r"[-_.]+", "-", name).lower()] = version.split("+", 1)[0]
    pinned = {}
    for line in (REPO / "images/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name] = version
    assert installed == pinned


def test_validate_stage_in_a_restricted_container_matches_the_host(
        image: str, run_restricted, tiny_model_dir: Path, work: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": "Explain the sun in one line.", "chosen": "The sun is a star.", "rejected": "No."},
            {"prompt": "Explain the moon.", "chosen": "", "rejected": "No."},  # rejected: empty chosen
            {"prompt": "Explain a tree.", "chosen": "A tree is a plant.", "rejected": "No."}]
    (work / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    readable(tiny_model_dir, work)
    proc = run_restricted("kubealign", "validate", "preference", "/work/pref.jsonl", "--tokenizer", "/model",
                          "--report", "/work/report.json",
                          mounts={work: ("/work", True), tiny_model_dir: ("/model", False)})
    host_report = tmp_path / "host.json"
    host_rc = main(["validate", "preference", str(work / "pref.jsonl"), "--tokenizer", str(tiny_model_dir),
                    "--report", str(host_report)])
    host_out = capsys.readouterr().out
    assert proc.returncode == host_rc == 1, proc.stderr  # 1: some rows rejected
    in_container = json.loads((work / "report.json").read_text())
    assert json.dumps(in_container, sort_keys=True).replace("/work/pref.jsonl", "PATH") == \
        json.dumps(json.loads(host_report.read_text()), sort_keys=True).replace(str(work / "pref.jsonl"), "PATH")
    assert proc.stdout.replace("/work/pref.jsonl", "PATH") == host_out.replace(str(work / "pref.jsonl"), "PATH")
    assert ":2:" in proc.stdout or "row 2" in proc.stdout, proc.stdout  # the empty `chosen` row, by number


def test_stale_or_missing_image_stops_the_run_before_any_task(image: str, tmp_path: Path, tiny_model_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # a missing tag: the real `docker image inspect`, and the tags that do exist named as other trees'
    other = f"{image.rsplit(':', 1)[0]}:0.0.0-000000000000"
    with pytest.raises(ValueError) as err:
        images.check_local_images([other])
    msg = str(err.value)
    assert msg.startswith(f"image {other} is not on this machine (found only ") and image in msg
    assert msg.endswith(": built from other trees); build it from this tree with `make images`")
    # the tree changed since the build (its digest no longer matches the image's label): `run` stops
    monkeypatch.setattr(images, "current_digest", lambda: "000000000000")
    data = tmp_path / "sft.jsonl"
    data.write_text("{}\n")
    root = tmp_path / "root"
    rc = main(["run", "dpo", "--runner", "docker", "--pipeline-root", str(root), "--set", f"base_model={tiny_model_dir}",
               "--set", f"sft_data={data}", "--set", f"preference_data={data}"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.strip() == (
        f"kubealign run: error: image {image} was built from source {image[-12:]}, "
        "this tree is 000000000000; build it from this tree with `make images`")
    assert "Pulling" not in captured.out and not root.exists()  # nothing started, nothing pulled


def test_jemalloc_is_the_allocator_of_every_stage_process(run_restricted) -> None:
    """The image preloads jemalloc with background purging (the Dockerfile, bench/README.md): a Python
    process in it has libjemalloc mapped and reads the MALLOC_CONF the image sets."""
    out = run_restricted("python3", "-c", "import os, torch; maps = open('/proc/self/maps').read(); "
                         "print('jemalloc' in maps, os.environ['MALLOC_CONF'])")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"]
