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
* `analysis.plots`: figures (`plot_pca`, `plot_lineage`, `plot_speed_accuracy`, `plot_spectra`).
"""

from analysis.backtrack import Lineage, MergeEvent, backtrack
from analysis.centers import ClassCenters, class_centers, state_trajectories
from analysis.pipeline import (
    AnalysisOptions,
    NetworkAnalysis,
    analyze_network,
    analyze_run,
    write_report,
)
from analysis.protocol import FlatDynamics, StateLayout
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
    "ClassCenters",
    "ClassSpeedAccuracy",
    "Correlation",
    "FlatDynamics",
    "Lineage",
    "MergeEvent",
    "NetworkAnalysis",
    "NetworkSpeedAccuracy",
    "SlowPoints",
    "StateLayout",
    "analyze_network",
    "analyze_run",
    "backtrack",
    "class_accuracy_at_delay",
    "class_centers",
    "class_speed_accuracy",
    "class_speeds",
    "deduplicate",
    "find_slow_points",
    "network_speed_accuracy",
    "spearman",
    "speeds_at",
    "state_trajectories",
    "write_report",
]
