"""DRL's half of benchmarks/official_parity.py (see its docstring): the training objective of
korabs-x/representation_score_based (score_sde_pytorch/losses.py ``get_sde_loss_fn`` on the VE SDE
of sde_lib.py, with ``get_score_fn``) against diffrep's DRL.loss, on one shared score network:
diffrep's own, exposed to the official loss through the official model interface
(model(x, sigma_labels, x0=..., t=...) -> {"output": score, "latent", "z_mean", "z_logvar"}). So this
checks the objective (t and noise draws, the 0.5 * sum over pixels reduction, the VDRL KL and the
reg-DRL L1 term) and its gradients. VDRL's code noise is pinned on both sides (the two draw it at
different points of the stream).

``ncsnpp_rows``: the official NCSNpp (models/ncsnpp.py, its WRN-28-2 encoder inside) at the small
CIFAR-10 setting the DRL code trains (configs/ve/cifar10_ncsnpp_small_continuous.py), random weights
loaded into diffrep's DRL(network kind ncsnpp, encoder wrn28_2, time-dependent code) through
diffrep.nets.ncsnpp_official: the code, the score at three t, the reconstruction output, the
unconditional NCSN++, VDRL's code; then the official loss with that network against DRL.loss and
every gradient; then K = 5 steps of diffrep's DRL in a Lightning Trainer against the official
training step (losses.py get_step_fn with optimization_manager: Adam, lr x min(step / warmup, 1),
clip_grad_norm_ 1; models/ema.py with its num_updates ramp), parameters and EMA weights."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import diffrep.lightning_modules.drl as drl_module
from diffrep.lightning_modules import DRL
from diffrep.nets.ncsnpp import NCSNpp, NCSNppConfig
from diffrep.nets.ncsnpp_official import split_official_state_dict

NETWORK_TOL, SAMPLER_TOL = 1e-4, 1e-3
STEPS, BATCH = 5, 4


class OfficialInterface(torch.nn.Module):
    """diffrep's DRL as the official score model: score = -eps_hat / sigma, code from x0."""

    def __init__(self, model: DRL) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, labels, x0=None, t=None):
        mean, logvar = self.model.code_params(x0)
        z = drl_module.reparameterise(mean, logvar) if logvar is not None else mean
        sigma = self.model.schedule.sigma(t).float()
        score = -self.model.eps(x, t, z) / sigma[:, None, None, None]
        return {"output": score, "latent": z, "z_mean": mean, "z_logvar": logvar}


def tiny(variational: bool = False, code_l1: float = 0.0, kl_weight: float = 0.0) -> DRL:
    torch.manual_seed(0)
    model = DRL(network=dict(in_channels=3, image_size=16, base_channels=16, channel_mult=[1, 2], num_res_blocks=1,
                             num_groups=8),
                encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1},
                code={"latent_dim": 8, "variational": variational, "kl_weight": kl_weight, "l1": code_l1},
                objective={"reduction": "half_sum"}, ema={"decay": None})
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return model


def drl_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    sys.path.insert(0, str(path / "score_sde_pytorch") if (path / "score_sde_pytorch").is_dir() else str(path))
    import losses as official_losses
    from sde_lib import VESDE

    sde = VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
    rows = []
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    code_noise = torch.randn(4, 8)
    original = drl_module.reparameterise
    drl_module.reparameterise = lambda mean, logvar: mean + (0.5 * logvar).exp() * code_noise
    try:
        for name, kwargs, training in (
            ("DRL", {}, dict(lambda_z=0.0, probabilistic_encoder=False)),
            ("VDRL (KL)", dict(variational=True, kl_weight=1e-2), dict(lambda_z=1e-2, probabilistic_encoder=True)),
            ("reg-DRL (L1 on the code)", dict(code_l1=1e-2), dict(lambda_z=1e-2, probabilistic_encoder=False)),
        ):
            model = tiny(**kwargs).train()
            config = SimpleNamespace(training=SimpleNamespace(lambda_reconstr=0.0, apply_mixup=False, **training),
                                     data=SimpleNamespace(dataset="cifar10"))
            loss_fn = official_losses.get_sde_loss_fn(sde, train=True, reduce_mean=False, continuous=True,
                                                      likelihood_weighting=False, eps=1e-5, config=config)
            torch.manual_seed(3)
            official = loss_fn(OfficialInterface(model), x0)
            official.backward()
            official_grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
            model.zero_grad()
            torch.manual_seed(3)
            ours = model.loss(x0)
            ours.backward()
            grads = torch.stack([(p.grad - official_grads[k]).abs().max() for k, p in model.named_parameters()
                                 if p.grad is not None])
            scale = max(1.0, abs(float(official.detach())))
            rows.append((f"DRL objective, {name}, relative to {scale:.0f}", (official - ours).detach() / scale,
                         NETWORK_TOL))
            rows.append((f"DRL objective gradients, {name}", grads, NETWORK_TOL))
    finally:
        drl_module.reparameterise = original
        sys.path.pop(0)
    return rows


def small_config(include_encoder: bool = True, probabilistic: bool = False, dropout: float = 0.1,
                 warmup: int = 2) -> SimpleNamespace:
    """configs/ve/cifar10_ncsnpp_small_continuous.py over default_cifar10_configs.py (the model,
    data and optimiser fields the network and the step read), without ml_collections."""
    model = SimpleNamespace(
        nf=16, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=dropout, resamp_with_conv=True,
        conditional=True, fir=False, fir_kernel=[1, 3, 3, 1], skip_rescale=True, resblock_type="biggan",
        progressive="none", progressive_input="residual", progressive_combine="sum", embedding_type="fourier",
        init_scale=0.0, fourier_scale=16, nonlinearity="swish", sigma_min=0.01, sigma_max=50.0, num_scales=1000,
        scale_by_sigma=True, conv_size=3, ema_rate=0.999)
    training = SimpleNamespace(continuous=True, include_encoder=include_encoder, probabilistic_encoder=probabilistic,
                               lambda_z=0.0, lambda_reconstr=0.0, apply_mixup=False)
    optim = SimpleNamespace(optimizer="Adam", lr=2e-4, beta1=0.9, eps=1e-8, weight_decay=0.0, warmup=warmup,
                            grad_clip=1.0)
    return SimpleNamespace(model=model, training=training, optim=optim,
                           data=SimpleNamespace(image_size=32, num_channels=3, centered=False, dataset="cifar10"))


def ours_like(config: SimpleNamespace, cls: type[DRL] = DRL, **kwargs) -> DRL:
    m = config.model
    return cls(network=dict(kind="ncsnpp", in_channels=3, image_size=32, base_channels=m.nf,
                            channel_mult=list(m.ch_mult), num_res_blocks=m.num_res_blocks,
                            attention_resolutions=list(m.attn_resolutions), dropout=m.dropout,
                            reconstruction_decoder=config.training.include_encoder),
               encoder="wrn28_2",
               code={"latent_dim": 128, "time_dependent": True, "variational": config.training.probabilistic_encoder},
               objective={"weighting": "sigma2", "reduction": "half_sum"},
               optimisation={"lr": config.optim.lr, "warmup_steps": config.optim.warmup, "warmup_from_zero": True},
               ema={"decay": m.ema_rate, "ramp": True}, schedule=dict(kind="ve", sigma_min=0.01, sigma_max=50.0),
               **kwargs)


def official_network(config: SimpleNamespace) -> torch.nn.Module:
    from models import ncsnpp

    torch.manual_seed(0)
    net = ncsnpp.NCSNpp(config)
    with torch.no_grad():  # every weight non-zero: the zero-initialised output convs would hide errors
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net


def name_map(official: torch.nn.Module) -> dict[str, str]:
    """diffrep parameter name -> official name, for the parameters both have."""
    names = {k: k for k in official.state_dict()}
    encoder, net = split_official_state_dict(names)
    return {**{f"encoder.{k}": v for k, v in encoder.items()}, **{f"unet.{k}": v for k, v in net.items()}}


def load_official(ours: DRL, official: torch.nn.Module) -> dict[str, str]:
    encoder, net = split_official_state_dict(official.state_dict())
    ours.encoder.load_state_dict(encoder)
    ours.unet.load_state_dict(net, strict=not hasattr(official, "decoder") or hasattr(ours.unet, "decoder"))
    if ours.ema is not None:
        for name, p in ours.named_parameters():
            if p.requires_grad:  # the fixed Fourier frequencies are not averaged (nor officially)
                ours.ema.shadow(name).copy_(p.detach())
    return {k: v for k, v in name_map(official).items() if k in dict(ours.named_parameters())}


def ncsnpp_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    sys.path.insert(0, str(path / "score_sde_pytorch") if (path / "score_sde_pytorch").is_dir() else str(path))
    rows = []
    x0 = torch.rand(3, 3, 32, 32)
    t = torch.tensor([0.02, 0.5, 0.98])
    noise = torch.randn_like(x0)
    for probabilistic in (False, True):
        config = small_config(probabilistic=probabilistic)
        official = official_network(config).eval()
        ours = ours_like(config).eval()
        load_official(ours, official)
        sigma = ours.schedule.sigma(t).float()
        x = x0 + sigma[:, None, None, None] * noise
        with torch.no_grad():
            result = official(x, sigma, x0=x0, t=t)
            mean, logvar = ours.code_params(x0, t)
            label = "VDRL" if probabilistic else "DRL"
            if probabilistic:
                z_mean, z_logvar = result["z_mean"], result["z_logvar"]
                rows.append((f"NCSN++ {label}: code mean and log-variance (WRN-28-2, E(x0, t))",
                             torch.cat([z_mean - mean, z_logvar - logvar]), NETWORK_TOL))
                continue  # the official forward draws z itself; the network below is the same as DRL's
            rows.append((f"NCSN++ {label}: code E(x0, t) (WRN-28-2)", result["latent"] - mean, NETWORK_TOL))
            h = ours.unet(x, sigma, mean)
            scale = h.abs().max()
            rows.append((f"NCSN++ {label}: sigma x score at t = 0.02, 0.5, 0.98, relative to {scale:.3g}",
                         (result["output"] * sigma[:, None, None, None] - h) / scale, NETWORK_TOL))
            rows.append((f"NCSN++ {label}: eps = -h through DRL.eps", (ours.eps(x, t, mean) + h), 0.0))
            rows.append((f"NCSN++ {label}: reconstruction output (decoder)",
                         result["reconstr"] - ours.unet.reconstruct(sigma, mean), NETWORK_TOL))
    # the unconditional NCSN++ (no encoder), in training mode: dropout on, the same stream
    config = small_config(include_encoder=False)
    official = official_network(config).train()

    plain = NCSNpp(NCSNppConfig(), z_dim=0).train()
    plain.load_state_dict({k: v for k, v in official.state_dict().items() if k != "sigmas"})
    sigma = 0.01 * (50 / 0.01) ** t
    x = x0 + sigma[:, None, None, None] * noise
    torch.manual_seed(5)
    out = official(x, sigma)["output"] * sigma[:, None, None, None]
    torch.manual_seed(5)
    h = plain(x, sigma)
    rows.append((f"NCSN++ without a code, dropout on, relative to {h.abs().max():.3g}",
                 (out - h).detach() / h.abs().max(), NETWORK_TOL))
    rows += checkpoint_rows()
    rows += sampler_rows()
    rows += ncsnpp_loss_rows()
    rows += ncsnpp_training_rows()
    sys.path.pop(0)
    return rows


def checkpoint_rows() -> list[tuple[str, torch.Tensor, float]]:
    """A released-layout file: the official network inside DataParallel, its models/ema.py EMA moved
    off the raw weights by a few updates, saved as utils.save_checkpoint does; loaded through
    ``DRL(official_checkpoint=...)``. The raw weights must equal the official model's, and the code and
    score under diffrep's EMA must equal the official model's after ``ema.copy_to``."""
    import tempfile

    from models.ema import ExponentialMovingAverage

    config = small_config()
    official = official_network(config)
    ema = ExponentialMovingAverage(official.parameters(), decay=0.9)
    with torch.no_grad():
        for _ in range(3):
            for p in official.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p) * 0.02)
            ema.update(official.parameters())
    wrapped = torch.nn.DataParallel(official)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint_1.pth"
        torch.save({"optimizer": {}, "model": wrapped.state_dict(), "ema": ema.state_dict(), "step": 3}, path)
        ours = ours_like(config, official_checkpoint=str(path)).eval()
    mapping = name_map(official)
    official_state, ours_state = official.state_dict(), ours.state_dict()
    rows = [("score_sde file: raw weights of every tensor",
             torch.stack([(ours_state[k] - official_state[v]).abs().max() for k, v in mapping.items()
                          if k in ours_state]), 0.0)]
    ema.copy_to(official.parameters())
    official.eval()
    x0, t = torch.rand(3, 3, 32, 32), torch.tensor([0.02, 0.5, 0.98])
    sigma = ours.schedule.sigma(t).float()
    x = x0 + sigma[:, None, None, None] * torch.randn_like(x0)
    with torch.no_grad(), ours.ema_scope():
        result = official(x, sigma, x0=x0, t=t)
        code = ours.code_params(x0, t)[0]
        rows.append(("score_sde file: code E(x0, t) under the EMA weights", result["latent"] - code, NETWORK_TOL))
        h = ours.unet(x, sigma, code)
        rows.append((f"score_sde file: sigma x score under the EMA weights, relative to {h.abs().max():.3g}",
                     (result["output"] * sigma[:, None, None, None] - h) / h.abs().max(), NETWORK_TOL))
    return rows


class CodedScoreModel(torch.nn.Module):
    """diffrep's NCSN++ with a fixed code behind the official model interface (the official PC and
    ODE samplers call the model without x0, so the code is closed over, as diffrep's samplers do)."""

    def __init__(self, net: NCSNpp, z: torch.Tensor) -> None:
        super().__init__()
        self.net, self.z = net, z

    def forward(self, x, labels, x0=None, t=None):
        return {"output": self.net(x, labels, self.z) / labels[:, None, None, None]}


def sampler_rows() -> list[tuple[str, torch.Tensor, float]]:
    """score_sde's sampling.py (get_pc_sampler: reverse diffusion + Langevin, snr 0.16, one corrector
    step, eps 1e-5; get_ode_sampler: RK45 at 1e-5 with the denoising step) against
    diffrep.diffusion.sde_sampling through DRL(sampling={"sampler": ...}).generate, same seeds, 50 levels."""
    import sampling as official_sampling
    from sde_lib import VESDE

    from diffrep.diffusion.sde_sampling import ode_sample, pc_sample

    config = small_config(dropout=0.0)
    official = official_network(config)
    ours = ours_like(config).eval()
    load_official(ours, official)
    z = torch.randn(2, 128)
    model = CodedScoreModel(ours.unet, z).eval()
    sde, shape, levels = VESDE(sigma_min=0.01, sigma_max=50.0, N=50), (2, 3, 32, 32), 50
    eps_fn = ours.code_eps_fn(lambda t: z)
    rows = []
    for probability_flow in (False, True):
        sampler = official_sampling.get_pc_sampler(
            sde, shape, official_sampling.ReverseDiffusionPredictor, official_sampling.LangevinCorrector,
            lambda x: x, snr=0.16, n_steps=1, probability_flow=probability_flow, continuous=True, denoise=True,
            eps=1e-5, device="cpu", config=config)
        torch.manual_seed(7)
        reference, _ = sampler(model)
        torch.manual_seed(7)
        x_T = torch.randn(*shape) * 50.0
        mine = pc_sample(eps_fn, ours.schedule, x_T, levels, probability_flow=probability_flow)
        name = "probability-flow predictor" if probability_flow else "reverse diffusion"
        rows.append((f"DRL PC sampler ({name} + Langevin), {levels} levels, relative to {reference.abs().max():.3g}",
                     (reference - mine) / reference.abs().max(), SAMPLER_TOL))
    # The official ODE drift (sde_lib's reverse().sde) multiplies by the score model's whole output dict,
    # which the DRL models return: patched to take its 'output', as discretize() does; the denoising
    # step (discretize, already right) is then left off on both sides.
    original = official_sampling.get_score_fn
    official_sampling.get_score_fn = lambda *a, **k: (lambda x, t: original(*a, **k)(x, t)["output"])
    try:
        ode = official_sampling.get_ode_sampler(sde, shape, lambda x: x, denoise=False, rtol=1e-5, atol=1e-5,
                                                method="RK45", eps=1e-5, device="cpu", config=config)
        torch.manual_seed(8)
        reference, official_nfe = ode(model)
    finally:
        official_sampling.get_score_fn = original
    torch.manual_seed(8)
    mine, nfe = ode_sample(eps_fn, ours.schedule, torch.randn(*shape) * 50.0, eps=1e-5)
    rows.append((f"DRL probability-flow ODE (RK45, {nfe} evaluations, official {official_nfe}; official drift patched)",
                 (reference - mine) / reference.abs().max(), SAMPLER_TOL))
    torch.manual_seed(7)
    with sampler_set(ours, "pc"):
        generated = DRL.generate(ours, z, torch.randn(*shape) * 50.0, levels)
    torch.manual_seed(7)
    direct = pc_sample(eps_fn, ours.schedule, torch.randn(*shape) * 50.0, levels)
    rows.append(("DRL(sampler 'pc').generate against pc_sample", generated - direct, 0.0))
    return rows


@contextmanager
def sampler_set(model: DRL, sampler: str) -> Iterator[DRL]:
    """``model`` with ``sampler`` for the block, then its own again (the later rows use the default)."""
    before, model.sampler = model.sampler, sampler
    try:
        yield model
    finally:
        model.sampler = before


def official_loss_fn(config: SimpleNamespace):
    import losses as official_losses
    from sde_lib import VESDE

    return official_losses.get_sde_loss_fn(VESDE(sigma_min=0.01, sigma_max=50.0, N=1000), train=True,
                                           reduce_mean=False, continuous=True, likelihood_weighting=False, eps=1e-5,
                                           config=config)


def rounding_noise(grads: dict[str, torch.Tensor]) -> set[str]:
    """Tensors whose gradient is 0 analytically and rounding noise in floats: biases right before a
    normalisation (BatchNorm in training mode removes any per-channel constant) and attention's key
    bias (a constant added to every logit of a query). They sit 4-5 orders of magnitude below the
    rest (about 1e-7 against >= 3e-3 at the small setting), so the cut is 1e-5 of the largest."""
    largest = max(g.abs().max() for g in grads.values())
    return {k for k, g in grads.items() if g.abs().max() < 1e-5 * largest}


def ncsnpp_loss_rows() -> list[tuple[str, torch.Tensor, float]]:
    """The official loss (losses.py) on the official NCSN++ against DRL.loss on diffrep's (dropout 0:
    the official forward also runs its reconstruction decoder, whose dropout draws from the same
    stream; diffrep runs no decoder when the loss does not use it)."""
    config = small_config(dropout=0.0)
    official = official_network(config).train()
    ours = ours_like(config).train()
    mapping = load_official(ours, official)
    x0 = torch.rand(BATCH, 3, 32, 32)
    torch.manual_seed(3)
    reference = official_loss_fn(config)(official, x0)
    reference.backward()
    torch.manual_seed(3)
    loss = ours.loss(x0)
    loss.backward()
    params, official_params = dict(ours.named_parameters()), dict(official.named_parameters())
    official_grads = {k: official_params[v].grad for k, v in mapping.items() if official_params[v].grad is not None}
    noise = rounding_noise(official_grads)
    relative = torch.stack([(params[k].grad - g).abs().max() / g.abs().max() for k, g in official_grads.items()
                            if k not in noise])
    absolute = torch.stack([(params[k].grad - official_grads[k]).abs().max() for k in noise])
    scale = abs(float(reference))
    return [(f"NCSN++ DRL loss (official losses.py), relative to {scale:.0f}", (reference - loss).detach() / scale,
             NETWORK_TOL),
            (f"NCSN++ DRL loss gradients, {len(relative)} tensors, each relative to its largest", relative,
             NETWORK_TOL),
            (f"NCSN++ DRL loss gradients, the {len(absolute)} rounding-noise tensors (0 analytically)", absolute, 1e-5)]


class PinnedDraws(DRL):
    """diffrep's DRL whose random stream is reseeded at each step, as the official loop below does."""

    def sample_time(self, n: int, device: torch.device) -> torch.Tensor:
        torch.manual_seed(1000 + self.global_step)
        return super().sample_time(n, device)


def official_step(config: SimpleNamespace, model: torch.nn.Module, fused: bool):
    """The official training step on ``model`` (in place): get_step_fn(optimization_manager) with its
    Adam and its EMA (models/ema.py). Returns (step(batch), ema). ``fused``: torch's fused Adam
    (diffrep's) in place of the official foreach Adam."""
    import losses as official_losses
    from models.ema import ExponentialMovingAverage
    from sde_lib import VESDE

    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr, betas=(config.optim.beta1, 0.999),
                                 eps=config.optim.eps, weight_decay=config.optim.weight_decay, fused=fused or None)
    ema = ExponentialMovingAverage(model.parameters(), decay=config.model.ema_rate)
    state = dict(optimizer=optimizer, model=model, ema=ema, step=0)
    step_fn = official_losses.get_step_fn(VESDE(sigma_min=0.01, sigma_max=50.0, N=1000), train=True,
                                          optimize_fn=official_losses.optimization_manager(config),
                                          reduce_mean=False, continuous=True, likelihood_weighting=False,
                                          config=config)
    return (lambda batch: step_fn(state, batch)), ema


def official_training(config: SimpleNamespace, start: torch.nn.Module, batches: torch.Tensor,
                      fused: bool) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    """The official step K times on a copy of ``start``."""
    model = copy.deepcopy(start).train()
    step, ema = official_step(config, model, fused)
    for k in range(len(batches)):
        torch.manual_seed(1000 + k)
        step(batches[k])
    return model, ema.shadow_params


def ncsnpp_training_rows() -> list[tuple[str, torch.Tensor, float]]:
    """K steps against the official step, on the same batches, t and noise.

    Adam makes every element's step about +-lr whatever its gradient's size, so an element whose
    gradient is near 0 flips its step on any rounding change, and the flips compound over steps
    (the encoder's gradients, small against the summed loss, are the most affected). The official
    step itself, run again with its input moved by one float ulp, ends with about a third of its
    elements off by more than 1e-6 after 5 steps: that run is the reference. diffrep's step must stay
    within twice its largest difference and within 1.5 times its share of elements off by more than
    1e-6, for the weights and the EMA weights. A real difference of the step (a learning rate,
    the warm-up, the clipping, the EMA ramp) moves every element and fails the share."""
    config = small_config(dropout=0.0, warmup=2)
    start = official_network(config)
    batches = torch.rand(STEPS, BATCH, 3, 32, 32)
    fused_model, fused_ema = official_training(config, start, batches, fused=True)
    plain_model, _ = official_training(config, start, batches, fused=False)
    ulp_model, ulp_ema = official_training(config, start, torch.nextafter(batches, torch.ones_like(batches)),
                                           fused=True)

    ours = PinnedDraws(**ours_like(config).hparams)
    mapping = load_official(ours, start)
    data = DataLoader(TensorDataset(batches.flatten(0, 1), torch.zeros(STEPS * BATCH)), batch_size=BATCH)
    trainer = L.Trainer(accelerator="cpu", max_steps=STEPS, gradient_clip_val=config.optim.grad_clip, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(ours, train_dataloaders=data)
    trainable = [k for k, p in start.named_parameters() if p.requires_grad]
    mapping = {k: v for k, v in mapping.items() if v in trainable}
    identity = {v: v for v in mapping.values()}
    ours_params, ours_ema = dict(ours.named_parameters()), {k: ours.ema.shadow(k) for k in mapping}
    fused, plain, ulp = (dict(m.named_parameters()) for m in (fused_model, plain_model, ulp_model))
    fused_ema, ulp_ema = dict(zip(trainable, fused_ema, strict=True)), dict(zip(trainable, ulp_ema, strict=True))

    def flat(a: dict, b: dict, names: dict[str, str]) -> torch.Tensor:
        return torch.cat([(a[k].detach() - b[v].detach()).abs().flatten() for k, v in names.items()])

    def share_off(d: torch.Tensor) -> torch.Tensor:
        return (d > 1e-6).float().mean()

    ref, ref_ema = flat(ulp, fused, identity), flat(ulp_ema, fused_ema, identity)
    weights, ema = flat(ours_params, fused, mapping), flat(ours_ema, fused_ema, mapping)
    head = f"NCSN++ DRL after {STEPS} training steps"
    return [
        (f"{head}, reference: the official step against itself with a one-ulp input change", ref, float("inf")),
        (f"{head}, reference: its share of elements off by > 1e-6", share_off(ref), float("inf")),
        (f"{head}, reference: the official fused against its foreach Adam", flat(plain, fused, identity),
         float("inf")),
        (f"{head}: all {len(mapping)} weights", weights, 2 * float(ref.max())),
        (f"{head}: share of elements off by > 1e-6", share_off(weights), 1.5 * float(share_off(ref))),
        (f"{head}: EMA weights (official ema.py, num_updates ramp)", ema, 2 * float(ref_ema.max())),
        (f"{head}: share of EMA elements off by > 1e-6", share_off(ema), 1.5 * float(share_off(ref_ema))),
        (f"{head}: against the official foreach Adam", flat(ours_params, plain, mapping), 2 * float(ref.max())),
    ]
