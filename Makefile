PY ?= python3

.PHONY: setup test test-fast demo demo-latent bench lint

setup:  ## install diffrep with its dev tools (torch from the local wheel cache when present)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'

test:  ## the whole suite, slow end-to-end tests included
	WANDB_MODE=disabled $(PY) -m pytest -q

test-fast:
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow"

demo:  ## Fashion-MNIST on CPU: DPM pre-training, then PDAE on it, then reconstruction MSE (~45 min)
	diffrep fit --config configs/dpm.yaml
	diffrep fit --config configs/pdae.yaml
	$(PY) benchmarks/reconstruction.py

demo-latent:  ## optional stage 3: a DPM on PDAE's codes, for sampling (~5 min)
	diffrep fit --config configs/pdae_latent.yaml

bench:
	$(PY) benchmarks/throughput.py

lint:
	ruff check diffrep tests benchmarks
