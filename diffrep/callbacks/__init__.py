"""Evaluation during training, logged to any Lightning logger and saved in the run folder."""

from diffrep.callbacks.base import EvaluationCallback
from diffrep.callbacks.codes import CodeWriter
from diffrep.callbacks.grids import InterpolationGrid, ManipulationGrid, ReconstructionGrid, SampleGrid
from diffrep.callbacks.metrics import FID, ReconstructionMetrics
from diffrep.callbacks.probes import FewLabelProbe, LatentPlot, LinearProbe

__all__ = [
    "FID", "CodeWriter", "EvaluationCallback", "FewLabelProbe", "InterpolationGrid", "LatentPlot", "LinearProbe",
    "ManipulationGrid", "ReconstructionGrid", "ReconstructionMetrics", "SampleGrid",
]
