import pytest
import torch

from diffrep.nets.layers import AttentionBlock
from diffrep.nets.unet import UNet, UNetConfig


@pytest.mark.parametrize(
    "channels,size,mult", [(1, 16, [1, 2]), (3, 32, [1, 2, 2]), (3, 8, [1, 2]), (1, 64, [1, 1, 2, 2])]
)
def test_output_shape_matches_input(channels, size, mult):
    net = UNet(
        UNetConfig(
            in_channels=channels,
            image_size=size,
            base_channels=16,
            channel_mult=mult,
            num_res_blocks=1,
            attention_resolutions=[2],
            num_groups=8,
        )
    )
    x = torch.randn(2, channels, size, size)
    assert net(x, torch.tensor([3, 700])).shape == x.shape


def test_output_head_is_zero_initialised():
    net = UNet(UNetConfig(base_channels=16, channel_mult=[1, 2], num_res_blocks=1, num_groups=8, image_size=16))
    assert net(torch.randn(2, 1, 16, 16), torch.tensor([1, 2])).abs().max().item() == 0.0


def test_official_pdae_mnist_key_layout_and_shapes():
    """Keys and shapes of ckczzj/PDAE model/unet.py for its MNIST config (base 64, [1,2,2,4], 2 blocks)."""
    sd = UNet(UNetConfig(in_channels=1, base_channels=64, channel_mult=[1, 2, 2, 4], num_res_blocks=2)).state_dict()
    expected = {
        "time_embed.0.weight": (256, 64),
        "time_embed.2.weight": (256, 256),
        "input_blocks.0.0.weight": (64, 1, 3, 3),
        "input_blocks.1.0.in_layers.2.weight": (64, 64, 3, 3),
        "input_blocks.1.0.emb_layers.1.weight": (128, 256),
        "input_blocks.3.0.in_layers.2.weight": (64, 64, 3, 3),  # downsampling ResBlock
        "input_blocks.4.0.skip_connection.weight": (128, 64, 1, 1),
        "input_blocks.11.0.out_layers.3.weight": (256, 256, 3, 3),
        "middle_block.0.in_layers.0.weight": (256,),
        "middle_block.1.norm.weight": (256,),
        "middle_block.1.qkv.weight": (768, 256, 1),
        "middle_block.1.proj_out.weight": (256, 256, 1),
        "output_blocks.0.0.in_layers.0.weight": (512,),
        "output_blocks.2.1.in_layers.2.weight": (256, 256, 3, 3),  # upsampling ResBlock
        "output_blocks.11.0.skip_connection.weight": (64, 128, 1, 1),
        "out.0.weight": (64,),
        "out.2.weight": (1, 64, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("input_blocks.12") or k.startswith("output_blocks.12") for k in sd)
    assert sum(v.numel() for v in sd.values()) == sum(p.numel() for p in UNet(UNetConfig()).parameters())


def test_z_conditioning_changes_the_output_and_has_diffae_keys():
    cfg = UNetConfig(base_channels=16, channel_mult=[1, 2], num_res_blocks=1, num_groups=8, image_size=16)
    net = UNet(cfg, z_dim=4, z_mode="scale")
    for p in net.parameters():  # undo the zero-initialised residual outputs so z can show
        torch.nn.init.normal_(p, std=0.2)
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([10, 10])
    assert "input_blocks.1.0.cond_emb_layers.1.weight" in net.state_dict()
    assert not torch.allclose(net(x, t, torch.zeros(2, 4)), net(x, t, torch.ones(2, 4)))
    with pytest.raises(ValueError, match="pass z"):
        net(x, t)


def test_attention_orders_agree_for_one_head_and_differ_for_several():
    torch.manual_seed(0)
    legacy, new = AttentionBlock(16, 1, num_groups=8), AttentionBlock(16, 1, num_groups=8, new_order=True)
    for block in (legacy, new):
        torch.nn.init.normal_(block.proj_out.weight)
    new.load_state_dict(legacy.state_dict())
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(legacy(x), new(x))
    legacy4, new4 = AttentionBlock(16, 4, num_groups=8), AttentionBlock(16, 4, num_groups=8, new_order=True)
    torch.nn.init.normal_(legacy4.proj_out.weight)
    new4.load_state_dict(legacy4.state_dict())
    assert not torch.allclose(legacy4(x), new4(x))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="not divisible"):
        UNet(UNetConfig(image_size=28, channel_mult=[1, 2, 2, 4]))
    with pytest.raises(ValueError, match="GroupNorm"):
        UNet(UNetConfig(base_channels=16, num_groups=32))
