"""`diffrep fit`, `diffrep test` (the full evaluation suite and its report) and `diffrep predict`
as a user runs them, on a tiny autoencoder and the 8x8 digits (seconds, offline)."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, run_cli, write_tiny_autoencoder_config
from test_cli import diffrep

from diffrep.evaluation.extractor import SmallClassifier, save_classifier

if "compare" not in sys.modules:  # benchmarks/compare.py reads the reports these tests pin
    _spec = importlib.util.spec_from_file_location("compare", REPO / "benchmarks/compare.py")
    sys.modules["compare"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["compare"])
compare = sys.modules["compare"]

EVAL = """
trainer:
  callbacks:
    - class_path: diffrep.callbacks.LinearProbe
      init_args: {{max_train: 800, max_test: 200}}
    - class_path: diffrep.callbacks.FewLabelProbe
      init_args: {{labels_per_class: [1, 5], seeds: [0, 1], max_train: 800, max_test: 200}}
    - class_path: diffrep.callbacks.LatentPlot
      init_args: {{max_test: 200}}
    - class_path: diffrep.callbacks.ReconstructionMetrics
      init_args: {{num_images: 64}}
    - class_path: diffrep.callbacks.FID
      init_args: {{num_images: 100, weights_path: {extractor}}}
    - class_path: diffrep.callbacks.ReconstructionGrid
      init_args: {{num_images: 8}}
"""


@pytest.fixture()
def configs(tmp_path):
    torch.manual_seed(0)
    save_classifier(SmallClassifier(width=8, feature_dim=16), tmp_path / "extractor.pt")
    write_tiny_autoencoder_config(tmp_path / "model.yaml", tmp_path / "run", max_steps=40)
    (tmp_path / "eval.yaml").write_text(EVAL.format(extractor=tmp_path / "extractor.pt"))
    return tmp_path / "model.yaml", tmp_path / "eval.yaml"


@pytest.mark.slow
def test_fit_then_test_writes_the_full_report_and_predict_exports_codes(configs, tmp_path, capsys, monkeypatch):
    model_cfg, eval_cfg = configs
    out = diffrep("fit", "--config", str(model_cfg), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    assert ckpt.is_file()
    fitted = json.loads((tmp_path / "run/metrics.json").read_text())  # every fit says what it learned
    assert fitted["stage"] == "fit" and fitted["global_step"] == 40 and fitted["checkpoint"] == str(ckpt)
    assert "train/loss" in fitted["metrics"] and (tmp_path / "run/report.md").is_file()
    assert "what Autoencoder on DigitsDataModule learned (step 40)" in out.stdout

    out = diffrep("test", "--config", str(model_cfg), "--config", str(eval_cfg), "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    noise = ("litmodels", "Be aware that when using `ckpt_path`")  # Lightning's tip; the fit-resume warning
    assert not [n for n in noise if n in out.stdout + out.stderr], out.stderr[-3000:]
    report = json.loads((tmp_path / "run/checkpoints/last.report.json").read_text())
    metrics = report["metrics"]
    assert report["method"] == "Autoencoder" and report["checkpoint"] == str(ckpt) and report["global_step"] == 40
    for key in (
        "probe/linear_accuracy",
        "probe/knn_accuracy",
        "probe/few_label_1_mean",
        "probe/few_label_5_mean",
        "recon/inverted_mse",
        "recon/inverted_psnr",
        "recon/inverted_ssim",
        "fid/reconstructions",
        "test/recon_mse",
    ):
        assert key in metrics, key
    assert "fid/samples" not in metrics  # a plain autoencoder cannot sample: skipped, not an error
    assert metrics["probe/linear_accuracy"] > 0.7, metrics  # 10 digit classes: chance is 0.1
    from diffrep.datamodules import DigitsDataModule
    from diffrep.evaluation.fid import frechet_distance

    test_images = DigitsDataModule(image_size=16).load_split("test")[0][:100].float() / 127.5 - 1
    noise_fid = frechet_distance(torch.rand_like(test_images) * 2 - 1, test_images,
                                 weights_path=str(tmp_path / "extractor.pt"))
    assert 0 < metrics["fid/reconstructions"] < noise_fid / 2, (metrics["fid/reconstructions"], noise_fid)
    assert (
        abs(metrics["recon/inverted_psnr"] - 10 * np.log10(1 / metrics["recon/inverted_mse"])) < 3
    )  # mean of logs vs log of mean
    md = (tmp_path / "run/checkpoints/last.report.md").read_text()
    assert "| linear_accuracy |" in md and "what Autoencoder on DigitsDataModule learned" in out.stdout
    assert "| few_label | " in md and " ± " in md  # k labels per class as a paper's table
    images = list((tmp_path / "run/images").glob("test_reconstructions_*.png"))
    assert images and f"](../images/{images[0].name})" in md and f"image: {images[0]}" in out.stdout

    code = run_cli("test", "--config", model_cfg, "--config", eval_cfg, "--ckpt_path", ckpt, cwd=tmp_path,
                   capsys=capsys, monkeypatch=monkeypatch)[0]  # a second evaluation never overwrites the first report
    assert code == 0 and (tmp_path / "run/checkpoints/last.report-v1.json").is_file()
    assert (tmp_path / "run/checkpoints/last.report.md").read_text() == md
    assert compare.latest_test_report(tmp_path / "run", from_checkpoint=True).name == "last.report-v1.json"

    out = diffrep("predict", "--config", str(model_cfg), "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    codes = np.load(tmp_path / "run/checkpoints/last.codes.npz")
    assert codes["codes"].shape == (297, 8) and codes["labels"].shape == (297,)
    from diffrep.datamodules import DigitsDataModule

    assert np.array_equal(codes["labels"], DigitsDataModule(image_size=16).load_split("test")[1].numpy())


def test_pixel_and_pca_baselines_need_no_training(configs, tmp_path, capsys, monkeypatch):
    _, eval_cfg = configs
    for name in ("pixels", "pca"):
        code, _, err = run_cli(
            "test", "--config", REPO / f"configs/baselines/{name}.yaml", "--config", eval_cfg,
            "--data", REPO / "configs/data/digits.yaml", "--model.init_args.image_shape", "[1, 16, 16]",
            *(["--model.init_args.num_components", "16"] if name == "pca" else []),
            "--trainer.default_root_dir", tmp_path / name, "--trainer.enable_progress_bar", "false",
            cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
        )
        assert code == 0, err[-3000:]
        report_path = tmp_path / name / "test_report.json"
        metrics = json.loads(report_path.read_text())["metrics"]
        assert compare.latest_test_report(tmp_path / name, from_checkpoint=False) == report_path
        assert metrics["probe/linear_accuracy"] > 0.8, name
        assert ("recon/inverted_mse" in metrics) == (name == "pca")
        assert ("fid/samples" in metrics) == (name == "pca")


def test_fid_without_the_extractor_stops_before_training_with_the_command(configs, tmp_path, capsys, monkeypatch):
    model_cfg, eval_cfg = configs
    eval_cfg.write_text(EVAL.format(extractor=tmp_path / "missing.pt"))
    code, _, err = run_cli("fit", "--config", model_cfg, "--config", eval_cfg, cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 2 and "python -m diffrep.evaluation.extractor" in err
    assert not (tmp_path / "run/checkpoints").exists()
