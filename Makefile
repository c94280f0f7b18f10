PY ?= python3

.PHONY: setup test test-fast demo demo-latent fid-extractor evaluate baselines compare compare-diagnostics compare-semi compare-semi-seeds compare-quick bench precision time-to-accuracy best-cpu-hour lint

setup:  ## install diffrep with its dev tools (torch from the local wheel cache when present) and the demo's data
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'
	@bash scripts/get_fashion_mnist.sh

test:  ## the whole suite, slow end-to-end tests included, in two one-thread workers (pytest-xdist)
	WANDB_MODE=disabled $(PY) -m pytest -q -n 2 --durations=15

test-fast:
	WANDB_MODE=disabled $(PY) -m pytest -q -n 2 -m "not slow"

demo:  ## Fashion-MNIST on CPU: DPM pre-training, then PDAE on it, then reconstruction MSE (~13 min; ~40 on a CPU without native bf16)
	@$(PY) -m diffrep.datamodules
	diffrep fit --config configs/dpm.yaml
	diffrep fit --config configs/pdae.yaml
	$(PY) benchmarks/reconstruction.py --out runs/pdae/reconstruction.json
	@$(PY) -m diffrep.report summary runs/dpm/metrics.json runs/pdae/metrics.json runs/pdae/reconstruction.json

demo-latent:  ## optional stage 3: a DPM on PDAE's codes, for sampling (~5 min)
	diffrep fit --config configs/pdae_latent.yaml

fid-extractor:  ## the small Fashion-MNIST classifier whose features FID uses (~5 min)
	$(PY) -m diffrep.evaluation.extractor --out runs/fid/fashion_mnist_classifier.pt

evaluate:  ## the whole evaluation suite on the demo PDAE; report next to the checkpoint
	diffrep test --config configs/pdae.yaml --config configs/eval/fashion_mnist.yaml --ckpt_path runs/pdae/checkpoints/last.ckpt

baselines:  ## pixels, PCA, autoencoder and VAE under the same evaluation
	diffrep test --config configs/baselines/pixels.yaml --config configs/eval/fashion_mnist.yaml
	diffrep test --config configs/baselines/pca.yaml --config configs/eval/fashion_mnist.yaml
	diffrep fit --config configs/baselines/autoencoder.yaml
	diffrep test --config configs/baselines/autoencoder.yaml --config configs/eval/fashion_mnist.yaml --ckpt_path runs/baselines/autoencoder/checkpoints/last.ckpt
	diffrep fit --config configs/baselines/vae.yaml
	diffrep test --config configs/baselines/vae.yaml --config configs/eval/fashion_mnist.yaml --ckpt_path runs/baselines/vae/checkpoints/last.ckpt

compare:  ## every method and baseline at one budget, one evaluation (runs/compare/results.md)
	$(PY) benchmarks/compare.py

compare-diagnostics:  ## PDAE with a 512-d code, PDAE on a DPM trained twice as long, Diff-AE with DRL's encoder
	$(PY) benchmarks/compare.py --diagnostics

compare-semi:  ## the label-scarce evaluation (semi-supervised, SVMs) of every entry, DPM features and SimCLR included
	$(PY) benchmarks/compare.py --semi

compare-semi-seeds:  ## the README's headline table: compare-semi over 3 training seeds in fp32 (~6 CPU hours on 2 cores; resumes)
	$(PY) benchmarks/compare.py --semi --seeds 3 --precision 32-true --out runs/compare_semi_seeds

compare-quick:  ## the same pipeline with 60 steps each and a small evaluation
	$(PY) benchmarks/compare.py --quick --out runs/compare_quick

bench:
	$(PY) benchmarks/throughput.py

precision:  ## fp32 against bf16-mixed on the CPU: loss curves and probes of DPM, PDAE and DRL (~20 min)
	$(PY) benchmarks/precision.py

time-to-accuracy:  ## linear and 10-labels-per-class accuracy against training minutes, every method and baseline
	$(PY) benchmarks/time_to_accuracy.py

best-cpu-hour:  ## the recipe: DRL tuned for one CPU hour (60 min of training, ~70 min)
	diffrep fit --config configs/recipes/best_cpu_hour.yaml

lint:
	ruff check diffrep tests benchmarks
