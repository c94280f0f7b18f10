"""SimCLR and SimCLR-Gauss: the NT-Xent loss against hand-computed values, the views, and training."""

import math

import pytest
import torch
from conftest import digits, fit_plain

from diffrep.lightning_modules import SimCLR
from diffrep.lightning_modules.contrastive import gauss_view, nt_xent, random_resized_crop, standard_view


def test_nt_xent_matches_its_closed_form():
    # two images, views identical and orthogonal to the other image: each row's positive has
    # similarity 1/tau, its two negatives 0 -> loss = -log(e^{1/tau} / (e^{1/tau} + 2))
    z = torch.eye(2, 4)
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert nt_xent(z, z.clone(), tau).item() == pytest.approx(expected, rel=1e-6)
    # positives that point away from each other cost more than any negatives
    assert nt_xent(z, -z, tau) > nt_xent(z, z, tau)


def test_views_keep_shape_and_range_and_the_gauss_view_only_adds_noise():
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    for view in (standard_view(x), random_resized_crop(x)):
        assert view.shape == x.shape and view.min() >= -1 and view.max() <= 1
    full = random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(full, x, atol=1e-5, rtol=0)  # the whole image, resized to itself
    noisy = gauss_view(x, (0.3, 0.3))
    assert abs((noisy - x).std().item() - 0.3) < 0.03


@pytest.mark.parametrize("views", ["standard", "gauss"])
def test_simclr_loss_goes_down_and_encodes_to_its_code_width(views):
    torch.manual_seed(0)
    model = SimCLR(image_shape=(1, 16, 16), latent_dim=8, views=views,
                   encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1},
                   optimisation={"lr": 2e-3})
    losses = fit_plain(model, digits(batch_size=64), 60)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.2
    assert model.encode(torch.zeros(3, 1, 16, 16)).shape == (3, 8)
    with pytest.raises(ValueError, match="unknown views"):
        SimCLR(views="colour")
