"""DRL's score network: NCSN++ (Song et al. 2021) as the DRL code builds it, the code injected as there.

As korabs-x/representation_score_based builds it (score_sde_pytorch ``models/ncsnpp.py`` and
``models/layerspp.py``) at the setting its README trains (``configs/ve/cifar10_ncsnpp_small_continuous.py``):
Gaussian-Fourier embedding of log sigma (scale 16, fixed) -> Linear -> SiLU -> Linear (4 nf);
BigGAN ResNet blocks (up/down inside the block, ``skip_rescale``: (x + h) / sqrt 2), channel
attention at ``attention_resolutions`` (in pixels), a residual input pyramid (``progressive_input:
residual``: the image, downsampled by strided convs, joins each level), no output pyramid, no FIR
(``fir: false`` in that config; the FIR path needs the official CUDA kernel and is not built).
DDPM initialisation (fan-average uniform, zero biases; ``init_scale`` 0 gives the ~0 output convs).

The code z (from the encoder, which diffrep keeps outside this module) enters twice, as there:
- ``latent_to_temb``: Linear(z -> 4 nf) is concatenated to the time embedding, so the embedding every
  ResNet block sees (SiLU -> ``Dense_0`` -> per-channel bias) is 8 nf wide;
- ``z_dec_1..3``: an MLP of that joint embedding makes a (2 nf, s, s) map at the lowest resolution s,
  concatenated to the bottleneck features: the whole middle block is that much wider.
Zeroing ``latent_to_temb`` removes every dependence on z.

Output: the official network output h, before ``scale_by_sigma``'s division, so score = h / sigma and
the noise prediction is eps = -h (``DRL`` takes it that way). The input is x_t as it is (no c_in
scaling) and the conditioning is sigma itself, as the official continuous VE model takes them.

``reconstruction_decoder``: the official model also builds ``decoder``, an NCSN++ up-path from the
z map, trained only by its ``lambda_reconstr`` loss, which the official configs leave at 0. It is
off by default (unused parameters break DDP and cost a forward pass); turn it on to load an official
state dict as it is. Module names and ``all_modules`` indices are the official ones, so an official
state dict loads after its encoder is split off (``diffrep.nets.ncsnpp_official``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.nets.unet import UNetConfig

SQRT2 = math.sqrt(2.0)


@dataclass
class NCSNppConfig(UNetConfig):
    """NCSN++ settings (the DRL small CIFAR-10 config's by default). ``base_channels`` is nf,
    ``channel_mult`` ch_mult and ``attention_resolutions`` are in pixels, as in the official config."""

    in_channels: int = 3
    image_size: int = 32
    base_channels: int = 16
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    num_res_blocks: int = 2
    attention_resolutions: list[int] = field(default_factory=lambda: [16])
    dropout: float = 0.1
    fourier_scale: float = 16.0
    skip_rescale: bool = True
    init_scale: float = 0.0
    progressive_input: str = "residual"
    reconstruction_decoder: bool = False

    def __post_init__(self) -> None:
        if self.progressive_input not in ("none", "residual"):
            raise ConfigError(f"progressive_input {self.progressive_input!r} is not built; choose 'none' or "
                              "'residual' (the DRL config's)")
        if self.image_size % 2 ** (len(self.channel_mult) - 1):
            raise ConfigError(f"image size {self.image_size} is not divisible by 2^{len(self.channel_mult) - 1} "
                              f"({len(self.channel_mult)} resolutions)")

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels


def ddpm_init_(weight: Tensor, scale: float = 1.0) -> Tensor:
    """score_sde's ``default_init``: variance scaling, fan average, uniform (scale 0 -> 1e-10)."""
    scale = 1e-10 if scale == 0 else scale
    shape = weight.shape
    receptive = math.prod(shape) / shape[0] / shape[1]
    fan_avg = (shape[1] * receptive + shape[0] * receptive) / 2
    with torch.no_grad():
        return weight.copy_((torch.rand(shape) * 2.0 - 1.0) * math.sqrt(3 * scale / fan_avg))


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
         init_scale: float = 1.0) -> nn.Conv2d:
    layer = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2 if padding is None else padding)
    ddpm_init_(layer.weight, init_scale)
    nn.init.zeros_(layer.bias)
    return layer


def dense(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    ddpm_init_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(channels // 4, 32), channels, eps=1e-6)


class GaussianFourierProjection(nn.Module):
    """[sin, cos](2 pi log_sigma W), W ~ N(0, scale^2) fixed (a parameter without gradient, as there)."""

    def __init__(self, embedding_size: int, scale: float) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        x_proj = x[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(x_proj), torch.cos(x_proj)], dim=-1)


class NIN(nn.Module):
    """A 1x1 linear map over channels (weights stored (in, out), as there)."""

    def __init__(self, in_dim: int, out_dim: int, init_scale: float = 0.1) -> None:
        super().__init__()
        self.W = nn.Parameter(ddpm_init_(torch.empty(in_dim, out_dim), init_scale))
        self.b = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return (x.permute(0, 2, 3, 1) @ self.W + self.b).permute(0, 3, 1, 2)  # matmul: autocast takes it


class AttnBlockpp(nn.Module):
    """Self-attention over positions, one head, (x + h) / sqrt 2."""

    def __init__(self, channels: int, skip_rescale: bool = True, init_scale: float = 0.0) -> None:
        super().__init__()
        self.GroupNorm_0 = group_norm(channels)
        self.NIN_0, self.NIN_1, self.NIN_2 = NIN(channels, channels), NIN(channels, channels), NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        h = self.GroupNorm_0(x)
        # softmax(q k^T / sqrt c) v over the positions, as the official einsums compute it, by the fused
        # attention kernel: (B, 1 head, HW, C) with C contiguous (a NIN's output is channels-last in memory,
        # so these reshapes copy nothing), the layout for which the CPU runs its flash kernel
        q, k, v = (t.permute(0, 2, 3, 1).reshape(b, 1, height * width, c)
                   for t in (self.NIN_0(h), self.NIN_1(h), self.NIN_2(h)))
        attended = F.scaled_dot_product_attention(q, k, v).reshape(b, height, width, c).permute(0, 3, 1, 2)
        h = self.NIN_3(attended)
        return (x + h) / SQRT2 if self.skip_rescale else x + h


def upsample_nearest(x: Tensor) -> Tensor:
    b, c, height, width = x.shape
    return x.reshape(b, c, height, 1, width, 1).repeat(1, 1, 1, 2, 1, 2).reshape(b, c, 2 * height, 2 * width)


def downsample_mean(x: Tensor) -> Tensor:
    b, c, height, width = x.shape
    return x.reshape(b, c, height // 2, 2, width // 2, 2).mean(dim=(3, 5))


class ResnetBlockBigGANpp(nn.Module):
    """GN-SiLU-(up|down)-conv, + Dense_0(SiLU(temb)), GN-SiLU-dropout-conv, + shortcut, / sqrt 2."""

    def __init__(self, in_ch: int, out_ch: int | None = None, temb_dim: int | None = None, up: bool = False,
                 down: bool = False, dropout: float = 0.1, skip_rescale: bool = True, init_scale: float = 0.0) -> None:
        super().__init__()
        out_ch = out_ch or in_ch
        self.GroupNorm_0 = group_norm(in_ch)
        self.up, self.down = up, down
        self.Conv_0 = conv(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = group_norm(out_ch)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv(out_ch, out_ch, init_scale=init_scale)
        self.has_shortcut = in_ch != out_ch or up or down
        if self.has_shortcut:
            self.Conv_2 = conv(in_ch, out_ch, kernel=1)
        self.skip_rescale = skip_rescale

    def forward(self, x: Tensor, temb: Tensor | None = None) -> Tensor:
        h = F.silu(self.GroupNorm_0(x))
        if self.up:
            h, x = upsample_nearest(h), upsample_nearest(x)
        elif self.down:
            h, x = downsample_mean(h), downsample_mean(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(F.silu(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(F.silu(self.GroupNorm_1(h))))
        if self.has_shortcut:
            x = self.Conv_2(x)
        return (x + h) / SQRT2 if self.skip_rescale else x + h


class PyramidDownsample(nn.Module):
    """The input pyramid's strided 3x3 conv (pad right/bottom by one, as there)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.Conv_0 = conv(in_ch, out_ch, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.Conv_0(F.pad(x, (0, 1, 0, 1)))


class _UpPath(nn.Module):
    """Shared constructor pieces of NCSN++'s up path (the score net's and the reconstruction decoder's)."""

    config: NCSNppConfig

    def resolutions(self) -> list[int]:
        return [self.config.image_size // 2 ** i for i in range(len(self.config.channel_mult))]

    def block(self, in_ch: int, out_ch: int | None = None, **kwargs: bool) -> ResnetBlockBigGANpp:
        c = self.config
        return ResnetBlockBigGANpp(in_ch, out_ch, temb_dim=self.temb_dim, dropout=c.dropout,
                                   skip_rescale=c.skip_rescale, init_scale=c.init_scale, **kwargs)

    def attention(self, channels: int) -> AttnBlockpp:
        return AttnBlockpp(channels, skip_rescale=self.config.skip_rescale, init_scale=self.config.init_scale)

    def append_up_path(self, modules: list[nn.Module], in_ch: int, skips: list[int] | None) -> int:
        c = self.config
        for level in reversed(range(len(c.channel_mult))):
            for _ in range(c.num_res_blocks + 1):
                out_ch = c.base_channels * c.channel_mult[level]
                modules.append(self.block(in_ch + (skips.pop() if skips is not None else 0), out_ch))
                in_ch = out_ch
            if self.resolutions()[level] in c.attention_resolutions:
                modules.append(self.attention(in_ch))
            if level:
                modules.append(self.block(in_ch, up=True))
        modules.append(group_norm(in_ch))
        modules.append(conv(in_ch, c.in_channels, init_scale=c.init_scale))
        return in_ch

    def run_up_path(self, h: Tensor, temb: Tensor, index: int, skips: list[Tensor] | None) -> Tensor:
        c, modules = self.config, self.all_modules
        for level in reversed(range(len(c.channel_mult))):
            for _ in range(c.num_res_blocks + 1):
                h = modules[index](torch.cat([h, skips.pop()], dim=1) if skips is not None else h, temb)
                index += 1
            if h.shape[-1] in c.attention_resolutions:
                h = modules[index](h)
                index += 1
            if level:
                h = modules[index](h, temb)
                index += 1
        h = modules[index + 1](F.silu(modules[index](h)))
        assert index + 2 == len(modules)
        return h


class NCSNppDecoder(_UpPath):
    """The official ``Decoder``: the z map -> middle block -> up path without skips -> an image."""

    def __init__(self, config: NCSNppConfig, temb_dim: int) -> None:
        super().__init__()
        self.config, self.temb_dim = config, temb_dim
        in_ch = 2 * config.base_channels
        modules: list[nn.Module] = [self.block(in_ch), self.attention(in_ch), self.block(in_ch)]
        self.append_up_path(modules, in_ch, None)
        self.all_modules = nn.ModuleList(modules)

    def forward(self, z_map: Tensor, temb: Tensor) -> Tensor:
        h = self.all_modules[2](self.all_modules[1](self.all_modules[0](z_map, temb)), temb)
        return self.run_up_path(h, temb, 3, None)


class NCSNpp(_UpPath):
    """h(x_t, sigma, z) of DRL (module docstring); ``z_dim`` 0 gives the unconditional NCSN++."""

    output = "scaled_score"  # sigma * score = -eps, from x_t as it is (lightning_modules/denoisers.py)

    def __init__(self, config: NCSNppConfig | None = None, z_dim: int = 0) -> None:
        super().__init__()
        self.config = c = config or NCSNppConfig()
        nf, self.z_dim = c.base_channels, z_dim
        self.temb_dim = 4 * nf * (2 if z_dim else 1)
        modules: list[nn.Module] = [GaussianFourierProjection(nf, c.fourier_scale), dense(2 * nf, 4 * nf),
                                    dense(4 * nf, 4 * nf)]
        if z_dim:
            self.low_res = c.image_size // 2 ** (len(c.channel_mult) - 1)
            map_width = 2 * nf * self.low_res
            self.latent_to_temb = nn.Linear(z_dim, 4 * nf)  # PyTorch's default init, as there
            self.z_dec_1 = nn.Linear(self.temb_dim, map_width)
            self.z_dec_2 = nn.Linear(map_width, map_width)
            self.z_dec_3 = nn.Linear(map_width, map_width * self.low_res)
            if c.reconstruction_decoder:
                self.decoder = NCSNppDecoder(c, self.temb_dim)
        modules.append(conv(c.in_channels, nf))
        skips, in_ch, pyramid_ch = [nf], nf, c.in_channels
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                modules.append(self.block(in_ch, nf * mult))
                in_ch = nf * mult
                if self.resolutions()[level] in c.attention_resolutions:
                    modules.append(self.attention(in_ch))
                skips.append(in_ch)
            if level != len(c.channel_mult) - 1:
                modules.append(self.block(in_ch, down=True))
                if c.progressive_input == "residual":
                    modules.append(PyramidDownsample(pyramid_ch, in_ch))
                    pyramid_ch = in_ch
                skips.append(in_ch)
        in_ch = skips[-1] + (2 * nf if z_dim else 0)  # the z map widens the middle block
        modules += [self.block(in_ch), self.attention(in_ch), self.block(in_ch)]
        self.append_up_path(modules, in_ch, skips)
        self.all_modules = nn.ModuleList(modules)

    def embed(self, sigma: Tensor, z: Tensor | None) -> Tensor:
        m = self.all_modules
        temb = m[2](F.silu(m[1](m[0](torch.log(sigma)))))
        if self.z_dim:
            temb = torch.cat((temb, self.latent_to_temb(z)), dim=-1)
        return temb

    def z_map(self, temb: Tensor) -> Tensor:
        h = F.silu(self.z_dec_3(F.silu(self.z_dec_2(F.silu(self.z_dec_1(temb))))))
        return h.reshape(-1, 2 * self.config.base_channels, self.low_res, self.low_res)

    def reconstruct(self, sigma: Tensor, z: Tensor) -> Tensor:
        """The official ``reconstr`` output (logits of the image) from the code, at noise level sigma."""
        if not hasattr(self, "decoder"):
            raise ConfigError("this NCSN++ has no reconstruction decoder (reconstruction_decoder: true builds it)")
        temb = self.embed(sigma, z)
        return self.decoder(self.z_map(temb), temb)

    def forward(self, x: Tensor, sigma: Tensor, z: Tensor | None = None) -> Tensor:
        if self.z_dim and z is None:
            raise ValueError("this NCSN++ is code-conditioned: pass z")
        c, m = self.config, self.all_modules
        temb = self.embed(sigma.float(), z)
        pyramid = x
        hs = [m[3](x)]
        index = 4
        for level in range(len(c.channel_mult)):
            for _ in range(c.num_res_blocks):
                h = m[index](hs[-1], temb)
                index += 1
                if h.shape[-1] in c.attention_resolutions:
                    h = m[index](h)
                    index += 1
                hs.append(h)
            if level != len(c.channel_mult) - 1:
                h = m[index](hs[-1], temb)
                index += 1
                if c.progressive_input == "residual":
                    pyramid = m[index](pyramid)
                    index += 1
                    pyramid = (pyramid + h) / SQRT2 if c.skip_rescale else pyramid + h
                    h = pyramid
                hs.append(h)
        h = hs[-1]
        if self.z_dim:
            h = torch.cat((h, self.z_map(temb)), dim=-3)
        h = m[index + 2](m[index + 1](m[index](h, temb)), temb)
        return self.run_up_path(h, temb, index + 3, hs)
