"""Schedules by name, for configuration files and the command line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curricula.adaptive import AdaptiveSchedule, adaptive_decu, adaptive_vocu
from curricula.paper import decu, none, recu, vocu
from curricula.schedule import Curriculum, Schedule
from memenv.config import TaskConfig
from memenv.errors import UsageError

SCHEDULES = {
    "none": none,
    "vocu": vocu,
    "decu": decu,
    "recu": recu,
    "adaptive-vocu": adaptive_vocu,
    "adaptive-decu": adaptive_decu,
}
"""Built-in schedule factories by name; each takes ``(dataset, scale, **options)``."""


def get_schedule(
    name: str | Curriculum, dataset: str = "mnist", scale: float = 1.0, **options: Any
) -> Curriculum:
    """A built-in schedule by name, e.g. ``get_schedule("decu", "cifar10", scale=0.01)``.

    Args:
        name: One of `SCHEDULES` (case-insensitive; ``_`` may stand for ``-``), or a schedule
            object, returned as is (``scale`` and ``options`` must then be left at their
            defaults).
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        scale: Multiplies the step axis (boundaries, adaptive maximum stage lengths).
        **options: Passed to adaptive factories (``threshold``, ``window``, ``min_steps``).

    Raises:
        ValueError: an unknown name or data set, a bad scale, or options a fixed schedule
            does not take.
    """
    if isinstance(name, (Schedule, AdaptiveSchedule)):
        if options or scale != 1.0:
            raise UsageError("scale and options only apply to schedules given by name")
        return name
    if not isinstance(name, str):
        raise UsageError(f"schedule name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if key not in SCHEDULES:
        raise UsageError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    if options and not key.startswith("adaptive-"):
        raise UsageError(f"schedule {key!r} takes no options, got {sorted(options)}")
    return SCHEDULES[key](dataset, scale, **options)


def schedule_from_dict(data: Mapping[str, Any], base: TaskConfig | None = None) -> Curriculum:
    """Rebuilds a schedule from ``schedule.to_dict()`` (fixed or adaptive).

    Raises:
        ValueError: unknown ``kind`` or invalid content.
    """
    kind = data.get("kind", "fixed")
    if kind == "fixed":
        return Schedule.from_dict(data, base)
    if kind == "adaptive":
        return AdaptiveSchedule.from_dict(data, base)
    raise UsageError(f"unknown schedule kind {kind!r}; expected 'fixed' or 'adaptive'")
