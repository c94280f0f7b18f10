PY ?= python3

.PHONY: setup test test-fast demo bench lint

setup:  ## install diffrep with its dev tools (torch from the local wheel cache when present)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'

test:  ## the whole suite, slow end-to-end tests included
	WANDB_MODE=disabled $(PY) -m pytest -q

test-fast:
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow"

demo:  ## stage 1 on Fashion-MNIST on CPU: DPM pre-training with sample grids (~20 min)
	diffrep fit --config configs/dpm.yaml

bench:
	$(PY) benchmarks/throughput.py

lint:
	ruff check diffrep tests benchmarks
