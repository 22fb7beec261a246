"""Slow-point analysis of recurrent networks on the delayed-recall task (docs/paper.md).

Works on any model that follows the recurrent protocol of docs/agents.md (``forward``,
``initial_state``, ``transition``, ``readout``); see docs/analysis.md.

* `class_centers` -> `ClassCenters`: per-class centres of mass of the settled hidden state.
* `find_slow_points` -> `SlowPoints`: minimise the speed ``q(s) = ||F(s, x) - s||^2`` from a batch
  of states, with the paper's Adam search or a batched Levenberg-Marquardt (``"newton"``);
  `deduplicate` merges coinciding points.
* `class_speed_accuracy`, `network_speed_accuracy`, `spearman`: speed vs long-delay accuracy.
* `backtrack` -> `Lineage`: follow slow points back through a run's checkpoints.
* `analyze_network`: the whole analysis of one network (the run-directory layer above it,
  ``memenv analyze``, is `studies.run_analysis`).
* `SpeedPenalty`, `compute_anchors`: the speed regulariser (fine-tuning with it, ``memenv
  regularize``, is `studies.finetune`; docs/regularize.md).
* `analysis.plots`: figures (`plot_pca`, `plot_lineage`, `plot_speed_accuracy`, `plot_spectra`).
* This package is the pure core: functions from networks and arrays to typed results and
  figures. Run directories, studies, reports and commands live in `studies` (docs/studies.md),
  which imports from here and never the other way round.

The names below are imported lazily (PEP 562), so that ``memenv --help`` (which imports each
command module, e.g. ``studies.analyze_commands``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "analysis.backtrack": (
        "Lineage",
        "MergeEvent",
        "backtrack",
    ),
    "analysis.centers": (
        "ClassCenters",
        "class_centers",
        "state_trajectories",
    ),
    "analysis.pipeline": (
        "AnalysisOptions",
        "NetworkAnalysis",
        "analyze_network",
    ),
    "analysis.protocol": (
        "FlatDynamics",
        "StateLayout",
    ),
    "analysis.regularizer": (
        "Anchors",
        "SpeedPenalty",
        "anchor_speeds",
        "compute_anchors",
    ),
    "analysis.slow_points": (
        "SlowPoints",
        "deduplicate",
        "find_slow_points",
    ),
    "analysis.speed_accuracy": (
        "ClassSpeedAccuracy",
        "Correlation",
        "NetworkSpeedAccuracy",
        "class_accuracy_at_delay",
        "class_speed_accuracy",
        "class_speeds",
        "network_speed_accuracy",
        "spearman",
        "speeds_at",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
