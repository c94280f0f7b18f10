"""Evaluation during training, logged to any Lightning logger and saved in the run folder."""

from diffrep.callbacks.base import EvaluationCallback
from diffrep.callbacks.codes import CodeWriter
from diffrep.callbacks.grids import InterpolationGrid, ManipulationGrid, ReconstructionGrid, SampleGrid
from diffrep.callbacks.metrics import FID, ReconstructionMetrics
from diffrep.callbacks.online import OnlineLinearProbe
from diffrep.callbacks.probes import FewLabelProbe, LatentPlot, LinearProbe
from diffrep.callbacks.semi_supervised import DownstreamProbe, SemiSupervisedProbe, TimeCodeProbe
from diffrep.callbacks.time_to_accuracy import TimeToAccuracy

__all__ = [
    "FID", "CodeWriter", "DownstreamProbe", "EvaluationCallback", "FewLabelProbe", "InterpolationGrid", "LatentPlot",
    "LinearProbe", "ManipulationGrid", "OnlineLinearProbe", "ReconstructionGrid", "ReconstructionMetrics",
    "SampleGrid", "SemiSupervisedProbe", "TimeCodeProbe", "TimeToAccuracy",
]
