# syntax=docker/dockerfile:1
# kubealign trainer image, CPU build: every stage on CPU-only nodes, a kind cluster, CI.
#
# Build from the repository root (the tag lives in src/kubealign/profiles.py, DEFAULT_IMAGE):
#   docker build -f images/trainer-cpu.Dockerfile \
#     --build-arg VERSION="$(python -c 'import kubealign; print(kubealign.__version__)')" \
#     -t "$(python -c 'from kubealign.profiles import DEFAULT_IMAGE; print(DEFAULT_IMAGE)')" .
# Both stages use the same base (keep the two FROM lines equal): the venv built in the first points
# at the interpreter of that base.
FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY images/constraints.txt /tmp/constraints.txt
# torch alone from PyTorch's CPU index: PyPI's Linux wheel is the CUDA build (gigabytes of CUDA
# libraries a CPU node never loads). --no-deps keeps torch's own dependencies on PyPI, next step.
RUN pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
      "torch==$(sed -n 's/^torch==//p' /tmp/constraints.txt)+cpu"
COPY pyproject.toml README.md ./
COPY src/ src/
COPY components/ components/
COPY pipelines/ pipelines/
# The constraints file pins every version the pipeline depends on; "." is kubealign itself.
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt . \
    && pip check

FROM python:3.11-slim-bookworm
ARG VERSION
LABEL org.opencontainers.image.title="kubealign-trainer-cpu" \
      org.opencontainers.image.description="kubealign pipeline stages (SFT, reward, DPO/PPO, merge, evaluate), CPU build" \
      org.opencontainers.image.source="https://github.com/kubealign/kubealign" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# A fixed numeric UID/GID (10001, as in kubealign.profiles.IMAGE_UID) so Kubernetes can check
# runAsNonRoot without resolving names, as the "restricted" Pod Security Standard needs.
RUN groupadd --system --gid 10001 kubealign \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/kubealign \
       --shell /usr/sbin/nologin kubealign
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/kubealign \
    HF_HOME=/home/kubealign/.cache/huggingface \
    WANDB_DIR=/tmp
WORKDIR /home/kubealign
USER 10001:10001
# A batch job, not a service: KFP watches the process exit code, there is nothing to probe.
HEALTHCHECK NONE
CMD ["kubealign", "--help"]
