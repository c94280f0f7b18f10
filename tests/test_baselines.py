"""The baselines: PCA math, an autoencoder/VAE that learn, and the shared evaluation API."""

import pytest
import torch
from conftest import digits, quiet_trainer

from diffrep.lightning_modules import VAE, Autoencoder, PCABaseline, PixelBaseline
from diffrep.lightning_modules.api import UnsupportedOperation

SMALL = dict(
    image_shape=(1, 16, 16),
    latent_dim=8,
    encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1},
    decoder_channels=(32, 16),
    num_groups=8,
)


def test_pca_with_all_components_reconstructs_exactly_and_scores_are_decorrelated():
    x = torch.randn(200, 1, 4, 4) @ torch.randn(4, 4) * 0.3
    pca = PCABaseline(image_shape=(1, 4, 4), num_components=16)
    pca.fit(x)
    assert torch.allclose(pca.decode_codes(pca.encode(x)), x, atol=1e-4)
    z = pca.encode(x)
    cov = torch.cov(z.T)
    assert torch.allclose(cov, torch.diag(torch.diag(cov)), atol=1e-4)
    assert torch.all(torch.diag(cov)[:-1] >= torch.diag(cov)[1:] - 1e-6)  # ordered by variance
    assert torch.allclose(torch.diag(cov).sqrt(), pca.scale, rtol=1e-3)


def test_pca_refuses_more_components_than_data_allows():
    with pytest.raises(ValueError, match="num_components"):
        PCABaseline(image_shape=(1, 4, 4), num_components=16).fit(torch.randn(8, 1, 4, 4))


def test_pca_fits_itself_from_the_datamodule_in_a_test_run(tmp_path):
    pca = PCABaseline(image_shape=(1, 16, 16), num_components=10)
    quiet_trainer(tmp_path).test(pca, datamodule=digits(subset=300))
    assert pca.fitted() and pca.encode(torch.zeros(2, 1, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
def test_autoencoders_learn_and_answer_the_evaluation_api(cls, tmp_path):
    torch.manual_seed(0)
    model = cls(optimisation={"lr": 3e-3}, **SMALL)
    data = digits(subset=512)
    data.setup()
    x = torch.stack([data.splits["val"][i][0] for i in range(32)])
    before = torch.nn.functional.mse_loss(model.reconstruct(x), x).item()
    quiet_trainer(tmp_path, max_steps=120).fit(model, datamodule=data)
    after = torch.nn.functional.mse_loss(model.reconstruct(x), x).item()
    assert after < 0.6 * before
    assert model.encode(x).shape == (32, 8) and model.interpolate(x[0], x[1], 5).shape == (5, 1, 16, 16)
    if cls is VAE:
        assert model.sample(3).shape == (3, 1, 16, 16)
    else:
        with pytest.raises(UnsupportedOperation, match="VAE"):
            model.sample(3)


def test_pixel_codes_are_the_pixels_and_mismatched_data_is_refused(tmp_path):
    model = PixelBaseline(image_shape=(1, 16, 16))
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(model.encode(x), x.flatten(1))
    with pytest.raises(ValueError, match="image_size 16"):
        quiet_trainer(tmp_path).test(model, datamodule=digits(image_size=8))


def test_the_vae_built_from_its_config_is_variational():
    """jsonargparse fills a ``**kwargs`` signature with the parent's defaults; the VAE must not
    silently become a plain autoencoder when built by the CLI."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(VAE, "model")
    config = parser.parse_args(["--model.latent_dim", "8"])
    model = parser.instantiate(config).model
    assert model.variational and model.encoder(torch.zeros(2, 1, 32, 32)).shape == (2, 16)
    assert "variational" not in config.model
