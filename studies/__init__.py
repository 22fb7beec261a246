"""Studies: plans of jobs over run directories, their executors, provenance and reports.

The layer above the pure analysis core (`analysis`): it knows run directories, study folders,
the command line and git. A study (``memenv reproduce``, ``memenv bench``, the regularisation
experiment) is a `Plan`, a DAG of typed `Job` objects, each idempotent on its output; an
executor runs it, in this process (`SerialExecutor`, the default) or on Ray
(`RayExecutor`: ``--jobs N`` or ``--ray-address``). See docs/studies.md.

The names below are imported lazily (PEP 562), so that ``memenv --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "studies.jobs": ("Job", "JobOutcome", "Plan", "job_states", "run_plan"),
    "studies.executors": ("RayExecutor", "SerialExecutor", "make_executor"),
    "studies.finetune": (
        "ModeComparison",
        "RegularizeConfig",
        "RegularizeResult",
        "expected_penalty",
        "finetune_preset",
        "regularize_modes",
        "regularize_run",
        "train_with_speed_penalty",
    ),
    "studies.run_analysis": ("analyze_run", "write_analysis"),
    "studies.reproduce": ("ReproduceConfig", "run_reproduce"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'studies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
