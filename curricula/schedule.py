"""Fixed step schedules: an ordered list of stages, each a start step and the settings it sets.

A `Schedule` is pure data. Its "steps" are whatever the consumer counts: training steps for
the supervised trainer (the paper's unit, one batch each), or a count of episodes or
environment steps turned into schedule steps by the Gymnasium wrappers (see
`curricula.wrappers`).

Settings are `memenv.config.EPISODE_FIELDS` (``n_classes``, ``t_max``, ...), the fields a
`memenv.TaskConfig` lets change between episodes. Settings accumulate: a stage keeps every
setting of the earlier stages that it does not set again, so ``at(step)`` always returns
everything the schedule has set so far.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from memenv.config import EPISODE_FIELDS, TaskConfig
from memenv.errors import UsageError


@dataclass(frozen=True)
class Stage:
    """One stage of a fixed schedule.

    Attributes:
        start: First schedule step of the stage (an integer >= 0).
        settings: Task settings the stage sets (keys from `memenv.config.EPISODE_FIELDS`);
            read-only.
    """

    start: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    def to_dict(self) -> dict[str, Any]:
        """``{"start": ..., "settings": {...}}``."""
        return {"start": self.start, "settings": dict(self.settings)}

    def __reduce__(self) -> tuple[Any, ...]:  # a mappingproxy does not pickle; its dict does
        return (Stage, (self.start, dict(self.settings)))


@runtime_checkable
class Curriculum(Protocol):
    """What a trainer or wrapper needs from a schedule, fixed or adaptive.

    ``at(step)`` gives the settings in force; ``observe`` reports response accuracy (a no-op
    for fixed schedules); ``state_dict`` / ``load_state_dict`` save and restore the position
    (empty for fixed schedules, whose position is the step itself).
    """

    name: str

    @property
    def n_stages(self) -> int: ...

    @property
    def is_adaptive(self) -> bool: ...

    def at(self, step: int) -> dict[str, Any]: ...

    def stage_index(self, step: int) -> int: ...

    def observe(self, step: int, n_correct: int, n_total: int) -> bool: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def stage_settings(self) -> list[dict[str, Any]]: ...

    def validate(self, base: TaskConfig) -> None: ...


class Schedule:
    """A fixed curriculum: task settings as a step function of the training step.

    Stage ``i`` is in force for steps ``stages[i].start <= step < stages[i + 1].start``; the
    last stage stays in force for ever. The first stage starts at step 0.

    Args:
        stages: The stages, as `Stage` objects or ``(start, settings)`` pairs, in strictly
            increasing order of ``start``.
        name: A short name (``"vocu"``, ``"decu"``...), used in logs, ``info`` and plots.
        total_steps: Optional length of the training run the schedule was written for (the
            paper's 140,000 MNIST / 300,000 CIFAR-10 steps); informative only (plots, the
            trainer's default run length). Must be after the last stage's start.
        base: The task configuration the settings are checked against (default
            ``TaskConfig()``), kept as ``schedule.base``. Pass the configuration you will use
            when a stage is only valid for it (e.g. ``t_max=30`` needs ``n_steps >= 30``).
            Consumers check again against their own configuration (`Schedule.validate`).

    Raises:
        ValueError: a start that is not an integer >= 0, a first stage that does not start at
            0, stages out of order or at the same step, a setting outside
            `memenv.config.EPISODE_FIELDS`, or settings that ``base`` rejects. The message
            names the stage and the setting.
    """

    is_adaptive = False

    def __init__(
        self,
        stages: Iterable[Stage | tuple[int, Mapping[str, Any]]],
        name: str = "custom",
        total_steps: int | None = None,
        base: TaskConfig | None = None,
    ) -> None:
        self.name = str(name)
        self.stages: tuple[Stage, ...] = tuple(_as_stage(i, s) for i, s in enumerate(stages))
        if not self.stages:
            raise UsageError(f"schedule {self.name!r} has no stages")
        starts = [stage.start for stage in self.stages]
        if starts[0] != 0:
            raise UsageError(f"schedule {self.name!r}: stage 0 starts at {starts[0]}, not at 0")
        for i in range(1, len(starts)):
            if starts[i] <= starts[i - 1]:
                raise UsageError(
                    f"schedule {self.name!r}: stages out of order: stage {i} starts at "
                    f"{starts[i]}, not after stage {i - 1} (start {starts[i - 1]})"
                )
        if total_steps is not None:
            _check_step("total_steps", total_steps)
            if total_steps <= starts[-1]:
                raise UsageError(
                    f"schedule {self.name!r}: total_steps={total_steps} is not after the last "
                    f"stage's start {starts[-1]}"
                )
        self.total_steps = total_steps
        self._starts = starts
        self._in_force = accumulate([stage.settings for stage in self.stages])
        self.base = base if base is not None else TaskConfig()
        self.validate(self.base)

    # --------------------------------------------------------------------------- queries
    @property
    def n_stages(self) -> int:
        """Number of stages."""
        return len(self.stages)

    @property
    def starts(self) -> list[int]:
        """Start step of every stage."""
        return list(self._starts)

    def stage_index(self, step: int) -> int:
        """Index of the stage in force at ``step`` (an integer >= 0)."""
        _check_step("step", step)
        lo, hi = 0, len(self._starts)
        while hi - lo > 1:  # the last start <= step (bisect on a plain list of ints)
            mid = (lo + hi) // 2
            if self._starts[mid] <= step:
                lo = mid
            else:
                hi = mid
        return lo

    def at(self, step: int) -> dict[str, Any]:
        """The settings in force at ``step``: a new dict, e.g. ``{"n_classes": 4, "t_max": 20}``.

        Apply them with ``config.with_episode_options(schedule.at(step))`` or as
        ``env.reset(options=...)``.
        """
        return dict(self._in_force[self.stage_index(step)])

    def stage_settings(self) -> list[dict[str, Any]]:
        """The settings in force during each stage (accumulated), in stage order."""
        return [dict(s) for s in self._in_force]

    def validate(self, base: TaskConfig) -> None:
        """Checks every stage's settings against ``base``.

        Raises:
            ValueError: naming the stage and the setting ``base`` rejects.
        """
        validate_settings(self.name, self._in_force, base, [s.start for s in self.stages])

    # ------------------------------------------------------------ the Curriculum protocol
    def observe(self, step: int, n_correct: int, n_total: int) -> bool:
        """Accuracy reports do not move a fixed schedule. Returns False (no stage change)."""
        _check_counts(n_correct, n_total)
        return False

    def state_dict(self) -> dict[str, Any]:
        """A fixed schedule's position is the step its consumer passes; nothing to save."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Accepts the empty state of `state_dict`.

        Raises:
            ValueError: for a non-empty state (it was saved from another kind of schedule).
        """
        if state:
            raise UsageError(
                f"fixed schedule {self.name!r} has no state; got keys {sorted(state)} "
                "(saved from an adaptive schedule?)"
            )

    # ------------------------------------------------------------------- transformations
    def scaled(self, scale: float) -> Schedule:
        """The same schedule with every start (and ``total_steps``) multiplied by ``scale``.

        Starts are rounded to the nearest integer (halves up), so ``scale=0.01`` turns the
        paper's 8,000-step boundary into 80.

        Raises:
            ValueError: ``scale`` is not a finite number > 0, or so small that two stages
                would start at the same step.
        """
        check_scale(scale)
        if scale == 1:
            return self
        stages = [Stage(scale_step(s.start, scale), s.settings) for s in self.stages]
        for i in range(1, len(stages)):
            if stages[i].start <= stages[i - 1].start:
                raise UsageError(
                    f"scale={scale!r} is too small for schedule {self.name!r}: stages {i - 1} "
                    f"and {i} (starts {self.stages[i - 1].start}, {self.stages[i].start}) "
                    f"would both start at step {stages[i].start}"
                )
        total = None if self.total_steps is None else scale_step(self.total_steps, scale)
        if total is not None and total <= stages[-1].start:
            total = stages[-1].start + 1
        return Schedule(stages, name=self.name, total_steps=total, base=self.base)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) that `Schedule.from_dict` turns back into this schedule."""
        return {
            "kind": "fixed",
            "name": self.name,
            "total_steps": self.total_steps,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: TaskConfig | None = None) -> Schedule:
        """Inverse of `to_dict`."""
        if data.get("kind", "fixed") != "fixed":
            raise UsageError(f"not a fixed schedule: kind={data.get('kind')!r}")
        stages = [(s["start"], s["settings"]) for s in data["stages"]]
        return cls(stages, data.get("name", "custom"), data.get("total_steps"), base)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, tuple(self._starts)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{s.start}: {dict(s.settings)}" for s in self.stages)
        return f"Schedule({self.name!r}, {{{parts}}}, total_steps={self.total_steps})"


# ------------------------------------------------------------------------------ helpers
def accumulate(settings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Settings in force per stage: each stage's settings over those of the stages before."""
    in_force: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for stage_settings in settings:
        current = {**current, **stage_settings}
        in_force.append(current)
    return in_force


def validate_settings(
    name: str,
    in_force: Sequence[Mapping[str, Any]],
    base: TaskConfig,
    starts: Sequence[int] | None = None,
) -> None:
    """Raises ValueError, naming the stage and the setting, if ``base`` rejects a stage."""
    if not isinstance(base, TaskConfig):
        raise UsageError(f"base must be a TaskConfig, got {type(base).__name__}")
    for i, settings in enumerate(in_force):
        where = f"stage {i}" + ("" if starts is None else f" (start {starts[i]})")
        unknown = sorted(str(k) for k in settings if k not in EPISODE_FIELDS)
        if unknown:
            raise UsageError(
                f"schedule {name!r}, {where}: unknown setting(s) {unknown}; a schedule can set "
                f"{list(EPISODE_FIELDS)}"
            )
        try:
            base.with_episode_options(dict(settings))
        except (ValueError, TypeError) as error:
            raise UsageError(
                f"schedule {name!r}, {where}: the task rejects settings {dict(settings)}: {error}"
            ) from error


def _as_stage(index: int, stage: Stage | tuple[int, Mapping[str, Any]]) -> Stage:
    if not isinstance(stage, Stage):
        try:
            start, settings = stage
        except (TypeError, ValueError) as error:
            raise UsageError(
                f"stage {index} must be a Stage or a (start, settings) pair, got {stage!r}"
            ) from error
        if not isinstance(settings, Mapping):
            raise UsageError(
                f"stage {index}: settings must be a mapping, got {type(settings).__name__}"
            )
        stage = Stage(start, settings)
    _check_step(f"stage {index} start", stage.start)
    return stage


def _check_step(what: str, step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise UsageError(f"{what} must be an integer >= 0, got {step!r}")


def _check_counts(n_correct: Any, n_total: Any) -> None:
    _check_step("n_total", n_total)
    _check_step("n_correct", n_correct)
    if n_correct > n_total:
        raise UsageError(f"n_correct={n_correct!r} exceeds n_total={n_total!r}")


def check_scale(scale: Any) -> None:
    """Raises ValueError unless ``scale`` is a finite real number > 0."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise UsageError(f"scale must be a finite number > 0, got {scale!r}")


def scale_step(step: int, scale: float) -> int:
    """``step * scale`` rounded to the nearest integer, halves up."""
    return int(math.floor(step * scale + 0.5))
