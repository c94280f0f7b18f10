"""Evaluation during training, logged to any Lightning logger and saved in the run folder."""

from diffrep.callbacks.grids import InterpolationGrid, ManipulationGrid, ReconstructionGrid, SampleGrid
from diffrep.callbacks.probes import FewLabelProbe, LatentPlot, LinearProbe

__all__ = ["FewLabelProbe", "InterpolationGrid", "LatentPlot", "LinearProbe", "ManipulationGrid", "ReconstructionGrid", "SampleGrid"]
