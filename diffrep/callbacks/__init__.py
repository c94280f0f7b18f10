"""Evaluation during training, logged to any Lightning logger and saved in the run folder."""

from diffrep.callbacks.grids import InterpolationGrid, ReconstructionGrid, SampleGrid

__all__ = ["InterpolationGrid", "ReconstructionGrid", "SampleGrid"]
