"""LightningModules: thin wrappers that build networks and write the training step."""

from diffrep.lightning_modules.baselines import VAE, Autoencoder, PCABaseline, PixelBaseline
from diffrep.lightning_modules.contrastive import SimCLR
from diffrep.lightning_modules.diffae import DiffAE
from diffrep.lightning_modules.dpm import DPM
from diffrep.lightning_modules.dpm_features import DPMFeatures
from diffrep.lightning_modules.drl import DRL, VDRL
from diffrep.lightning_modules.laplacenet import LaplaceNet
from diffrep.lightning_modules.latent_dpm import LatentDPM
from diffrep.lightning_modules.pdae import PDAE

__all__ = [
    "DPM", "DRL", "PDAE", "VAE", "VDRL", "Autoencoder", "DPMFeatures", "DiffAE", "LaplaceNet", "LatentDPM",
    "PCABaseline", "PixelBaseline", "SimCLR",
]
