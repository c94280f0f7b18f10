"""DRL's NCSN++ score net (``DRL(network={"kind": "ncsnpp"})``, ``diffrep.nets.ncsnpp``): the paper config's
parameter count against the official model's, the code's two paths as the only way z enters, the
official state-dict names, the eps convention, a tiny fit with every evaluation callback, and a
checkpoint that loads back. Equality with korabs-x/representation_score_based on shared weights
(network, loss, gradients, 5 training steps) is benchmarks/official_parity.py --drl."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import REPO, digits, fit_plain, fit_with_every_evaluation_callback, quiet_trainer, with_defaults

from diffrep.callbacks import TimeCodeProbe
from diffrep.errors import ConfigError
from diffrep.lightning_modules import DRL, VDRL
from diffrep.nets.ncsnpp import NCSNpp, NCSNppConfig
from diffrep.nets.ncsnpp_official import split_official_state_dict

TINY = dict(in_channels=1, image_size=16, base_channels=8, channel_mult=[1, 2, 2], num_res_blocks=1,
            attention_resolutions=[8], dropout=0.0)


def tiny_drl(**kwargs) -> DRL:
    torch.manual_seed(0)
    defaults = dict(network=dict(TINY, kind="ncsnpp"), encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8,
                                                                "num_heads": 1},
                    code={"latent_dim": 8}, optimisation={"lr": 2e-3}, ema={"decay": 0.9})
    return DRL(**with_defaults(defaults, kwargs))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_paper_configs_have_the_official_models_parameter_count():
    """score_sde's NCSNpp at cifar10_ncsnpp_small_continuous with include_encoder, counted on the
    official model: 2,826,993 parameters, of which its WRN-28-2's 10-class head (1,290) and the
    WRN's fixed Fourier frequencies (16, a parameter there, a buffer here) are not in diffrep's."""
    for name, cls in (("drl_cifar10", DRL), ("vdrl_cifar10", VDRL)):
        args = yaml.safe_load((REPO / f"configs/{name}.yaml").read_text())["model"]["init_args"]
        model = cls(**{**args, "fast": None})
        assert isinstance(model.unet, NCSNpp) and model.time_dependent
        assert count(model.unet) == 938_915  # without the reconstruction decoder the paper's loss never uses
    full = DRL(**{**args, "fast": None, "code": {**args["code"], "variational": False},
                  "network": {**args["network"], "reconstruction_decoder": True}})
    assert count(full.unet) == 1_292_822 and count(full.encoder) == 1_532_865
    assert count(full.unet) + count(full.encoder) + 1_290 + 16 == 2_826_993
    assert len(full.unet.all_modules) == 41 and len(full.unet.decoder.all_modules) == 21  # the official indices


def test_the_code_enters_only_through_latent_to_temb():
    net = NCSNpp(NCSNppConfig(**{k: v for k, v in TINY.items()}), z_dim=8)
    with torch.no_grad():
        for p in net.parameters():  # every weight non-zero, the ~0-initialised output convs included
            p.add_(torch.randn_like(p) * 0.05)
    x, sigma = torch.randn(2, 1, 16, 16), torch.tensor([0.05, 20.0])
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    assert (net(x, sigma, z1) - net(x, sigma, z2)).abs().max() > 1e-3
    assert net.z_map(net.embed(sigma, z1)).shape == (2, 16, 4, 4)  # 2 nf channels at the lowest resolution
    with torch.no_grad():
        net.latent_to_temb.weight.zero_()
        net.latent_to_temb.bias.zero_()
    torch.testing.assert_close(net(x, sigma, z1), net(x, sigma, z2), rtol=0, atol=0)
    with pytest.raises(ValueError, match="pass z"):
        net(x, sigma)


def test_an_official_state_dict_splits_into_the_encoder_and_the_score_net():
    """Official names (score_sde's Wide_ResNet inside NCSNpp) map onto TimeWideResNet's and NCSNpp's."""
    model = DRL(
        code={"latent_dim": 64, "time_dependent": True},
        network={**dict(TINY, in_channels=3, reconstruction_decoder=True), "kind": "ncsnpp"},
        encoder={"kind": "wrn", "depth": 10, "widen_factor": 1},
    )
    official = {
        f"encoder.{k}": v
        for k, v in {
            "time_embedding.param_t": torch.tensor(0.5),
            "time_embedding.all_modules.0.W": torch.ones(16),
            "time_embedding.all_modules.1.weight": torch.ones(64, 32),
            "conv1.weight": torch.ones(16, 3, 3, 3),
            "layer1.0.conv1.weight": torch.ones(16, 16, 3, 3),
            "layer2.0.Dense_0.weight": torch.ones(32, 64),
            "layer2.0.shortcut.0.weight": torch.ones(32, 16, 1, 1),
            "layer3.0.bn1.weight": torch.ones(32),
            "bn1.running_mean": torch.ones(64),
            "linear.weight": torch.ones(10, 64),
        }.items()
    }
    official.update(
        {
            "sigmas": torch.ones(1000),
            "decoder.sigmas": torch.ones(1000),
            **{k: v.clone() for k, v in model.unet.state_dict().items()},
        }
    )
    encoder, net = split_official_state_dict(official)
    assert sorted(encoder) == [
        "blocks.0.conv1.weight",
        "blocks.1.shortcut.weight",
        "blocks.1.time_bias.weight",
        "blocks.2.bn1.weight",
        "bn.running_mean",
        "conv1.weight",
        "param_t",
        "time_embedding.frequencies",
        "time_embedding.net.0.weight",
    ]
    ours = model.encoder.state_dict()
    assert all(ours[k].shape == v.shape for k, v in encoder.items())
    assert model.unet.load_state_dict(net, strict=True)  # the score net's names are the official ones


def test_the_score_net_takes_x_t_and_sigma_and_predicts_minus_eps():
    model = tiny_drl().eval()
    with torch.no_grad():
        for p in model.unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x_t, t, z = torch.randn(3, 1, 16, 16) * 5, torch.tensor([0.1, 0.5, 0.9]), torch.randn(3, 8)
    sigma = 0.01 * 5000.0**t
    torch.testing.assert_close(model.eps(x_t, t, z), -model.unet(x_t, sigma, z))


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="network kind 'ncsn'"):
        DRL(network={"kind": "ncsn"})
    with pytest.raises(ConfigError, match="z_mode"):
        tiny_drl(network={"z_mode": "scale"})
    with pytest.raises(ConfigError, match="progressive_input"):
        tiny_drl(network=dict(TINY, progressive_input="input_skip"))
    with pytest.raises(ConfigError, match="divisible"):
        tiny_drl(network=dict(TINY, image_size=18))
    with pytest.raises(ConfigError, match="reconstruction_decoder"):
        tiny_drl().unet.reconstruct(torch.ones(1), torch.zeros(1, 8))


def test_a_tiny_ncsnpp_drl_learns_runs_every_evaluation_callback_and_loads_back(tmp_path):
    model = tiny_drl()
    losses = fit_plain(model, digits(batch_size=32), 60)
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10, losses
    trainer = fit_with_every_evaluation_callback(model, tmp_path, latent_plot=False)
    trainer.save_checkpoint(tmp_path / "drl.ckpt")
    loaded = DRL.load_from_checkpoint(tmp_path / "drl.ckpt", weights_only=False)
    assert isinstance(loaded.unet, NCSNpp)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)


def test_a_time_dependent_wrn_code_with_ncsnpp_runs_the_time_probe(tmp_path):
    model = tiny_drl(
        code={"latent_dim": 64, "time_dependent": True}, encoder={"kind": "wrn", "depth": 10, "widen_factor": 1}
    )
    probe = TimeCodeProbe(grid=2, svm_labels=20, seeds=(0,), max_train=100, max_test=60)
    trainer = quiet_trainer(tmp_path, max_steps=3, callbacks=[probe])
    trainer.fit(model, datamodule=digits(batch_size=16, subset=64))
    expected = {f"probe_t/{p}_t{t:.2f}" for p in ("linear", "svm_20") for t in (0, 0.5, 1)}
    expected |= {"probe_t/linear_joined", "probe_t/svm_20_joined"}
    assert set(probe.last) == expected, sorted(probe.last)  # every t of the grid and the joined code
    assert all(0 <= v <= 1 for v in probe.last.values())
