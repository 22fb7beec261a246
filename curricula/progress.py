"""`CurriculumProgress`: episodes or environment steps counted, turned into schedule steps.

Shared by the single-env and vector-env wrappers (`curricula.wrappers`). The paper's schedules
count training steps of one batch each (128 MNIST trials, 64 CIFAR-10 trials); one episode is
one trial. So by default one schedule step = ``PAPER_BATCH_SIZE[dataset]`` episodes: an agent
sees as many trials in each stage as the paper's networks did. Counting environment steps
instead, one schedule step = that many episodes' worth of steps at the paper's trial length
(128 x 20 = 2,560 MNIST steps).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curricula.catalog import get_schedule
from curricula.paper import PAPER_BATCH_SIZE
from curricula.schedule import Curriculum
from memenv.config import TaskConfig
from memenv.errors import UsageError

UNITS = ("episodes", "steps")
PAPER_TRIAL_STEPS = 20
"""Steps per trial in the paper; converts the default episodes-per-step into env steps."""


@dataclass(frozen=True)
class EpisodeCurriculum:
    """What the schedule set for one episode.

    Attributes:
        stage: Stage index.
        step: Schedule step at the episode's start.
        options: The ``reset`` options passed: every setting the schedule ever sets, at its
            value in this stage (the base configuration's value before a stage sets it).
    """

    stage: int
    step: int
    options: dict[str, Any]


class CurriculumProgress:
    """Counts episodes or environment steps and maps the count to schedule steps and options.

    ``schedule step = count // units_per_step``. The options for an episode hold every setting
    the schedule sets at any stage, taking the value of ``base`` until a stage sets it, so an
    episode's task never depends on what earlier episodes or ``reset`` calls left behind.

    Args:
        schedule: A `curricula.Schedule` / `curricula.AdaptiveSchedule`, or a name for
            `curricula.get_schedule` (resolved with ``base.dataset``).
        base: The environment's configuration at wrap time; the schedule is checked against it.
        unit: ``"episodes"`` (count completed episodes) or ``"steps"`` (count env steps).
        units_per_step: Counted units per schedule step; default ``PAPER_BATCH_SIZE[dataset]``
            episodes or that times 20 steps.

    Raises:
        ValueError: bad unit or units_per_step, or a schedule that ``base`` rejects.
    """

    def __init__(
        self,
        schedule: Curriculum | str,
        base: TaskConfig,
        unit: str = "episodes",
        units_per_step: int | None = None,
    ) -> None:
        if isinstance(schedule, str):
            schedule = get_schedule(schedule, base.dataset)
        if not isinstance(schedule, Curriculum):
            raise UsageError(
                f"schedule must be a schedule or a name, got {type(schedule).__name__}"
            )
        if unit not in UNITS:
            raise UsageError(f"unit must be one of {UNITS}, got {unit!r}")
        if units_per_step is None:
            per_trial = 1 if unit == "episodes" else PAPER_TRIAL_STEPS
            units_per_step = PAPER_BATCH_SIZE[base.dataset] * per_trial
        if (
            isinstance(units_per_step, bool)
            or not isinstance(units_per_step, numbers.Integral)
            or units_per_step < 1
        ):
            raise UsageError(f"units_per_step must be an integer >= 1, got {units_per_step!r}")
        schedule.validate(base)
        self.schedule = schedule
        self.unit = unit
        self.units_per_step = int(units_per_step)
        keys = sorted({key for settings in schedule.stage_settings() for key in settings})
        self.defaults = {key: getattr(base, key) for key in keys}
        self.count = 0

    def schedule_step(self, count: int | None = None) -> int:
        """The schedule step at ``count`` counted units (default: the current count)."""
        return (self.count if count is None else count) // self.units_per_step

    def episode_at(self, step: int) -> EpisodeCurriculum:
        """Stage and ``reset`` options for an episode starting at schedule step ``step``."""
        options = {**self.defaults, **self.schedule.at(step)}
        return EpisodeCurriculum(self.schedule.stage_index(step), step, options)

    def count_steps(self, n_steps: int) -> None:
        """Records ``n_steps`` environment steps (counted when ``unit == "steps"``)."""
        if self.unit == "steps":
            self.count += n_steps

    def end_episodes(self, n_episodes: int, n_correct: int, n_total: int) -> bool:
        """Records finished episodes and reports their responses to the schedule.

        The report's step is that of the last counted unit, ``(count - 1) // units_per_step``,
        so an adaptive schedule's stage lengths line up with the fixed schedule's.

        Returns:
            True when the report moved the schedule to its next stage.
        """
        if self.unit == "episodes":
            self.count += n_episodes
        return self.schedule.observe(
            max(self.count - 1, 0) // self.units_per_step, n_correct, n_total
        )

    def state_dict(self) -> dict[str, Any]:
        """The count and the schedule's state, as plain data."""
        return {
            "count": self.count,
            "unit": self.unit,
            "units_per_step": self.units_per_step,
            "schedule": self.schedule.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores `state_dict`; takes effect at the next episode start.

        Raises:
            ValueError: a state for another unit or units_per_step, or a malformed one.
        """
        if (state.get("unit"), state.get("units_per_step")) != (self.unit, self.units_per_step):
            raise UsageError(
                f"state counts {state.get('units_per_step')!r} {state.get('unit')!r} per step; "
                f"this wrapper counts {self.units_per_step} {self.unit}"
            )
        count = state.get("count")
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise UsageError(f"count must be an integer >= 0, got {count!r}")
        self.schedule.load_state_dict(state.get("schedule", {}))
        self.count = int(count)
