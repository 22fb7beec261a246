"""Slow-point analysis of recurrent networks on the delayed-recall task (PAPER.md).

Works on any model that follows the recurrent protocol of DESIGN.md (``forward``,
``initial_state``, ``transition``, ``readout``); see docs/analysis.md.

* `class_centers` -> `ClassCenters`: per-class centres of mass of the settled hidden state.
* `find_slow_points` -> `SlowPoints`: minimise the speed ``q(s) = ||F(s, x) - s||^2`` from a batch
  of states, with the paper's Adam search or a batched Levenberg-Marquardt (``"newton"``);
  `deduplicate` merges coinciding points.
* `class_speed_accuracy`, `network_speed_accuracy`, `spearman`: speed vs long-delay accuracy.
* `backtrack` -> `Lineage`: follow slow points back through a run's checkpoints.
* `analyze_network`, `analyze_run`, `write_report`: the whole analysis (``memenv analyze``).
* `SpeedPenalty`, `compute_anchors`, `regularize_run`: the speed regulariser (``memenv
  regularize``; docs/regularize.md), and `analysis.regularize_study`, its experiment.
* `analysis.plots`: figures (`plot_pca`, `plot_lineage`, `plot_speed_accuracy`, `plot_spectra`).
"""

from analysis.backtrack import Lineage, MergeEvent, backtrack
from analysis.centers import ClassCenters, class_centers, state_trajectories
from analysis.finetune import (
    RegularizeConfig,
    RegularizeResult,
    finetune_preset,
    regularize_run,
    train_with_speed_penalty,
)
from analysis.pipeline import (
    AnalysisOptions,
    NetworkAnalysis,
    analyze_network,
    analyze_run,
    write_report,
)
from analysis.protocol import FlatDynamics, StateLayout
from analysis.regularizer import Anchors, SpeedPenalty, anchor_speeds, compute_anchors
from analysis.slow_points import SlowPoints, deduplicate, find_slow_points
from analysis.speed_accuracy import (
    ClassSpeedAccuracy,
    Correlation,
    NetworkSpeedAccuracy,
    class_accuracy_at_delay,
    class_speed_accuracy,
    class_speeds,
    network_speed_accuracy,
    spearman,
    speeds_at,
)

__all__ = [
    "AnalysisOptions",
    "Anchors",
    "ClassCenters",
    "ClassSpeedAccuracy",
    "Correlation",
    "FlatDynamics",
    "Lineage",
    "MergeEvent",
    "NetworkAnalysis",
    "NetworkSpeedAccuracy",
    "RegularizeConfig",
    "RegularizeResult",
    "SlowPoints",
    "SpeedPenalty",
    "StateLayout",
    "analyze_network",
    "analyze_run",
    "anchor_speeds",
    "backtrack",
    "class_accuracy_at_delay",
    "class_centers",
    "class_speed_accuracy",
    "class_speeds",
    "compute_anchors",
    "deduplicate",
    "find_slow_points",
    "finetune_preset",
    "network_speed_accuracy",
    "regularize_run",
    "spearman",
    "speeds_at",
    "state_trajectories",
    "train_with_speed_penalty",
    "write_report",
]
