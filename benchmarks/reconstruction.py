"""Reconstruction MSE of a trained PDAE against its own pre-trained DPM, on held-out images.

Usage: python benchmarks/reconstruction.py [--pdae runs/pdae/checkpoints/last.ckpt] [--num-images 128] [--steps 50]
                                          [--precision 32-true|bf16-mixed]

Rows (all DDIM, eta 0, the same steps for inversion and decoding):
- pdae, inverted x_T: z = E(x0), x_T by inversion under the shifted model, decode with z;
- dpm, own inversion: the frozen DPM inverts and decodes alone (its only "code" is x_T);
- dpm, pdae's x_T: the DPM decodes PDAE's inverted x_T without z (what z adds);
- pdae, random x_T: decode z from fresh noise (what z alone carries).
``--precision bf16-mixed`` runs the networks under bf16 autocast (the DDIM updates stay fp32), as
the bf16 configs train: 1.6x faster sampling on a CPU with AVX512-BF16, for the demo's time budget;
fp32 is the default, the reference measure.
Writes benchmarks/results/reconstruction.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from diffrep.datamodules import FashionMNISTDataModule
from diffrep.diffusion.sampling import ddim_invert, ddim_sample
from diffrep.evaluation.reconstruction import image_errors
from diffrep.lightning_modules.loading import load_pdae


def scores(reconstruction: torch.Tensor, original: torch.Tensor) -> dict[str, float]:
    """Mean MSE, PSNR and SSIM on pixels in [0, 1], as ``diffrep test`` reports them."""
    return {k: v.mean().item() for k, v in image_errors(reconstruction.float(), original).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdae", default="runs/pdae/checkpoints/last.ckpt")
    parser.add_argument("--num-images", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "reconstruction.json",
                        help="where the JSON goes (make demo: runs/pdae/reconstruction.json, not the committed one)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_pdae(args.pdae)
    data = FashionMNISTDataModule(image_size=model.image_shape[-1], eval_batch_size=args.num_images)
    x0 = next(iter(data.test_dataloader()))[0][: args.num_images]
    start = time.perf_counter()
    bf16 = args.precision == "bf16-mixed"
    with torch.autocast(x0.device.type, dtype=torch.bfloat16) if bf16 else nullcontext(), torch.no_grad():
        z = model.encode(x0).float()
        x_T = model.invert(x0, z, args.steps)
        plain = model.code_eps_fn(None)  # the frozen DPM alone
        dpm_x_T = ddim_invert(plain, model.schedule, x0, args.steps)
        rows = {
            "pdae, inverted x_T": scores(model.decode(z, x_T, args.steps), x0),
            "dpm, own inversion": scores(ddim_sample(plain, model.schedule, dpm_x_T, args.steps), x0),
            "dpm, pdae's x_T": scores(ddim_sample(plain, model.schedule, x_T, args.steps), x0),
            "pdae, random x_T": scores(model.decode(z, model.noise(len(x0)), args.steps), x0),
        }
    seconds = time.perf_counter() - start
    print(f"Fashion-MNIST test, {len(x0)} images, {args.steps} DDIM steps, {args.precision}, pixels in [0, 1] "
          f"({seconds:.0f} s)")
    print(f"{'reconstruction':24} {'MSE':>8} {'PSNR':>6} {'SSIM':>6}")
    for name, r in rows.items():
        print(f"{name:24} {r['mse']:8.5f} {r['psnr']:6.2f} {r['ssim']:6.3f}")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"checkpoint": args.pdae, "images": len(x0), "steps": args.steps, "precision": args.precision,
             "pixel_range": [0, 1], "scores": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
