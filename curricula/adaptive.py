"""Adaptive schedules: move to the next stage when the learner is ready (as in PsychRNN).

The consumer reports response accuracy with ``observe(step, n_correct, n_total)``. The
schedule advances one stage when the accuracy over the last ``window`` reported trials reaches
``threshold`` and the stage has lasted at least ``min_steps`` steps, or, whatever the accuracy,
once the stage has lasted ``max_steps`` steps. Its position (stage, stage start, the window)
is state, saved and restored with ``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from curricula.paper import PAPER_BATCH_SIZE, decu, vocu
from curricula.schedule import (
    Schedule,
    _check_counts,
    _check_step,
    accumulate,
    validate_settings,
)
from memenv.config import TaskConfig
from memenv.errors import UsageError

DEFAULT_THRESHOLD = 0.9
"""PsychRNN's default accuracy threshold."""

DEFAULT_WINDOW_BATCHES = 10
"""Default window of the built-in adaptive schedules, in paper batches (1,280 MNIST trials)."""


class AdaptiveSchedule:
    """A curriculum that advances on response accuracy, with a minimum and maximum stage length.

    Stage ``i`` is left after the report at step ``s`` (the stage then becomes ``i + 1`` from
    step ``s + 1`` on) when, counting the steps ``stage_start .. s`` (``s - stage_start + 1``
    of them):

    * at least ``min_steps[i]`` steps have passed, the window holds at least ``window`` trials
      and their accuracy ``sum(n_correct) / sum(n_total)`` is ``>= threshold``; or
    * ``max_steps[i]`` (when not None) steps have passed.

    The window keeps the most recent reports of the current stage: whole reports, the fewest
    that hold ``window`` trials. It is emptied at every stage change, so a stage is judged on
    its own trials. The last stage is never left. At most one stage is advanced per report.

    Several reports may carry the same step (a Gymnasium wrapper reports every episode, many
    episodes to a step); reports at the step of an advance that come after it count for the
    new stage (which has then lasted 0 steps).

    Args:
        stages: The settings each stage sets (keys from `memenv.config.EPISODE_FIELDS`);
            settings accumulate over stages as in `curricula.Schedule`.
        name: A short name (``"adaptive-vocu"``...).
        threshold: Accuracy in (0, 1] needed to advance.
        window: Number of trials (responses) the accuracy is measured over, >= 1.
        min_steps: Minimum steps per stage: one integer for all stages or one per stage.
        max_steps: Maximum steps per stage (forced advance): None, one integer or None for all
            stages, or one per stage.
        base: Configuration the settings are checked against (default ``TaskConfig()``).

    Raises:
        ValueError: no stages, bad threshold / window / step limits (named), a max below a
            min, unknown settings or settings the task rejects (the stage is named).
    """

    is_adaptive = True

    def __init__(
        self,
        stages: Sequence[Mapping[str, Any]],
        name: str = "adaptive",
        threshold: float = DEFAULT_THRESHOLD,
        window: int = 1000,
        min_steps: int | Sequence[int] = 0,
        max_steps: int | None | Sequence[int | None] = None,
        base: TaskConfig | None = None,
    ) -> None:
        self.name = str(name)
        stages = list(stages)
        if not stages:
            raise UsageError(f"adaptive schedule {self.name!r} has no stages")
        for i, settings in enumerate(stages):
            if not isinstance(settings, Mapping):
                raise UsageError(
                    f"adaptive schedule {self.name!r}: stage {i} settings must be a mapping, "
                    f"got {type(settings).__name__}"
                )
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or not 0 < threshold <= 1
        ):
            raise UsageError(f"threshold must be a number in (0, 1], got {threshold!r}")
        if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
            raise UsageError(f"window must be an integer >= 1, got {window!r}")
        self.threshold = float(threshold)
        self.window = int(window)
        self.stages: tuple[dict[str, Any], ...] = tuple(dict(s) for s in stages)
        self.min_steps = _per_stage("min_steps", min_steps, len(stages), allow_none=False)
        self.max_steps = _per_stage("max_steps", max_steps, len(stages), allow_none=True)
        for i, (low, high) in enumerate(zip(self.min_steps, self.max_steps, strict=True)):
            if high is not None and high < max(low, 1):
                raise UsageError(f"stage {i}: max_steps={high} must be >= 1 and >= min_steps={low}")
        self._in_force = accumulate(self.stages)
        self.base = base if base is not None else TaskConfig()
        self.validate(self.base)
        self.reset()

    # --------------------------------------------------------------------------- position
    def reset(self) -> None:
        """Back to stage 0 at step 0, with an empty window and history."""
        self._stage = 0
        self._stage_start = 0
        self._last_step = 0
        self._reports: deque[tuple[int, int]] = deque()
        self._history: list[tuple[int, int]] = [(0, 0)]

    @property
    def stage(self) -> int:
        """Index of the current stage."""
        return self._stage

    @property
    def stage_start(self) -> int:
        """First step of the current stage."""
        return self._stage_start

    @property
    def history(self) -> list[tuple[int, int]]:
        """``(stage, start step)`` of every stage entered so far."""
        return list(self._history)

    @property
    def window_accuracy(self) -> float | None:
        """Accuracy over the current window, or None when it holds no trial."""
        total = sum(t for _, t in self._reports)
        return None if total == 0 else sum(c for c, _ in self._reports) / total

    @property
    def window_trials(self) -> int:
        """Number of trials in the current window."""
        return sum(t for _, t in self._reports)

    # ------------------------------------------------------------ the Curriculum protocol
    @property
    def n_stages(self) -> int:
        """Number of stages."""
        return len(self.stages)

    def at(self, step: int) -> dict[str, Any]:
        """The settings in force in the current stage (``step`` is checked, not used)."""
        _check_step("step", step)
        return dict(self._in_force[self._stage])

    def stage_index(self, step: int) -> int:
        """The current stage (``step`` is checked, not used)."""
        _check_step("step", step)
        return self._stage

    def stage_settings(self) -> list[dict[str, Any]]:
        """The settings in force during each stage (accumulated), in stage order."""
        return [dict(s) for s in self._in_force]

    def observe(self, step: int, n_correct: int, n_total: int) -> bool:
        """Reports ``n_correct`` correct responses out of ``n_total`` trials run at ``step``.

        Args:
            step: The step the trials were run at (non-decreasing across calls).
            n_correct: Correct responses.
            n_total: Trials (responses) reported.

        Returns:
            True when this report moved the schedule to the next stage (its settings apply
            from ``step + 1``).

        Raises:
            ValueError: negative or inconsistent counts, or a step before the previous report's.
        """
        _check_step("step", step)
        _check_counts(n_correct, n_total)
        if step < self._last_step:
            raise UsageError(
                f"step {step} is before the previous report's step {self._last_step} "
                "(steps must not go backwards; restore the state that matches your run)"
            )
        self._last_step = int(step)
        if self._stage == self.n_stages - 1:
            return False
        if n_total:
            self._reports.append((int(n_correct), int(n_total)))
            total = sum(t for _, t in self._reports)
            while len(self._reports) > 1 and total - self._reports[0][1] >= self.window:
                total -= self._reports.popleft()[1]
        steps_done = max(0, step - self._stage_start + 1)
        limit = self.max_steps[self._stage]
        ready = (
            steps_done >= self.min_steps[self._stage]
            and self.window_trials >= self.window
            and self.window_accuracy >= self.threshold
        )
        if not ready and (limit is None or steps_done < limit):
            return False
        self._stage += 1
        self._stage_start = step + 1
        self._reports.clear()
        self._history.append((self._stage, self._stage_start))
        return True

    def state_dict(self) -> dict[str, Any]:
        """The position as plain data (JSON-ready)."""
        return {
            "kind": "adaptive",
            "name": self.name,
            "n_stages": self.n_stages,
            "stage": self._stage,
            "stage_start": self._stage_start,
            "last_step": self._last_step,
            "reports": [list(r) for r in self._reports],
            "history": [list(h) for h in self._history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores a position saved by `state_dict`.

        Raises:
            ValueError: the state is malformed or belongs to a schedule with another number of
                stages.
        """
        try:
            n_stages = state["n_stages"]
            stage = state["stage"]
            stage_start = state["stage_start"]
            last_step = state["last_step"]
            reports = [(c, t) for c, t in state["reports"]]
            history = [(s, t) for s, t in state["history"]]
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(f"malformed adaptive schedule state: {error!r}") from error
        if n_stages != self.n_stages:
            raise UsageError(
                f"state has {n_stages} stages, schedule {self.name!r} has {self.n_stages}"
            )
        _check_step("stage", stage)
        if stage >= self.n_stages:
            raise UsageError(f"stage {stage} out of range for {self.n_stages} stages")
        _check_step("stage_start", stage_start)
        _check_step("last_step", last_step)
        for c, t in reports:
            _check_counts(c, t)
        self._stage = int(stage)
        self._stage_start = int(stage_start)
        self._last_step = int(last_step)
        self._reports = deque((int(c), int(t)) for c, t in reports)
        self._history = [(int(s), int(t)) for s, t in history]

    # ------------------------------------------------------------------------ utilities
    def validate(self, base: TaskConfig) -> None:
        """Checks every stage's settings against ``base`` (ValueError naming the stage)."""
        validate_settings(self.name, self._in_force, base)

    def to_dict(self) -> dict[str, Any]:
        """The definition (not the position) as plain data; see `from_dict`."""
        return {
            "kind": "adaptive",
            "name": self.name,
            "stages": [dict(s) for s in self.stages],
            "threshold": self.threshold,
            "window": self.window,
            "min_steps": list(self.min_steps),
            "max_steps": list(self.max_steps),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: TaskConfig | None = None) -> AdaptiveSchedule:
        """Inverse of `to_dict`."""
        if data.get("kind") != "adaptive":
            raise UsageError(f"not an adaptive schedule: kind={data.get('kind')!r}")
        keys = ("threshold", "window", "min_steps", "max_steps")
        return cls(
            data["stages"], data.get("name", "adaptive"), **{k: data[k] for k in keys}, base=base
        )

    @classmethod
    def from_schedule(
        cls,
        schedule: Schedule,
        threshold: float = DEFAULT_THRESHOLD,
        window: int = 1000,
        min_steps: int | Sequence[int] = 0,
        max_steps: str | int | None | Sequence[int | None] = "durations",
    ) -> AdaptiveSchedule:
        """The stages of a fixed schedule, advanced on accuracy.

        Args:
            schedule: The fixed schedule whose stages (in order) to use.
            threshold: See the class.
            window: See the class.
            min_steps: See the class.
            max_steps: ``"durations"`` (default): each stage's length in ``schedule``, so the
                adaptive curriculum is never slower than the fixed one; or as in the class.
        """
        if isinstance(max_steps, str):
            if max_steps != "durations":
                raise UsageError(
                    f"max_steps must be 'durations', None or integers, got {max_steps!r}"
                )
            starts = schedule.starts
            max_steps = [b - a for a, b in pairwise(starts)] + [None]
        return cls(
            [dict(stage.settings) for stage in schedule.stages],
            name=f"adaptive-{schedule.name}",
            threshold=threshold,
            window=window,
            min_steps=min_steps,
            max_steps=max_steps,
            base=schedule.base,
        )

    def __repr__(self) -> str:
        return (
            f"AdaptiveSchedule({self.name!r}, stages={list(self.stages)}, "
            f"threshold={self.threshold}, window={self.window}, stage={self._stage})"
        )


def adaptive_vocu(
    dataset: str = "mnist",
    scale: float = 1.0,
    threshold: float = DEFAULT_THRESHOLD,
    window: int | None = None,
    min_steps: int = 0,
) -> AdaptiveSchedule:
    """VoCu's stages, advanced on accuracy, each at most as long as in the paper (scaled).

    Args:
        dataset: As in `curricula.vocu`.
        scale: Scales the maximum stage lengths.
        threshold: Accuracy needed to advance.
        window: Trials per accuracy window; default 10 paper batches (1,280 MNIST, 640 CIFAR-10).
        min_steps: Minimum steps per stage.
    """
    return _adaptive(vocu(dataset, scale), dataset, threshold, window, min_steps)


def adaptive_decu(
    dataset: str = "mnist",
    scale: float = 1.0,
    threshold: float = DEFAULT_THRESHOLD,
    window: int | None = None,
    min_steps: int = 0,
) -> AdaptiveSchedule:
    """DeCu's stages, advanced on accuracy, each at most as long as in the paper (scaled).

    Args: as `adaptive_vocu`.
    """
    return _adaptive(decu(dataset, scale), dataset, threshold, window, min_steps)


def _adaptive(
    fixed: Schedule, dataset: str, threshold: float, window: int | None, min_steps: int
) -> AdaptiveSchedule:
    window = DEFAULT_WINDOW_BATCHES * PAPER_BATCH_SIZE[dataset] if window is None else window
    return AdaptiveSchedule.from_schedule(fixed, threshold, window, min_steps)


def _per_stage(what: str, value: Any, n_stages: int, allow_none: bool) -> tuple[int | None, ...]:
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if values is None:
        values = [value] * n_stages
    elif len(values) != n_stages:
        raise UsageError(f"{what} has {len(values)} entries for {n_stages} stages")
    for i, v in enumerate(values):
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            kind = "an integer >= 0" + (" or None" if allow_none else "")
            raise UsageError(f"{what} for stage {i} must be {kind}, got {v!r}")
    return tuple(None if v is None else int(v) for v in values)
