"""LaplaceNet: graph pseudo-labels, augmentations, composite batches, the start from a DRL encoder,
check_t, a real fit on the digits, exact resume and clear errors."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, make_drl, quiet_trainer, run_cli

from diffrep.datamodules import DigitsDataModule, LaplaceNetDataModule
from diffrep.datamodules.augmentations import augment
from diffrep.datamodules.laplacenet import LaplaceNetBatches
from diffrep.evaluation.graph_pseudo_labels import graph_pseudo_labels, nearest_by_inner_product
from diffrep.lightning_modules import VDRL, LaplaceNet
from diffrep.lightning_modules.encoder_transfer import classifier_from
from diffrep.lightning_modules.laplacenet_steps import FitClock, cosine_rampdown, mixup_draw, mixup_loss

WRN = {"depth": 10, "widen_factor": 1}


def clusters(n_per: int, centres: np.ndarray, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n_per)
    return (centres[labels] + spread * rng.normal(size=(len(labels), centres.shape[1]))).astype(np.float32), labels


def test_two_separated_clusters_with_one_label_each_get_every_pseudo_label_right():
    centres = np.zeros((2, 8))
    centres[0, 0], centres[1, 1] = 1.0, 1.0  # orthogonal directions: far apart by inner product
    x, y = clusters(100, centres, 0.05)
    result = graph_pseudo_labels(x, y, np.array([0, 100]), 2, knn=10)
    assert result.accuracy == 1.0 and (result.labels == y).all()
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-12)  # rows normalised to sum 1 (official p = 1)
    assert result.weights[[0, 100]].tolist() == [1.0, 1.0] and (result.weights[1:100] > 0.5).all()


def test_shuffled_labels_give_chance():
    rng = np.random.default_rng(1)
    x, y = clusters(60, rng.normal(size=(10, 16)) * 3, 0.5)
    labelled = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(10)])
    shuffled = y.copy()
    shuffled[labelled] = rng.permutation(y[labelled])
    right = graph_pseudo_labels(x, y, labelled, 10, knn=10).accuracy
    wrong = (graph_pseudo_labels(x, shuffled, labelled, 10, knn=10).labels == y)[np.setdiff1d(range(600), labelled)]
    assert right > 0.95 and abs(wrong.mean() - 0.1) < 0.08


def test_faiss_and_exact_torch_neighbours_agree():
    x = np.random.default_rng(0).normal(size=(500, 12)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims_f, idx_f = nearest_by_inner_product(x, 7, "faiss")
    sims_t, idx_t = nearest_by_inner_product(x, 7, "torch")
    assert (idx_f == idx_t).mean() > 0.999 and np.abs(sims_f - sims_t).max() < 1e-5


def test_augmentations_are_a_function_of_their_seed_and_keep_shape_and_dtype():
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)
    draw = [augment(image, 2, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert draw[0].shape == image.shape and draw[0].dtype == torch.uint8
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])
    rgb = augment(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), 1, torch.Generator().manual_seed(3))
    assert rgb.shape == (3, 32, 32)


def test_batches_follow_the_official_schedule():
    labelled, unlabelled = np.arange(20), np.arange(20, 120)
    plan = LaplaceNetBatches(labelled, unlabelled, batch_size=10, labelled_batch_size=4, warmup_epochs=2,
                             warmup_passes=3, seed=0)
    warm = plan(0)
    assert len(warm) == 3 * 2 and all(len(b) == 10 and all(i < 20 for i, _ in b) for b in warm)
    semi = plan(2)
    assert len(semi) == 100 // 6
    assert all(all(i < 20 for i, _ in b[:4]) and all(i >= 20 for i, _ in b[4:]) for b in semi)
    seen = [i for b in semi for i, _ in b[4:]]
    assert len(seen) == len(set(seen)) == 96  # each unlabelled image at most once; the rest dropped
    assert plan(2) == semi and plan(3) != semi  # a function of (seed, epoch)
    assert [i for b in plan(3) for i, _ in b[4:]] != seen  # each epoch its own order of the unlabelled images


def test_cosine_rampdown_and_mixup_loss_closed_forms():
    assert cosine_rampdown(0, 30) == 1.0 and cosine_rampdown(15, 30) == pytest.approx(0.5)
    assert cosine_rampdown(10, 40) == pytest.approx(0.5 * (math.cos(math.pi / 4) + 1))
    logits, y = torch.randn(6, 4), torch.randint(4, (6,))
    perm = torch.randperm(6)
    assert mixup_loss(logits, y, perm, 1.0).item() == pytest.approx(F.cross_entropy(logits, y).item())
    mixed = 0.3 * F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(logits, y[perm])
    assert mixup_loss(logits, y, perm, 0.3).item() == pytest.approx(mixed.item())


def test_mixup_draws_repeat_per_step_and_the_fit_clock_counts_resumed_minutes():
    lam, perm = mixup_draw(0, 0, 7, 8, 1.0, mixup=True)
    again, perm_again = mixup_draw(0, 0, 7, 8, 1.0, mixup=True)
    assert lam == again and torch.equal(perm, perm_again) and sorted(perm.tolist()) == list(range(8))
    assert mixup_draw(0, 0, 8, 8, 1.0, mixup=True)[0] != lam  # another step, another draw
    assert torch.equal(mixup_draw(0, 0, 7, 8, 1.0, mixup=False)[1], torch.arange(8))
    clock = FitClock()
    clock.resume_from(2.5)  # a checkpoint's 2.5 minutes come before this process's
    assert 2.5 <= clock.minutes() < 2.6


@pytest.fixture(scope="module")
def vdrl_time_wrn_checkpoint(tmp_path_factory) -> str:
    """A VDRL with the time-conditioned WRN (so a code head the classifier has no use for), trained 3 steps
    with EMA so raw and EMA weights differ."""
    from conftest import digits

    root = tmp_path_factory.mktemp("vdrl_wrn")
    model = make_drl(VDRL, code={"time_dependent": True}, ema={"decay": 0.5}, encoder={"kind": "wrn", **WRN})
    trainer = quiet_trainer(root, max_steps=3)
    trainer.fit(model, datamodule=digits(batch_size=16))
    trainer.save_checkpoint(root / "vdrl.ckpt")
    return str(root / "vdrl.ckpt")


def test_the_start_from_a_drl_checkpoint_loads_every_matching_key_and_sets_param_t(vdrl_time_wrn_checkpoint):
    checkpoint = torch.load(vdrl_time_wrn_checkpoint, weights_only=True)
    raw = {k.removeprefix("encoder."): v for k, v in checkpoint["state_dict"].items() if k.startswith("encoder.")}
    ema = {k: checkpoint["state_dict"]["ema.encoder__" + k.replace(".", "__")] for k in raw
           if "ema.encoder__" + k.replace(".", "__") in checkpoint["state_dict"]}
    for weights, source in (("raw", raw), ("ema", {**raw, **ema})):
        classifier, record = classifier_from(vdrl_time_wrn_checkpoint, 10, weights, init_t=0.3)
        state = classifier.backbone.state_dict()
        loaded = [k for k in state if k != "param_t"]
        assert loaded and all(torch.equal(state[k], source[k]) for k in loaded), weights
        assert state["param_t"].item() == pytest.approx(math.log(0.3 / 0.7))
        assert "head.weight" in raw and "head.weight" not in state and record["left_at_init"] == []
        assert classifier(torch.randn(2, 1, 16, 16))[0].shape == (2, 10)
    assert any(not torch.equal(raw[k], ema[k]) for k in ema)  # the two options differ


def test_a_static_encoder_gives_its_code_to_the_head(tiny_drl_checkpoint):
    classifier, record = classifier_from(str(tiny_drl_checkpoint), 10)
    assert classifier.feature_dim == 8 and record["weights"] == "raw"
    assert classifier(torch.randn(3, 1, 16, 16))[1].shape == (3, 8)


def laplacenet_digits(subset: int | None = None, **data) -> LaplaceNetDataModule:
    kwargs = dict(labels_per_class=5, batch_size=50, labelled_batch_size=25, aug_num=1, warmup_epochs=5,
                  warmup_passes=10, crop_padding=2)
    kwargs.update(data)
    return LaplaceNetDataModule(DigitsDataModule(image_size=16, val_size=300, batch_size=64, subset=subset), **kwargs)


class ValidationCurve(L.Callback):
    def __init__(self) -> None:
        self.accuracy: list[float] = []
        self.pseudo: list[float] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.accuracy.append(float(trainer.callback_metrics["val/accuracy"]))
        if "pseudo/accuracy" in trainer.callback_metrics:
            self.pseudo.append(float(trainer.callback_metrics["pseudo/accuracy"]))


def test_laplacenet_on_the_digits_beats_its_own_supervised_warmup(tmp_path):
    """50 labels; 5 warm-up epochs, then 7 semi-supervised ones (~18 s): held-out accuracy at the end of
    the warm-up against after the pseudo-labelled epochs."""
    L.seed_everything(0)
    data, curve = laplacenet_digits(), ValidationCurve()
    model = LaplaceNet(encoder={"kind": "wrn", **WRN}, image_size=16, pseudo_labels={"knn": 10})
    trainer = quiet_trainer(tmp_path, max_epochs=12, limit_val_batches=None, callbacks=[curve])
    trainer.fit(model, datamodule=data)
    # one epoch's accuracy on 300 images moves by up to 0.13 with the CPU's kernels and thread count
    # (measured on an AVX2 CPU: last epochs 0.73, 0.76 in one thread; 0.78, 0.64 in two): the mean of
    # the last three epochs against the best warm-up epoch (0.47 in both)
    best_warmup, late = max(curve.accuracy[:5]), float(np.mean(curve.accuracy[-3:]))
    assert late > best_warmup + 0.15 and late > 0.65, curve.accuracy
    assert len(curve.pseudo) == 7 and curve.pseudo[-1] > 0.8
    assert trainer.test(model, datamodule=data, verbose=False)[0]["test/accuracy"] > best_warmup + 0.1


def test_check_t_chooses_on_the_training_loss_and_never_reads_the_test_split(tmp_path, monkeypatch):
    def spy(*args, **kwargs):
        raise AssertionError("check_t read the test split")

    monkeypatch.setattr(DigitsDataModule, "test_dataloader", spy)
    data = laplacenet_digits(subset=400, warmup_epochs=1, warmup_passes=2)
    data.setup()
    monkeypatch.setattr(data.source.splits["test"], "__getitem__", spy)
    model = LaplaceNet(encoder={"kind": "wrn", **WRN}, image_size=16, pseudo_labels={"knn": 10},
                       choose_t={"enabled": True, "candidates": (0.2, 0.8), "epochs": 2})
    quiet_trainer(tmp_path, max_epochs=1).fit(model, datamodule=data)
    assert model.chosen_t in (0.2, 0.8) and data.batches.warmup_epochs == 0


def test_resume_mid_epoch_continues_bit_identically(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def run(ckpt: str | None = None) -> LaplaceNet:
        model = LaplaceNet(encoder={"kind": "wrn", **WRN}, image_size=16, pseudo_labels={"knn": 10}, seed=3)
        saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=7, save_top_k=-1)
        trainer = quiet_trainer(tmp_path, max_steps=12, max_epochs=4, enable_checkpointing=True, callbacks=[saver])
        trainer.fit(model, datamodule=laplacenet_digits(subset=400, warmup_epochs=1, warmup_passes=2),
                    ckpt_path=ckpt)
        return model

    torch.manual_seed(0)
    straight = run()  # 2 warm-up steps, then an epoch of 14 composite steps: saved at step 7, inside it
    saved = tmp_path / "ckpt/epoch=1-step=7.ckpt"
    torch.manual_seed(123)  # a resumed run must not depend on the global RNG
    resumed = run(str(saved))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_an_encoder_checkpoint_of_the_wrong_kind_or_missing_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "not_an_encoder.pt")
    for path, text in ((tmp_path / "not_an_encoder.pt", "holds no encoder"), (tmp_path / "missing.ckpt",
                                                                              "does not exist")):
        code, _, err = run_cli("fit", "--config", REPO / "configs/laplacenet.yaml", "--model.init_args."
                               "start.checkpoint", path, "--trainer.logger", "false", cwd=tmp_path, capsys=capsys,
                               monkeypatch=monkeypatch)
        assert code == 2 and text in err and str(path) in err, err[-2000:]
        assert len(err.strip().splitlines()) == 1, err
