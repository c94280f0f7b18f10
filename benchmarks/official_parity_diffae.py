"""Diff-AE's half of benchmarks/official_parity.py (see its docstring): diffrep's Diff-AE
(``DiffAE(network={"kind": "beatgans"})``, ``HalfUNetEncoder``, the ``diffae`` DDIM grid) against
phizaz/diffae on shared random weights."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from diffrep.lightning_modules import DiffAE

NETWORK_TOL, SAMPLER_TOL, TRAINING_TOL = 1e-4, 1e-3, 1e-5
SIZE, BASE, MULT, ENC_MULT, LATENT, HEADS, STEPS = 32, 32, (1, 2, 2), (1, 2, 2, 2), 64, 2, 5


def official_config(path: Path):
    """A small model through the official config machinery: autoenc_base's settings (templates.py),
    smaller widths; the code is as wide as the embedding, as in every official template."""
    sys.path.insert(0, str(path))
    from choices import GenerativeType, ModelName
    from config import TrainConfig

    conf = TrainConfig()
    conf.beatgans_gen_type, conf.beta_scheduler, conf.diffusion_type = GenerativeType.ddim, "linear", "beatgans"
    conf.model_name, conf.net_beatgans_resnet_two_cond = ModelName.beatgans_autoenc, True
    conf.net_attn, conf.net_beatgans_attn_head, conf.net_enc_pool = (16,), HEADS, "adaptivenonzero"
    conf.img_size, conf.net_ch, conf.net_ch_mult, conf.net_enc_channel_mult = SIZE, BASE, MULT, ENC_MULT
    conf.net_num_res_blocks, conf.net_enc_num_res_blocks = 1, 1
    conf.style_ch = conf.net_beatgans_embed_channels = LATENT
    conf.T, conf.lr, conf.warmup, conf.grad_clip = 1000, 1e-4, 0, 1.0
    conf.make_model_conf()
    return conf


def ours_like(conf) -> DiffAE:
    return DiffAE(
        network=dict(kind="beatgans", in_channels=3, image_size=SIZE, base_channels=BASE, channel_mult=list(MULT),
                     num_res_blocks=1, attention_resolutions=[16], num_heads=HEADS, dropout=conf.dropout,
                     embed_channels=LATENT),
        code={"latent_dim": LATENT}, optimisation={"lr": conf.lr}, ema={"decay": 0.9},
        sampling={"timestep_grid": "diffae"},
        encoder=dict(kind="halfunet", base_channels=BASE, channel_mult=list(ENC_MULT), num_res_blocks=1,
                     attention_resolutions=[16], num_heads=HEADS),
    )


def name_map(ours: DiffAE, official: torch.nn.Module) -> dict[str, str]:
    """diffrep parameter name -> official name: the denoiser's names are the official ones; the
    encoder's are matched in order (the same modules in the same order, shapes checked)."""
    mapping = {f"unet.{k}": k for k in ours.unet.state_dict()}
    ours_enc = list(ours.encoder.state_dict().items())
    official_enc = [(k, v) for k, v in official.state_dict().items() if k.startswith("encoder.")]
    if len(ours_enc) != len(official_enc):
        raise SystemExit(f"encoder tensors: {len(ours_enc)} in diffrep, {len(official_enc)} official")
    for (k, v), (ok, ov) in zip(ours_enc, official_enc, strict=True):
        if v.shape != ov.shape:
            raise SystemExit(f"encoder tensor {k} {tuple(v.shape)} against {ok} {tuple(ov.shape)}")
        mapping[f"encoder.{k}"] = ok
    return mapping


def load_official_weights(ours: DiffAE, official: torch.nn.Module, mapping: dict[str, str]) -> None:
    state = official.state_dict()
    ours.load_state_dict({k: state[v] for k, v in mapping.items()}, strict=False)
    if ours.ema is not None:
        for name, p in ours.named_parameters():
            ours.ema.shadow(name).copy_(p.detach())


def differences(ours: dict[str, torch.Tensor], official: dict[str, torch.Tensor],
                mapping: dict[str, str]) -> torch.Tensor:
    """The largest absolute difference of each mapped tensor."""
    return torch.stack([(ours[k].detach().float() - official[v].detach().float()).abs().max()
                        for k, v in mapping.items()])


class PinnedDraws(DiffAE):
    """diffrep's DiffAE whose t comes from a list and whose noise (and dropout) stream is reseeded per
    step, so that the official step can be given the same draws; nothing else changes."""

    times: list[torch.Tensor] = []

    def sample_time(self, n: int, device: torch.device) -> torch.Tensor:
        torch.manual_seed(1000 + self.global_step)
        return self.times[self.global_step].to(device)


def diffae_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    conf = official_config(path)
    rows = []
    torch.manual_seed(0)
    official = conf.make_model_conf().make_model()
    with torch.no_grad():  # every weight non-zero: the official zero-initialised convs would hide errors
        for p in official.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    ours = ours_like(conf)
    mapping = name_map(ours, official)
    load_official_weights(ours, official, mapping)
    official.eval(), ours.eval()
    x0 = torch.rand(4, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        code = official.encoder(x0)
        rows.append(("Diff-AE semantic encoder", code - ours.encoder(x0), NETWORK_TOL))
        for t_value in (0, 500, 999):
            t, x_t = torch.full((4,), t_value), torch.randn(4, 3, SIZE, SIZE)
            for label, z in (("code", code), ("zero code", torch.zeros_like(code))):
                theirs = official.forward(x=x_t, t=t, cond=z).pred
                rows.append((f"Diff-AE denoiser eps, t = {t_value}, {label}", theirs - ours.unet(x_t, t, z),
                             NETWORK_TOL))

    # the loss and every gradient, dropout on, same t and noise
    official.train(), ours.train()
    sampler = conf.make_diffusion_conf().make_sampler()
    t = torch.tensor([3, 250, 600, 999])
    torch.manual_seed(7)
    official_loss = sampler.training_losses(model=official, x_start=x0, t=t)["loss"].mean()
    official_loss.backward()
    torch.manual_seed(7)
    ours_loss = ours.loss(x0, t)
    ours_loss.backward()
    rows.append(("Diff-AE L_simple, dropout on", (official_loss - ours_loss).detach(), NETWORK_TOL))
    official_grads = {k: p.grad for k, p in official.named_parameters() if p.grad is not None}
    ours_grads = {k: p.grad for k, p in ours.named_parameters() if p.grad is not None}
    grad_map = {k: v for k, v in mapping.items() if k in ours_grads}
    rows.append((f"Diff-AE gradients of all {len(grad_map)} parameters", differences(ours_grads, official_grads,
                                                                                      grad_map), NETWORK_TOL))
    official.zero_grad(), ours.zero_grad()

    # DDIM with the official ddimN respacing: decoding and inversion
    official.eval(), ours.eval()
    with torch.no_grad():
        code = official.encoder(x0)
        code_fn = ours.code_from_vector(code)
        for n in (10, 20):
            eval_sampler = conf._make_diffusion_conf(n).make_sampler()
            x_T = eval_sampler.ddim_reverse_sample_loop(official, x0, model_kwargs={"cond": code})["sample"]
            rows.append((f"Diff-AE inversion, ddim{n} respacing", x_T - ours.invert(x0, code_fn, n), SAMPLER_TOL))
            decoded = eval_sampler.sample(model=official, noise=x_T, model_kwargs={"cond": code}, progress=False)
            rows.append((f"Diff-AE decoding, ddim{n} respacing", decoded - ours.decode(code_fn, x_T, n), SAMPLER_TOL))

    rows += checkpoint_rows(conf)
    rows += training_rows(conf)
    sys.path.remove(str(path))
    return rows


def checkpoint_rows(conf) -> list[tuple[str, torch.Tensor, float]]:
    """A released-layout *_latent last.ckpt: the state dict experiment.py's LitModel holds (x_T,
    model.*, ema_model.* with the EMA moved off the raw weights, conds_mean/std) and its
    hyper_parameters, written with torch.save, for a model with templates_latent.py's MLPSkipNet
    latent net (narrower). Loaded through ``DiffAE(official_checkpoint=...)`` and through
    ``LatentDPM(official_checkpoint=..., base_config=...)``: raw weights equal the official model's;
    code, eps and the latent net's eps under the EMA equal the official ema_model's."""
    import tempfile

    import yaml
    from choices import Activation
    from model.latentnet import LatentNetType

    from diffrep.lightning_modules import LatentDPM

    conf = copy.deepcopy(conf)  # the rows after these build the model without a latent net
    conf.net_latent_net_type, conf.net_latent_layers, conf.net_latent_num_hid_channels = LatentNetType.skip, 4, 128
    conf.net_latent_skip_layers, conf.net_latent_activation = list(range(1, 4)), Activation.silu
    conf.net_latent_use_norm, conf.net_latent_condition_bias = True, 1
    torch.manual_seed(2)
    model = conf.make_model_conf().make_model()
    ema_model = copy.deepcopy(model)
    with torch.no_grad():
        for p, q in zip(model.parameters(), ema_model.parameters(), strict=True):
            p.copy_(torch.randn_like(p) * 0.05)
            q.copy_(p + torch.randn_like(p) * 0.01)
    conds_mean, conds_std = torch.randn(1, LATENT), torch.rand(1, LATENT) + 0.5
    state = {"x_T": torch.randn(2, 3, SIZE, SIZE), **{f"model.{k}": v for k, v in model.state_dict().items()},
             **{f"ema_model.{k}": v for k, v in ema_model.state_dict().items()},
             "conds_mean": conds_mean, "conds_std": conds_std}
    base_args = {k: v for k, v in ours_like(conf).hparams.items() if not k.startswith("_")}
    with tempfile.TemporaryDirectory() as folder:
        path, config = Path(folder) / "last.ckpt", Path(folder) / "diffae.yaml"
        torch.save({"state_dict": state, "global_step": 3, "hyper_parameters": conf.as_dict_jsonable()}, path)
        config.write_text(yaml.safe_dump({"model": {"class_path": "diffrep.lightning_modules.DiffAE",
                                                    "init_args": base_args}}))
        ours = DiffAE(**{**base_args, "official_checkpoint": str(path)}).eval()
        latent = LatentDPM(official_checkpoint=str(path), base_config=str(config),
                           network={"hidden": 128, "num_layers": 4, "time_dim": conf.net_latent_time_emb_channels}
                           ).eval()
    mapping = name_map(ours, model)
    ours_state, official_state = ours.state_dict(), model.state_dict()
    rows = [("Diff-AE last.ckpt: raw weights of every tensor",
             torch.stack([(ours_state[k] - official_state[v]).abs().max() for k, v in mapping.items()]), 0.0)]
    ema_model.eval()
    x0, t, x_t = torch.rand(4, 3, SIZE, SIZE) * 2 - 1, torch.tensor([0, 300, 700, 999]), torch.randn(4, 3, SIZE, SIZE)
    z_t = torch.randn(4, LATENT)
    with torch.no_grad(), ours.ema_scope(), latent.ema_scope():
        code = ema_model.encoder(x0)
        rows.append(("Diff-AE last.ckpt: semantic code under the EMA weights", code - ours.encode(x0), NETWORK_TOL))
        rows.append(("Diff-AE last.ckpt: eps under the EMA weights",
                     ema_model.forward(x=x_t, t=t, cond=code).pred - ours.unet(x_t, t, code), NETWORK_TOL))
        rows.append(("Diff-AE *_latent last.ckpt through LatentDPM: the base's code", code - latent.encode(x0),
                     NETWORK_TOL))
        rows.append(("Diff-AE *_latent last.ckpt through LatentDPM: the latent net's eps (MLPSkipNet)",
                     ema_model.latent_net.forward(z_t, t).pred - latent.net(z_t, t), NETWORK_TOL))
        rows.append(("Diff-AE *_latent last.ckpt: code statistics",
                     torch.cat([latent.z_mean - conds_mean[0], latent.z_std - conds_std[0]]), 0.0))
    return rows


@torch.no_grad()
def official_ema(source: torch.nn.Module, target: torch.nn.Module, decay: float) -> None:
    """experiment.py's ``ema``: every state_dict entry, target * decay + source * (1 - decay) (that
    module cannot be imported under numpy 2, so its one formula is restated here)."""
    source_state = source.state_dict()
    for key, value in target.state_dict().items():
        value.copy_(value * decay + source_state[key] * (1 - decay))


def official_step(conf, model: torch.nn.Module, ema_model: torch.nn.Module, fused: bool, ema_decay: float):
    """The official step (experiment.py) on ``model`` (in place): loss, backward, clip_grad_norm_, Adam,
    ema() into ``ema_model``. Returns step(batch, t). ``fused``: torch's fused Adam, diffrep's optimiser,
    in place of the official foreach Adam."""
    sampler = conf.make_diffusion_conf().make_sampler()
    optimizer = torch.optim.Adam(model.parameters(), lr=conf.lr, weight_decay=conf.weight_decay, fused=fused or None)

    def step(batch: torch.Tensor, t: torch.Tensor) -> None:
        loss = sampler.training_losses(model=model, x_start=batch, t=t)["loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], conf.grad_clip)
        optimizer.step()
        official_ema(model, ema_model, ema_decay)

    return step


def official_training(conf, start: torch.nn.Module, batches: torch.Tensor, times: list[torch.Tensor],
                      fused: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The official step K times on a copy of ``start`` (EMA decay 0.9, so that its differences show)."""
    model = copy.deepcopy(start).train()
    ema_model = copy.deepcopy(start)
    step = official_step(conf, model, ema_model, fused, ema_decay=0.9)
    for k in range(len(batches)):
        torch.manual_seed(1000 + k)
        step(batches[k], times[k])
    return model, ema_model


def training_rows(conf) -> list[tuple[str, torch.Tensor, float]]:
    """K optimiser steps: diffrep's LightningModule in a Trainer against the official step.

    Biases that feed a GroupNorm get gradients that are rounding noise (a per-channel constant
    the normalisation removes), which Adam turns into steps of +-lr: any change of arithmetic
    order moves them by up to K lr. The reference, the official step run with torch's fused Adam
    (diffrep's) and with its own foreach Adam, measures that spread; diffrep must stay within
    twice it on every weight, and within 1e-6 on the weights the reference leaves within 1e-7."""
    torch.manual_seed(1)
    start = conf.make_model_conf().make_model()
    with torch.no_grad():
        for p in start.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    batches = torch.rand(STEPS, 4, 3, SIZE, SIZE) * 2 - 1
    PinnedDraws.times = [torch.randint(0, 1000, (4,), generator=torch.Generator().manual_seed(k))
                         for k in range(STEPS)]
    fused_model, fused_ema = official_training(conf, start, batches, PinnedDraws.times, fused=True)
    plain_model, plain_ema = official_training(conf, start, batches, PinnedDraws.times, fused=False)

    ours = PinnedDraws(**ours_like(conf).hparams)
    mapping = name_map(ours, start)
    load_official_weights(ours, start, mapping)
    data = DataLoader(TensorDataset(batches.flatten(0, 1), torch.zeros(STEPS * 4)), batch_size=4, shuffle=False)
    trainer = L.Trainer(accelerator="cpu", max_steps=STEPS, gradient_clip_val=conf.grad_clip, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(ours, train_dataloaders=data)
    ours_params = dict(ours.named_parameters())
    ours_ema = {name: ours.ema.shadow(name) for name in ours_params}
    identity = {k: k for k in dict(start.named_parameters())}
    reference = differences(dict(fused_model.named_parameters()), dict(plain_model.named_parameters()), identity)
    gap = float(reference.max())
    steady = {k: v for (k, v), d in zip(mapping.items(), reference, strict=True) if d <= 1e-7}
    head = f"Diff-AE after {STEPS} training steps"
    fused_params, fused_ema_params = dict(fused_model.named_parameters()), dict(fused_ema.named_parameters())
    return [
        (f"{head}, reference: official fused against foreach Adam", reference, float("inf")),
        (f"{head}, fused Adam: all weights",
         differences(ours_params, fused_params, mapping), 2 * gap),
        (f"{head}, fused Adam: all EMA weights",
         differences(ours_ema, fused_ema_params, mapping), 2 * gap),
        (f"{head}, fused Adam: the {len(steady)} of {len(mapping)} weights steady in the reference",
         differences(ours_params, fused_params, steady), 1e-6),
        (f"{head}, the official foreach Adam: all weights",
         differences(ours_params, dict(plain_model.named_parameters()), mapping), 2 * gap),
    ]
