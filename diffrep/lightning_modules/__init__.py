"""LightningModules: thin wrappers that build networks and write the training step."""

from diffrep.lightning_modules.dpm import DPM
from diffrep.lightning_modules.pdae import PDAE

__all__ = ["DPM", "PDAE"]
