import math

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
