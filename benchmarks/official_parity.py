"""diffrep against the official code of each paper, with the same random weights: one line per
compared output with its largest absolute difference and its tolerance; exits 1 when any is
outside its tolerance.

Usage: python benchmarks/official_parity.py [--pdae PATH] [--drl PATH] [--diffae PATH] [--laplacenet PATH]
  --pdae PATH     a local clone of github.com/ckczzj/PDAE
  --drl PATH      a local clone of github.com/korabs-x/representation_score_based
  --diffae PATH   a local clone of github.com/phizaz/diffae (its dataset.py imports pandas and lmdb:
                  pip install pandas); archive it without datasets/, whose large file is missing
  --laplacenet PATH  the LaplaceNet/ folder of korabs-x/representation_score_based (needs faiss-cpu)
Nothing of the official code is copied into diffrep: its modules are imported from PATH at run
time, on the CPU.

PDAE: the U-Net at 32/64/128 px with attention and 2-4 heads (model/unet.py); the latent MLP
with skips (model/mlp_skip_net.py); DDIM inversion, decoding and generation with the shift off for
the last 30% of steps on the official grid (model/shift_unet.py, diffusion/ddim.py,
diffusion/gaussian_diffusion.py); the latent DDIM with its clamps (latent_ddim_sample_loop); and
K = 5 optimiser steps of diffrep's PDAE LightningModule through a Lightning Trainer against the
official representation-learning step (benchmarks/official_parity_pdae.py).

DRL: the training objective (losses.py, on the VE SDE) and its gradients for DRL, VDRL and reg-DRL
on one shared score network, diffrep's; then the official NCSN++ (models/ncsnpp.py with its WRN-28-2,
the small CIFAR-10 setting) against DRL(network={"kind": "ncsnpp"}): codes, score at three t, the
reconstruction output, the unconditional net with dropout; the official loss on it and every
gradient; the PC sampler (reverse diffusion / probability-flow predictor + Langevin) and the
probability-flow ODE of sampling.py; and K = 5 optimiser steps of diffrep's DRL through a Lightning
Trainer against the official step (get_step_fn: Adam, warm-up, clipping; models/ema.py), measured
against the official step's own spread under a one-ulp input change; and a released-layout score_sde
file (DataParallel ``module.`` keys, the models/ema.py list) through ``official_checkpoint``
(benchmarks/official_parity_drl.py).

Diff-AE: the semantic encoder and the denoiser of BeatGANsAutoencModel (model/unet_autoenc.py,
built by config.py's make_model_conf) at three times, with a code and with a zero code; the
training loss L_simple (diffusion/base.py training_losses) and every parameter's gradient, dropout
on, on the same noise and t; DDIM decoding and inversion with the official ddimN respacing
(diffusion/diffusion.py, SpacedDiffusionBeatGans); and K = 5 optimiser steps of diffrep's DiffAE
LightningModule through a Lightning Trainer against the official step (experiment.py: Adam, no
warm-up as in the FFHQ/CelebA templates, clip_grad_norm_ at conf.grad_clip = 1, ema() after each
step; the EMA decay 0.9 on both sides so that its differences show) on the same batches, t and
noise: every parameter and EMA weight; and a released-layout last.ckpt (model.*, ema_model.*,
hyper_parameters) through ``official_checkpoint``.

Each run writes its parts' rows to benchmarks/results/official_parity.json (``--results``), beside
the parts of earlier runs: docs/fidelity.md quotes that file.

LaplaceNet (the DRL paper's semi-supervised step): the graph pseudo-labels of lp/db_semisuper.py
(one_iter_true) on shared features, the start from a DRL encoder state (main.py's surgery), and one
semi-supervised training step of helpers.train_semi on shared weights
(benchmarks/official_parity_laplacenet.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffrep.diffusion.process import append_dims  # noqa: E402
from diffrep.diffusion.sampling import ddim_invert, ddim_sample  # noqa: E402
from diffrep.diffusion.schedule import ScheduleConfig  # noqa: E402
from diffrep.lightning_modules.latent_prior import latent_ddim  # noqa: E402
from diffrep.nets.latent_mlp import LatentMLP  # noqa: E402
from diffrep.nets.shift_unet import ShiftUNet  # noqa: E402
from diffrep.nets.unet import UNet, UNetConfig  # noqa: E402


def randomise(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every weight non-zero (the official nets zero-initialise their output convs)."""
    return {k: torch.randn_like(v) * 0.05 for k, v in state.items()}


def official_kwargs(mult, attention, heads, order) -> dict:
    return dict(input_channel=3, base_channel=32, channel_multiplier=mult, num_residual_blocks_of_a_block=1,
                attention_resolutions=attention, num_heads=heads, head_channel=-1, use_new_attention_order=order,
                dropout=0.0)


def quietly(fn, *args, **kwargs):
    with contextlib.redirect_stderr(io.StringIO()):  # the official loops print tqdm bars
        return fn(*args, **kwargs)


#: tolerances: one network call in fp32; a sampler or a training run compounds many
NETWORK_TOL, SAMPLER_TOL, TRAINING_TOL = 1e-4, 1e-3, 1e-5


@torch.no_grad()
def pdae_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    sys.path.insert(0, str(path))
    from diffusion.ddim import DDIM
    from diffusion.gaussian_diffusion import GaussianDiffusion
    from model.mlp_skip_net import MLPSkipNet
    from model.shift_unet import ShiftUNet as OfficialShiftUNet
    from model.unet import UNet as OfficialUNet

    torch.manual_seed(0)
    rows = []
    for size, mult, attention, heads, order in [(32, [1, 2, 2], [2], 4, True), (64, [1, 2, 2, 2], [4], 4, False),
                                                (128, [1, 1, 2, 2, 2], [16], 2, False)]:
        official = OfficialUNet(**official_kwargs(mult, attention, heads, order)).eval()
        state = randomise(official.state_dict())
        official.load_state_dict(state)
        ours = UNet(UNetConfig(in_channels=3, base_channels=32, channel_mult=mult, num_res_blocks=1, image_size=size,
                               attention_resolutions=attention, num_heads=heads, new_attention_order=order)).eval()
        ours.load_state_dict(state)
        x, t = torch.randn(2, 3, size, size), torch.tensor([10, 700])
        rows.append((f"PDAE U-Net eps, {size}px, attention {attention}, {heads} heads", (official(x, t) - ours(x, t)),
                     NETWORK_TOL))

    official_mlp = MLPSkipNet(input_channel=16, model_channel=64, num_layers=5, time_emb_channel=64, use_norm=True,
                              dropout=0.0).eval()
    mlp = LatentMLP(16, 64, 5, 64).eval()
    mlp.load_state_dict(official_mlp.state_dict())
    z, t = torch.randn(7, 16), torch.tensor([0, 1, 10, 100, 500, 998, 999])
    rows.append(("PDAE latent MLP with skips", official_mlp(z, t) - mlp(z, t), NETWORK_TOL))

    kwargs = official_kwargs([1, 2], [2], 2, False)
    kwargs["input_channel"] = 1
    official_shift = OfficialShiftUNet(latent_dim=8, **kwargs).eval()
    state = randomise(official_shift.state_dict())
    official_shift.load_state_dict(state)
    unet = UNet(UNetConfig(in_channels=1, base_channels=32, channel_mult=[1, 2], num_res_blocks=1,
                           attention_resolutions=[2], num_heads=2, image_size=16))
    shift = ShiftUNet(unet, 8).eval()
    shift.load_state_dict(state)
    diffusion = GaussianDiffusion({"timesteps": 1000, "betas_type": "linear"}, device="cpu")
    schedule = ScheduleConfig().build()
    code, x0 = torch.randn(3, 8), torch.rand(3, 1, 16, 16) * 2 - 1

    def guided(shift_from: float = -1.0):
        def eps_fn(x, t):
            eps, g = shift(x, t, code)
            return eps if float(t[0]) < shift_from else eps - append_dims(schedule.sigma(t), g) * g

        return eps_fn

    for n in (10, 100):
        x_T = quietly(diffusion.representation_learning_ddim_encode, f"ddim{n}", None, official_shift, x0, code)
        rows.append((f"PDAE inversion, official grid, {n} steps", x_T - ddim_invert(guided(), schedule, x0, n,
                                                                                     grid="official"), SAMPLER_TOL))
        decoded = quietly(diffusion.representation_learning_ddim_sample, f"ddim{n}", None, official_shift, None, x_T,
                          code)
        rows.append((f"PDAE decoding, official grid, {n} steps", decoded - ddim_sample(guided(), schedule, x_T, n,
                                                                                       grid="official"), SAMPLER_TOL))
        levels = schedule.ddim_levels(n, "official")[0].flip(0)
        generated = quietly(diffusion.representation_learning_ddim_sample, f"ddim{n}", None, official_shift, None,
                            x_T, code, stop_percent=0.3)
        ours = ddim_sample(guided(float(levels[int(0.3 * n) + 1])), schedule, x_T, n, grid="official")
        rows.append((f"PDAE generation, shift off for the last 30%, {n} steps", generated - ours, SAMPLER_TOL))

    latent_schedule = ScheduleConfig(beta_schedule="constant", beta_end=0.008).build()
    alphas_cumprod = diffusion.latent_diffusion_config["alphas_cumprod"].numpy()
    for n in (10, 50):
        ours = latent_ddim(mlp, latent_schedule, 6, n, True, "official", torch.Generator().manual_seed(1),
                           torch.device("cpu"))
        z_T = torch.randn(6, 16, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
        betas, timestep_map = diffusion.get_ddim_betas_and_timestep_map(f"ddim{n}", alphas_cumprod)
        official_z = quietly(DDIM(betas, timestep_map, "cpu").latent_ddim_sample_loop,
                             lambda z_t, t, condition=None: official_mlp(z_t, t), z_T)
        rows.append((f"PDAE latent DDIM, clamped, official grid, {n} steps", official_z - ours, SAMPLER_TOL))
    sys.path.remove(str(path))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdae", type=Path, help="a local clone of ckczzj/PDAE")
    parser.add_argument("--drl", type=Path, help="a local clone of korabs-x/representation_score_based")
    parser.add_argument("--diffae", type=Path, help="a local clone of phizaz/diffae")
    parser.add_argument("--laplacenet", type=Path, help="the LaplaceNet/ folder of korabs-x/representation_score_based")
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent / "results/official_parity.json"),
                        help="the JSON file each part's rows are written to (other parts kept)")
    args = parser.parse_args()
    if not (args.pdae or args.drl or args.diffae or args.laplacenet):
        parser.error("name at least one official clone: --pdae PATH, --drl PATH, --diffae PATH, --laplacenet PATH")
    for given in (args.pdae, args.drl, args.diffae, args.laplacenet):
        if given is not None and not given.is_dir():
            parser.error(f"{given} is not a folder; give a local copy of the official repository")
    parts: dict[str, list[tuple[str, torch.Tensor, float]]] = {}
    if args.pdae:
        from official_parity_pdae import pdae_training_rows

        parts["pdae"] = pdae_rows(args.pdae.resolve()) + pdae_training_rows(args.pdae.resolve())
        forget_official_modules()
    if args.drl:
        from official_parity_drl import drl_rows, ncsnpp_rows

        parts["drl"] = drl_rows(args.drl.resolve()) + ncsnpp_rows(args.drl.resolve())
        forget_official_modules()
    if args.diffae:
        from official_parity_diffae import diffae_rows

        parts["diffae"] = diffae_rows(args.diffae.resolve())
        forget_official_modules()
    if args.laplacenet:
        from official_parity_laplacenet import laplacenet_rows

        parts["laplacenet"] = laplacenet_rows(args.laplacenet.resolve())
    rows = [row for part in parts.values() for row in part]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'compared output':{width}}  {'max |official - diffrep|':>24}  {'tolerance':>9}")
    failed = 0
    for name, difference, tolerance in rows:
        worst = difference.abs().max().item()
        ok = worst <= tolerance
        failed += not ok
        print(f"{name:{width}}  {worst:24.2e}  {tolerance:9.0e}{'' if ok else '  OUTSIDE'}")
    print(f"{len(rows) - failed} of {len(rows)} within tolerance")
    record_results(parts, Path(args.results))
    sys.exit(1 if failed else 0)


def record_results(parts: dict[str, list[tuple[str, torch.Tensor, float]]], path: Path) -> None:
    """Each part's rows (output, largest difference, tolerance, within) into the results file, beside
    the parts of earlier runs, so that docs/fidelity.md reads its numbers from one file."""
    import json
    import time

    record = json.loads(path.read_text()) if path.is_file() else {}
    for part, rows in parts.items():
        record[part] = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "rows": [
            {"output": name, "max_abs_difference": difference.abs().max().item(), "tolerance": tolerance,
             "within": difference.abs().max().item() <= tolerance} for name, difference, tolerance in rows]}
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {', '.join(parts)} to {path}")


def forget_official_modules() -> None:
    """The official repositories share top-level names (model, diffusion): drop one's before the next."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("model", "models", "diffusion", "utils", "config", "configs", "choices",
                                  "config_base", "dataset", "datasets", "losses", "sde_lib", "sampling", "op"):
            del sys.modules[name]


if __name__ == "__main__":
    main()
