import math

import torch

from diffrep.evaluation.linear import fit_logistic_regression
from diffrep.manipulation import fit_code_direction


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
