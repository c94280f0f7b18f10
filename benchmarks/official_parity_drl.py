"""DRL's half of benchmarks/official_parity.py (see its docstring): the training objective of
korabs-x/representation_score_based (score_sde_pytorch/losses.py ``get_sde_loss_fn`` on the VE SDE
of sde_lib.py, with ``get_score_fn``) against diffrep's DRL.loss, on one shared score network:
diffrep's own, exposed to the official loss through the official model interface
(model(x, sigma_labels, x0=..., t=...) -> {"output": score, "latent", "z_mean", "z_logvar"}). So this
checks the objective (t and noise draws, the 0.5 * sum over pixels reduction, the VDRL KL and the
reg-DRL L1 term) and its gradients, not the network: the official NCSN++ is not built here yet.
VDRL's code noise is pinned on both sides (the two draw it at different points of the stream)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import torch

import diffrep.lightning_modules.drl as drl_module
from diffrep.lightning_modules import DRL

NETWORK_TOL = 1e-4


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
    model = DRL(unet=dict(in_channels=3, image_size=16, base_channels=16, channel_mult=[1, 2], num_res_blocks=1,
                          num_groups=8), latent_dim=8, encoder_kwargs={"channels": (16, 32), "num_groups": 8,
                                                                        "num_heads": 1},
                variational=variational, kl_weight=kl_weight, code_l1=code_l1, loss_reduction="sum", ema_decay=None)
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
            scale = max(1.0, abs(float(official)))
            rows.append((f"DRL objective, {name}, relative to {scale:.0f}", (official - ours).detach() / scale,
                         NETWORK_TOL))
            rows.append((f"DRL objective gradients, {name}", grads, NETWORK_TOL))
    finally:
        drl_module.reparameterise = original
        sys.path.pop(0)
    return rows
