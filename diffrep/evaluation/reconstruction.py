"""Reconstruction quality: MSE, PSNR and SSIM of decoded images against the originals.

All three on pixels in [0, 1] (the convention of PSNR/SSIM and of PDAE's Table 1), per image,
then averaged over images. Two decodings are measured, as the papers do:
- ``inverted``: the code of x0 decoded from x0's own DDIM-inverted x_T (autoencoding);
- ``random``: the code decoded from fresh noise x_T (what the code alone carries).
A method without one of them (a plain autoencoder has no x_T) reports only what it has.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from diffrep.evaluation.distributed import map_items


def image_errors(reconstruction: Tensor, original: Tensor) -> dict[str, Tensor]:
    """Per-image MSE, PSNR (dB) and SSIM of images given in [-1, 1]."""
    a = ((reconstruction.float() + 1) / 2).clamp(0, 1)
    b = ((original.float() + 1) / 2).clamp(0, 1)
    mse = (a - b).pow(2).flatten(1).mean(1)
    psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
    kernel = min(11, a.shape[-1] - (1 - a.shape[-1] % 2))  # odd, at most the image size
    ssim = structural_similarity_index_measure(a, b, data_range=1.0, kernel_size=kernel, reduction="none")
    return {"mse": mse, "psnr": psnr, "ssim": ssim}


def decoded_with_errors(
    model, dataset, max_items: int, num_steps: int, batch_size: int = 64, inversion_steps: int | None = None,
    random_seed: int | None = None, keep_images: bool = False,
) -> dict[str, Tensor]:
    """Per-image ``inverted_{mse,psnr,ssim}`` of the first ``max_items`` images of ``dataset``
    decoded from their own DDIM-inverted x_T, and ``random_*`` from fresh noise too when
    ``random_seed`` is given and the model can (work split over DDP ranks).

    ``inversion_steps`` (default ``num_steps``): the DDIM steps of the inversion (the PDAE paper
    inverts with more steps than it decodes). ``keep_images`` also returns ``originals`` and the
    ``inverted`` decodings (in [-1, 1]), so an rFID describes the very images the errors do."""
    decoders = {"inverted": lambda x: model.reconstruct(x, num_steps=num_steps, inversion_steps=inversion_steps)}
    if random_seed is not None and hasattr(model, "reconstruct_from_noise"):
        generator = torch.Generator(model.model_device()).manual_seed(random_seed)
        decoders["random"] = lambda x: model.reconstruct_from_noise(x, num_steps=num_steps, generator=generator)

    def decode(images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        out = {"originals": images.float()} if keep_images else {}
        for name, decoder in decoders.items():
            decoded = decoder(images).float()
            if keep_images and name == "inverted":
                out[name] = decoded
            for metric, value in image_errors(decoded, images).items():
                out[f"{name}_{metric}"] = value
        return out

    return map_items(decode, dataset, max_items, batch_size, model.model_device())


def reconstruction_metrics(
    model, dataset, max_items: int = 256, num_steps: int = 50, batch_size: int = 64, seed: int = 0,
    inversion_steps: int | None = None,
) -> dict[str, float]:
    """Mean MSE/PSNR/SSIM over the first ``max_items`` images of ``dataset``, for each decoding the
    model has: ``{inverted,random}_{mse,psnr,ssim}`` (``seed`` draws the random x_T)."""
    per_image = decoded_with_errors(model, dataset, max_items, num_steps, batch_size, inversion_steps, random_seed=seed)
    return {key: value.mean().item() for key, value in per_image.items()}
