"""Evaluation during training, logged to any Lightning logger and saved in the run folder."""

from diffrep.callbacks.grids import InterpolationGrid, ManipulationGrid, ReconstructionGrid, SampleGrid

__all__ = ["InterpolationGrid", "ManipulationGrid", "ReconstructionGrid", "SampleGrid"]
