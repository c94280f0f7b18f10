"""A trained diffrep model from its checkpoint alone, frozen, with its EMA weights in place:
what a later stage (a latent DPM on its codes, a DPM-feature probe) builds on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L

from diffrep.checkpoints import CheckpointError, read_checkpoint
from diffrep.lightning_modules.baselines import VAE, Autoencoder
from diffrep.lightning_modules.contrastive import SimCLR
from diffrep.lightning_modules.diffae import DiffAE
from diffrep.lightning_modules.dpm import DPM
from diffrep.lightning_modules.drl import DRL, VDRL
from diffrep.lightning_modules.migration import migrate_hparams
from diffrep.lightning_modules.pdae import PDAE


def method_classes() -> dict[str, type[L.LightningModule]]:
    return {"DPM": DPM, "PDAE": PDAE, "DRL": DRL, "VDRL": VDRL, "DiffAE": DiffAE}


def encoder_classes() -> dict[str, type[L.LightningModule]]:
    """Every module whose checkpoint carries a trained encoder (``.encoder``) another stage can start from."""
    return {"PDAE": PDAE, "DRL": DRL, "VDRL": VDRL, "DiffAE": DiffAE, "Autoencoder": Autoencoder, "VAE": VAE,
            "SimCLR": SimCLR}


def rebuild(checkpoint: dict, path: str | Path, classes: dict[str, type[L.LightningModule]], what: str
            ) -> L.LightningModule:
    """The module of a diffrep checkpoint, rebuilt from its saved hyper-parameters with its raw
    (training) weights loaded and its EMA shadow, if any, left beside them."""
    method = checkpoint.get("diffrep", {}).get("method")
    if method not in classes:
        raise CheckpointError(
            f"{path} is a {method or 'non-diffrep'} checkpoint; {what} must be one of {', '.join(classes)} "
            "(the last.ckpt that `diffrep fit` writes)"
        )
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    hparams = migrate_hparams(method, hparams)  # a checkpoint from before the settings were grouped
    if method == "PDAE":  # self-contained: the frozen DPM is inside this checkpoint
        hparams.update(dpm_checkpoint=str(path), dpm_config=None)
    if hparams.get("official_checkpoint"):  # the released file it started from; this checkpoint supersedes it
        hparams["official_checkpoint"] = None
    model = classes[method](**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    return model


def load_trained(
    path: str | Path, methods: Sequence[str] | None = None, what: str = "a trained model"
) -> L.LightningModule:
    """Rebuild the model of a diffrep checkpoint from its saved hyper-parameters, load its weights,
    copy its EMA weights in for good and return it in eval mode. ``methods``: the method names
    accepted (default: every diffusion method)."""
    checkpoint = read_checkpoint(path, what=what)
    classes = {name: cls for name, cls in method_classes().items() if methods is None or name in methods}
    return in_its_ema_weights(rebuild(checkpoint, path, classes, what))


def in_its_ema_weights(model: L.LightningModule) -> L.LightningModule:
    """``model`` with its EMA weights copied in for good (its EMA dropped), in eval mode: the weights
    a later stage builds on."""
    if getattr(model, "ema", None) is not None:
        model.ema.copy_to_model()
        model.ema = None
    return model.eval()


def load_pdae(path: str | Path) -> PDAE:
    """A trained PDAE from its checkpoint alone, with its EMA weights in place (for later stages)."""
    return load_trained(path, ["PDAE"], "a PDAE checkpoint")  # type: ignore[return-value]
