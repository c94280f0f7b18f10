"""DRL as the paper built it: the time-conditioned WRN encoder, NCSN++ code injection, the summed loss."""

import pytest
import torch
from conftest import make_drl, tiny_unet_config

from diffrep.lightning_modules import DRL, VDRL
from diffrep.nets.unet import UNet
from diffrep.nets.wrn import TimeWideResNet


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_wrn28_2_has_the_official_size_and_layout():
    encoder = TimeWideResNet(in_channels=3, depth=28, widen_factor=2)
    assert count(encoder) == pytest.approx(1.53e6, rel=0.005)
    assert count(TimeWideResNet(in_channels=3, out_dim=256)) == pytest.approx(1.57e6, rel=0.005)  # VDRL head
    assert len(encoder.blocks) == 12 and encoder.feature_dim == 128
    assert encoder.time_embedding.net[0].weight.shape == (64, 32)  # Fourier(16) -> 64
    assert [b.time_bias.weight.shape[0] for b in encoder.blocks[::4]] == [32, 64, 128]  # a bias per block
    assert encoder.bn.momentum == 0.9 and encoder.param_t.shape == ()
    assert encoder(torch.randn(2, 3, 32, 32), torch.zeros(2)).shape == (2, 128)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        TimeWideResNet(depth=12)


def test_the_code_depends_on_t_and_the_learned_t_gets_gradients():
    encoder = TimeWideResNet(in_channels=1, depth=10, widen_factor=1).eval()
    x0 = torch.randn(3, 1, 16, 16)
    low, high = encoder(x0, torch.full((3,), -4.6)), encoder(x0, torch.full((3,), 3.9))
    assert (low - high).abs().mean() > 1e-3 * low.abs().mean()
    encoder(x0).sum().backward()  # at sigma(sigmoid(param_t))
    assert encoder.param_t.grad is not None and encoder.param_t.grad.abs() > 0


def test_drl_with_the_wrn_trains_a_time_dependent_code_end_to_end():
    model = make_drl(
        code={"latent_dim": 64, "time_dependent": True},
        network={"z_mode": "ncsnpp"},
        encoder={"kind": "wrn", "depth": 10, "widen_factor": 1},
    )
    assert model.time_head is None  # the WRN sees t itself
    x0 = torch.randn(4, 1, 16, 16)
    torch.nn.init.normal_(model.unet.out[-1].weight, std=0.1)  # zero at init: no gradient would pass it
    model.loss(x0).backward()
    assert model.encoder.blocks[0].time_bias.weight.grad.abs().sum() > 0
    assert model.encode(x0, times=[0.0, 1.0]).shape == (4, 128)
    static = make_drl(code={"latent_dim": 64}, encoder={"kind": "wrn", "depth": 10, "widen_factor": 1})
    assert static.encode(x0).shape == (4, 64)


def zero_(module: torch.nn.Module) -> None:
    for p in module.parameters():
        torch.nn.init.zeros_(p)


def test_ncsnpp_injection_acts_only_through_its_two_new_paths():
    torch.manual_seed(0)
    unet = UNet(tiny_unet_config(), z_dim=8, z_mode="ncsnpp").eval()
    for p in unet.parameters():  # the zero-initialised output conv would hide every difference
        p.data.normal_(0, 0.2)
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([10.0, 500.0])
    z_a, z_b = torch.randn(2, 8), torch.randn(2, 8)

    def z_matters() -> bool:
        with torch.no_grad():
            return not torch.allclose(unet(x, t, z_a), unet(x, t, z_b))

    bias_layers = [m.z_bias_layers for m in unet.modules() if hasattr(m, "z_bias_layers")]
    assert len(bias_layers) == 3 + 2 + 5 and unet.code_map[-3].out_features == 32 * 8 * 8
    assert z_matters()
    saved = {k: v.clone() for k, v in unet.state_dict().items()}
    zero_(unet.code_map[-3])
    assert z_matters()  # through the per-block biases alone
    unet.load_state_dict(saved)
    for layers in bias_layers:
        zero_(layers)
    assert z_matters()  # through the bottleneck map alone
    zero_(unet.code_map[-3])
    assert not z_matters()  # no third path
    with pytest.raises(ValueError, match="unknown z_mode"):
        UNet(tiny_unet_config(), z_dim=8, z_mode="concat")


@pytest.mark.parametrize("cls, extra", [(DRL, {"l1": 1e-3}), (VDRL, {"kl_weight": 1e-3})])
def test_the_summed_loss_is_half_the_pixels_times_the_mean_loss(cls, extra):
    x0 = torch.randn(4, 1, 16, 16)
    losses = {}
    for reduction in ("mean", "half_sum"):
        model = make_drl(cls, code=extra, objective={"reduction": reduction})
        torch.manual_seed(1)
        losses[reduction] = model.loss(x0)
    assert losses["half_sum"].item() == pytest.approx(0.5 * 256 * losses["mean"].item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss reduction 'median'"):
        make_drl(objective={"reduction": "median"})


def test_code_l1_adds_the_l1_norm_of_the_code_against_the_summed_loss():
    x0 = torch.randn(4, 1, 16, 16)
    plain, regularised = (
        make_drl(objective={"reduction": "half_sum"}),
        make_drl(objective={"reduction": "half_sum"}, code={"l1": 0.5}),
    )
    torch.manual_seed(1)
    base = plain.loss(x0)
    torch.manual_seed(1)
    with_l1 = regularised.loss(x0)
    z = plain.code_params(x0)[0]
    assert (with_l1 - base).item() == pytest.approx(0.5 * z.abs().sum(1).mean().item(), rel=1e-5)


def test_the_diffae_semantic_encoder_has_single_conv_blocks_and_attention_at_16():
    from diffrep.nets.encoders import HalfUNetEncoder, PlainBlock
    from diffrep.nets.layers import AttentionBlock, ResBlock

    encoder = HalfUNetEncoder(1, 32, 32, base_channels=16, channel_mult=(1, 2, 4), num_res_blocks=2, num_groups=8)
    kinds = [type(m) for m in encoder.blocks]
    assert ResBlock not in kinds and kinds.count(PlainBlock) == 3 * 2 + 2 + 2
    assert not any(hasattr(b, "out_layers") for b in encoder.blocks if isinstance(b, PlainBlock))
    # attention after each of the 2 blocks at 16x16 (level 1) and in the middle block
    assert kinds.count(AttentionBlock) == 3 and kinds[kinds.index(AttentionBlock) - 1] is PlainBlock
    assert kinds.index(AttentionBlock) == 1 + 2 + 1 + 1  # conv, 2 blocks, down, 1st block at 16
    assert encoder(torch.randn(2, 1, 32, 32)).shape == (2, 32)


STATS = {"standardise": {"mean": [0.3], "std": [0.4]}}


def standardised(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1) / 2 - 0.3) / 0.4


def test_standardised_data_is_what_the_encoder_and_the_loss_see():
    """With channel statistics the model equals the plain one fed (x01 - mean) / std (the official CIFAR-10 data)."""
    official, plain = make_drl(**STATS), make_drl()
    torch.nn.init.normal_(official.unet.out[-1].weight, std=0.5)  # zero at init: the loss would not see x_t
    plain.load_state_dict(official.state_dict())  # the statistics are hyper-parameters, not state
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    torch.manual_seed(3)
    loss = official.loss(x0)
    torch.manual_seed(3)
    assert loss.item() == pytest.approx(plain.loss(standardised(x0)).item(), rel=1e-6)
    assert torch.allclose(official.encode(x0), plain.encode(standardised(x0)), atol=1e-6)
    assert torch.allclose(official.to_images(official.to_data_space(x0)), x0, atol=1e-6)
    low, high = official.x0_range()  # [0, 1] pixels, standardised: DDIM's clamp
    assert official.to_images(low).item() == pytest.approx(-1) and official.to_images(high).item() == pytest.approx(1)


def test_standardised_decoding_clamps_per_channel_and_returns_images():
    from diffrep.diffusion.sampling import ddim_invert, ddim_sample

    official, plain = make_drl(**STATS), make_drl()
    torch.nn.init.normal_(official.unet.out[-1].weight, std=0.5)  # a network whose x0 leaves [-1, 1]
    plain.load_state_dict(official.state_dict())
    x0 = torch.rand(3, 1, 16, 16) * 2 - 1
    code = plain.code_of(standardised(x0))
    bounds = official.x0_range()
    x_T = official.invert(x0, code, 5)
    with plain.inference():
        expected_T = ddim_invert(plain.code_eps_fn(code), plain.schedule, standardised(x0), 5, clip_x0=bounds)
        expected = ddim_sample(plain.code_eps_fn(code), plain.schedule, x_T, 5, clip_x0=bounds)
    assert torch.allclose(x_T, expected_T, atol=1e-5)
    decoded = official.decode(code, x_T, 5)
    assert torch.allclose(decoded, official.to_images(expected), atol=1e-5)
    assert decoded.min() >= -1 - 1e-5 and decoded.max() <= 1 + 1e-5  # clamped to the image range, as images
    assert not torch.allclose(decoded, plain.decode(code, x_T, 5), atol=1e-3)  # [-1, 1] clamps elsewhere


def test_channel_statistics_must_come_together_and_match_the_channels():
    with pytest.raises(ValueError, match="standardise needs std as well"):
        make_drl(standardise={"mean": [0.5]})
    with pytest.raises(ValueError, match="1 values each"):
        make_drl(standardise={"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]})
