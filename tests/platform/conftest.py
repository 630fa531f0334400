"""Platform tests: cluster profiles, kustomize manifests, trainer Dockerfiles.

Real tools, no stand-ins: kustomize (inside kubectl) renders the overlays, kubernetes-validate checks
every object against the Kubernetes OpenAPI schemas, checkov (its own venv) applies its policy checks,
hadolint lints the Dockerfiles, and the KFP compiler compiles a real pipeline. What none of this does
is talk to a cluster or build an image: admission (Pod Security, quotas) and `docker build` are only
checked as far as the schemas and linters see them.

A missing tool fails its test with the install step to run, it never skips: `make test` installs them.
"""

from __future__ import annotations

import pytest
from platform_tools import checkov_path, hadolint_path, kubectl_path


@pytest.fixture(scope="session")
def kubectl() -> str:
    return kubectl_path()


@pytest.fixture(scope="session")
def checkov() -> str:
    return checkov_path()


@pytest.fixture(scope="session")
def hadolint() -> str:
    return hadolint_path()
