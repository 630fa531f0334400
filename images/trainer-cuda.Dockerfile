# syntax=docker/dockerfile:1
# kubealign trainer image, CUDA build: the GPU stages (SFT, reward, DPO, PPO, evaluate, safety).
#
# Build from the repository root with `make image-cuda` (scripts/build_image.py cuda) on a machine that
# can pull the base: it tags the image `ghcr.io/kubealign/trainer-cuda:<version>-<source digest>`
# (kubealign.profiles.DEFAULT_GPU_IMAGE) and passes SOURCE_DIGEST, stored as a label and in
# KUBEALIGN_SOURCE_DIGEST.
# torch 2.13.0's PyPI wheel is built for CUDA 13.0 and brings its CUDA libraries as pip packages;
# the base supplies the matching CUDA runtime and the NVIDIA container-toolkit settings. Nodes need
# a driver that supports CUDA 13.0 (R580 or newer). Both stages use the same base (keep the two FROM
# lines equal): the venv built in the first points at the interpreter of that base.
FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04 AS builder
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# Versions come with the base image's Ubuntu release; exact apt pins break as the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY images/constraints.txt /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY src/ src/
COPY components/ components/
COPY pipelines/ pipelines/
# The constraints file pins every version the pipeline depends on (torch==2.13.0 from PyPI is the
# CUDA build); "." is kubealign itself. No compiler is needed: every dependency ships wheels.
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt . \
    && pip check

FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04
ARG VERSION
ARG SOURCE_DIGEST
LABEL org.opencontainers.image.title="kubealign-trainer-cuda" \
      io.kubealign.source-digest="${SOURCE_DIGEST}" \
      org.opencontainers.image.description="kubealign pipeline stages (SFT, reward, DPO/PPO, merge, evaluate), CUDA build" \
      org.opencontainers.image.source="https://github.com/kubealign/kubealign" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
ENV DEBIAN_FRONTEND=noninteractive
# Only the interpreter the venv points at (no pip, no venv module, no compiler) and CA roots for
# HTTPS to object storage and W&B. Versions come with the base image's Ubuntu release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 kubealign \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/kubealign \
       --shell /usr/sbin/nologin kubealign
COPY --from=builder /opt/venv /opt/venv
# A fixed numeric UID/GID (10001, as in kubealign.profiles.IMAGE_UID) so Kubernetes can check
# runAsNonRoot without resolving names, as the "restricted" Pod Security Standard needs.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/kubealign \
    HF_HOME=/home/kubealign/.cache/huggingface \
    WANDB_DIR=/tmp \
    KUBEALIGN_SOURCE_DIGEST=${SOURCE_DIGEST}
WORKDIR /home/kubealign
USER 10001:10001
# A batch job, not a service: KFP watches the process exit code, there is nothing to probe.
HEALTHCHECK NONE
CMD ["kubealign", "--help"]
