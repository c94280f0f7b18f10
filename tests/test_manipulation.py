import math

import pytest
import torch

from diffrep.evaluation.linear import fit_logistic_regression
from diffrep.manipulation import fit_attribute_directions, fit_code_direction


def test_logistic_regression_separates_separable_data_and_not_random_labels():
    torch.manual_seed(0)
    x = torch.randn(600, 5)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0]) > 0).long()
    clf = fit_logistic_regression(x[:400], y[:400], l2=1e-4)
    assert (clf.predict(x[400:]) == y[400:]).float().mean() > 0.97
    noise_labels = torch.randint(0, 4, (600,))
    clf = fit_logistic_regression(x[:400], noise_labels[:400], l2=1e-2)
    assert abs((clf.predict(x[400:]) == noise_labels[400:]).float().mean().item() - 0.25) < 0.1


def test_code_direction_points_to_the_class_and_has_the_documented_length():
    torch.manual_seed(0)
    d = 16
    codes = torch.randn(1000, d) * torch.linspace(0.5, 3, d) + 5
    labels = (codes[:, 3] > 5).long()  # class 1: high value in dimension 3
    direction = fit_code_direction(codes, labels, positive=1)
    assert direction.unit.abs().argmax().item() == 3 and direction.unit[3] > 0
    z = codes[:10]
    torch.testing.assert_close(direction.edit(z, 0.0), z)
    moved = direction.standardiser(direction.edit(z, 0.5)) - direction.standardiser(z)
    torch.testing.assert_close(moved.norm(dim=1), torch.full((10,), 0.5 * math.sqrt(d)))
    assert (direction.edit(z, 0.5)[:, 3] > z[:, 3]).all()


def test_the_official_multi_attribute_classifier_gives_one_direction_per_attribute():
    """ckczzj/PDAE train_manipulation.py: Linear(d, A) with a BCE per attribute, trained by Adam."""
    torch.manual_seed(0)
    codes = torch.randn(2000, 8) * 2 + 1
    attributes = torch.stack([codes[:, 2] > 1, codes[:, 5] < 1, torch.rand(2000) < 0.5], dim=1).long()
    directions = fit_attribute_directions(codes, attributes, lr=1e-2, epochs=10)
    assert [d.unit.abs().argmax().item() for d in directions[:2]] == [2, 5]
    assert directions[0].unit[2] > 0 and directions[1].unit[5] < 0  # towards the attribute being present
    assert directions[2].unit.abs().max() < 0.9  # a random attribute has no single direction
    for d in directions:
        torch.testing.assert_close(d.unit.norm(), torch.tensor(1.0))
    labels = (codes[:, 3] > 1).long() + 2 * (codes[:, 0] > 2).long()  # 4 classes
    towards = fit_code_direction(codes, labels, positive=2, classifier="bce")
    assert towards.unit.abs().argmax().item() in (0, 3) and towards.unit[0] > 0


def editable(name, tiny_pdae_checkpoint):
    """A model of each method with a static code, with non-zero weights everywhere (a fresh U-Net's
    zero output head would decode every code alike)."""
    from conftest import make_drl

    from diffrep.lightning_modules import DRL, VDRL, DiffAE
    from diffrep.lightning_modules.loading import load_pdae

    if name == "PDAE":
        return load_pdae(tiny_pdae_checkpoint)
    model = make_drl({"DRL": DRL, "VDRL": VDRL, "DiffAE": DiffAE}[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("name", ["PDAE", "DRL", "VDRL", "DiffAE"])
def test_edits_work_on_every_method_with_a_static_code(name, tiny_pdae_checkpoint):
    """Scale 0 reproduces the reconstruction (the image's own inverted x_T, its own code); a move
    along the direction changes the image, and further moves change it more."""
    from conftest import digits

    model = editable(name, tiny_pdae_checkpoint)
    data = digits()
    data.setup()
    train = data.splits["train"]
    images, labels = torch.stack([train[i][0] for i in range(300)]), train.labels[:300]
    direction = fit_code_direction(model.encode(images), labels, positive=1)
    x0 = images[labels != 1][:3]
    edits = model.manipulate(x0, direction, [0.0, 0.5, 1.5], num_steps=4)
    assert edits.shape == (3, 3, 1, 16, 16)
    # edit(z, 0) is z up to the standardiser's rounding, which 4 DDIM steps carry to ~1e-4 at most
    # (measured: 3e-6 PDAE ... 1.1e-4 Diff-AE in one thread); the smallest move, Diff-AE's, is 0.015
    torch.testing.assert_close(edits[0], model.reconstruct(x0, num_steps=4), rtol=0, atol=5e-4)
    moved = [(edits[i] - edits[0]).abs().mean().item() for i in (1, 2)]
    assert 5e-3 < moved[0] < moved[1], moved


def test_a_time_dependent_code_and_a_baseline_are_skipped_by_the_edit_grid_with_a_warning(tmp_path):
    """Neither can move one code vector: the grid is skipped with UnsupportedOperation's warning,
    before any code is encoded, and training goes on."""
    from conftest import digits, make_drl, quiet_trainer

    from diffrep.callbacks import ManipulationGrid
    from diffrep.lightning_modules import Autoencoder
    from diffrep.lightning_modules.api import UnsupportedOperation

    time_dependent = make_drl(code={"time_dependent": True})
    with pytest.raises(UnsupportedOperation, match="time-dependent"):
        time_dependent.manipulate(torch.zeros(1, 1, 16, 16), None, [0.0])
    baseline = Autoencoder(image_shape=(1, 16, 16), latent_dim=8,
                           encoder={"kind": "conv", "channels": [16, 32], "num_groups": 8, "num_heads": 1},
                           decoder_channels=[32, 16])
    for model, reason in ((time_dependent, "time-dependent"), (baseline, "cannot decode an edited code")):
        grid = ManipulationGrid(num_codes=100, num_steps=2, num_images=2, positive_class=1)
        with pytest.warns(UserWarning, match=f"ManipulationGrid skipped: .*{reason}"):
            quiet_trainer(tmp_path, max_steps=1, callbacks=[grid]).fit(model, datamodule=digits(subset=128))
        assert grid.last_path is None
