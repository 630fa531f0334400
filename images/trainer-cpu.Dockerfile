# syntax=docker/dockerfile:1
# kubealign trainer image, CPU build: every stage on CPU-only nodes, a kind cluster, CI.
#
# Build from the repository root with `make images` (scripts/build_image.py): it tags the image
# `ghcr.io/kubealign/trainer-cpu:<version>-<source digest>` (kubealign.profiles.DEFAULT_IMAGE) and sends
# only the files kubealign.images hashes. Build arguments pick the local stand-ins where no registry can
# be reached; their defaults are the real ones:
#   BASE_IMAGE     python:3.11-slim-bookworm (the default in FROM, where linters read it); here a debootstrap'd Debian bookworm (scripts/make_base.sh)
#   TORCH_INDEX    PyTorch's CPU index; here "none": the wheel sent in images/wheels/ instead
#   SOURCE_DIGEST  the tree's digest, stored as a label and in KUBEALIGN_SOURCE_DIGEST
# Both stages use the same base (keep the two FROM lines equal): the venv built in the first points
# at the interpreter of that base.
ARG BASE_IMAGE
FROM ${BASE_IMAGE:-python:3.11-slim-bookworm} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# python3, not python: Debian's own base (the local stand-in) has no `python` command.
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY images/constraints.txt /tmp/constraints.txt
COPY images/wheels/ /tmp/wheels/
# torch alone from PyTorch's CPU index: PyPI's Linux wheel is the CUDA build (gigabytes of CUDA
# libraries a CPU node never loads). --no-deps keeps torch's own dependencies on PyPI, next step.
# TORCH_INDEX=none takes the wheel from images/wheels/ (a local build with no route to that index).
RUN if [ "$TORCH_INDEX" = none ]; then export PIP_NO_INDEX=1; fi \
    && pip install --no-cache-dir --no-deps --index-url "$TORCH_INDEX" --find-links /tmp/wheels \
      "torch==$(sed -n 's/^torch==//p' /tmp/constraints.txt)+cpu" \
    && rm -rf /tmp/wheels
# Every other pinned dependency, before the source: a code change rebuilds only the last layer.
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt --requirement /tmp/constraints.txt
# One COPY for the whole source: the context holds only what the image installs (the .dockerignore, or
# scripts/build_image.py's tar), and each extra layer costs a full copy on a vfs-backed engine.
COPY . ./
# "." is kubealign itself; its dependencies are all in place (pip check proves they fit).
RUN pip install --no-cache-dir --no-deps --constraint /tmp/constraints.txt . \
    && pip check

FROM ${BASE_IMAGE:-python:3.11-slim-bookworm}
ARG VERSION
ARG SOURCE_DIGEST
LABEL org.opencontainers.image.title="kubealign-trainer-cpu" \
      io.kubealign.source-digest="${SOURCE_DIGEST}" \
      org.opencontainers.image.description="kubealign pipeline stages (SFT, reward, DPO/PPO, merge, evaluate), CPU build" \
      org.opencontainers.image.source="https://github.com/kubealign/kubealign" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# A fixed numeric UID/GID (10001, as in kubealign.profiles.IMAGE_UID) so Kubernetes can check
# runAsNonRoot without resolving names, as the "restricted" Pod Security Standard needs.
RUN groupadd --system --gid 10001 kubealign \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/kubealign \
       --shell /usr/sbin/nologin kubealign
# jemalloc with a background thread that hands freed pages back within a second: a pod's resident memory
# (what its memory limit counts) then follows the live tensors. glibc's malloc keeps much of what a training
# step frees (bench/README.md: DPO on SmolLM2-135M, peak RSS 3,690 MiB with glibc, 1,594 with this setting).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2=5.3.0-1 \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2" /usr/local/lib/libjemalloc.so.2
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/kubealign \
    HF_HOME=/home/kubealign/.cache/huggingface \
    WANDB_DIR=/tmp \
    KUBEALIGN_SOURCE_DIGEST=${SOURCE_DIGEST} \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
WORKDIR /home/kubealign
USER 10001:10001
# A batch job, not a service: KFP watches the process exit code, there is nothing to probe.
HEALTHCHECK NONE
CMD ["kubealign", "--help"]
# Last, so no later step copies the venv again (each step is a layer; on vfs, a full copy).
COPY --from=builder /opt/venv /opt/venv
