"""Curricula as seen by the trainer: any object with ``at(step) -> dict``.

A schedule maps a 0-based training step to a dict of `memenv.TaskConfig` field changes relative
to the run's base task (e.g. ``{"n_classes": 4}``, ``{"t_max": 8}`` or, for ReCu,
``{"null_weight": 0.25}``: the sampler's ``loss_weight`` carries it into the loss). Adaptive schedules
also have ``observe(step, n_correct, n_total)`` (the response accuracy of that step's batch)
and ``state_dict()`` / ``load_state_dict(d)``, which the trainer saves in its checkpoints.

Names (`TrainConfig.curriculum`) are resolved here, lazily, through the ``curricula`` package
(``curricula.get_schedule``); ``"none"`` needs no curricula package.
"""

from __future__ import annotations

import copy
from typing import Any

from memenv.errors import UsageError


def resolve_schedule(name: str, dataset: str, scale: float = 1.0) -> Any | None:
    """The schedule named ``name`` (None for ``"none"``: the base task throughout).

    Other names go to ``curricula.get_schedule(name, dataset, scale)`` (``"vocu"``,
    ``"decu"``, ``"recu"``, ``"adaptive-vocu"``, ``"adaptive-decu"``, ...).

    Raises:
        ValueError: naming ``TrainConfig.curriculum`` when the name is unknown or the
            curricula package is missing.
    """
    if name == "none":
        return None
    try:
        from curricula import get_schedule
    except ImportError as error:
        raise UsageError(
            f"TrainConfig.curriculum={name!r} needs the curricula package, which is not "
            f"importable ({error})"
        ) from error
    try:
        return get_schedule(name, dataset, scale=scale)
    except ValueError as error:
        raise UsageError(f"TrainConfig.curriculum={name!r}: {error}") from error


def is_adaptive(schedule: Any | None) -> bool:
    """Whether the schedule moves on accuracy feedback.

    Its ``is_adaptive`` attribute when it has one (the curricula package's schedules), else
    whether it has an ``observe`` method.
    """
    if schedule is None:
        return False
    flag = getattr(schedule, "is_adaptive", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(schedule, "observe", None))


class MemberSchedules:
    """The schedule(s) of K ensemble members.

    A fixed schedule is shared (every member sees the same task at every step). An adaptive
    one is copied per member, so that each member's curriculum follows its own accuracy, as it
    would in a run of its own.
    """

    def __init__(self, schedule: Any | None, n_members: int) -> None:
        self.adaptive = is_adaptive(schedule)
        if self.adaptive:
            self.schedules = [copy.deepcopy(schedule) for _ in range(n_members)]
        else:
            self.schedules = [schedule] * n_members
        self.n_members = n_members

    def changes_at(self, step: int) -> list[dict[str, Any]]:
        """Per member, the task changes of ``step`` (fixed schedules are asked once)."""
        if self.schedules[0] is None:
            return [{}] * self.n_members
        if not self.adaptive:
            return [dict(self.schedules[0].at(step))] * self.n_members
        return [dict(s.at(step)) for s in self.schedules]

    def observe(self, step: int, n_correct: list[int], n_total: int) -> None:
        if self.adaptive:
            for schedule, correct in zip(self.schedules, n_correct, strict=True):
                schedule.observe(step, int(correct), int(n_total))

    def state_dict(self) -> list[Any] | None:
        if self.schedules[0] is None or not hasattr(self.schedules[0], "state_dict"):
            return None
        unique = self.schedules if self.adaptive else self.schedules[:1]
        return [s.state_dict() for s in unique]

    def load_state_dict(self, states: list[Any] | None) -> None:
        if states is None:
            return
        unique = self.schedules if self.adaptive else self.schedules[:1]
        if len(states) != len(unique):
            raise UsageError(f"saved {len(states)} schedule states, this run has {len(unique)}")
        for schedule, state in zip(unique, states, strict=True):
            schedule.load_state_dict(state)
