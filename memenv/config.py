"""`TaskConfig`: the one description of a delayed-recall trial distribution.

Every consumer (the single env, the vector env, supervised training, evaluation) builds its
trials from a `TaskConfig` through `DelayedRecallTask`, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

DATASETS = ("mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test")
N_LABELS = 10
"""Every supported data set has 10 classes; the action/output space adds the null class."""

RESPONSE_WEIGHT = 20.0
"""Loss weight of the response step (PAPER.md: n_steps - 1 + 1 = 20); null steps weigh 1."""

MAX_NOISE_SCALE = 100.0

# Fields that may change between episodes (reset options, curricula). The others fix the
# observation space or the image pool, so they are set once at construction.
EPISODE_FIELDS = ("n_steps", "t_max", "min_delay", "n_classes", "noise_scale", "delay", "t_stim")


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class TaskConfig:
    """The delayed-recall task of Haviv et al. (2019), one trial distribution.

    A trial lasts ``n_steps`` steps. A clean image of class ``label`` is shown at the stimulus
    time ``t_stim``; every other frame is Gaussian noise with the data set's pixel mean and
    ``noise_scale`` times its pixel std. At the response time ``t_resp`` the trigger channel is 1
    and the correct output is ``label + 1``; the target is 0 (null) at every other step.

    Default (random-delay) mode, exactly as in the paper::

        t_stim ~ U{0, ..., t_max - 1 - min_delay}
        t_resp ~ U{t_stim + min_delay, ..., t_max - 1}

    Fixed-delay mode (``delay`` set, for extrapolation): ``t_resp = t_stim + delay``, where
    ``t_stim`` is the fixed ``t_stim`` if given, else ``U{0, ..., t_max - 1 - min_delay}``.
    ``n_steps`` must then leave room for the latest response.

    Attributes:
        dataset: One of ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``.
        n_steps: Trial length in steps (paper: 20).
        t_max: Responses happen before ``t_max``; steps ``>= t_max`` carry no loss
            (the DeCu curriculum lowers it). ``t_max <= n_steps``.
        min_delay: Smallest ``t_resp - t_stim`` (paper: 4).
        n_classes: Active vocabulary: labels are drawn from the first ``n_classes`` classes.
        noise_scale: Multiplies the noise std (1.0 = the paper; 0.0 = the constant mean frame).
        delay: Fixed delay ``t_resp - t_stim`` (>= 1), or None for the paper's random delays.
        t_stim: Fixed stimulus time, or None. Only meaningful together with ``delay``.
        split: ``"train"`` or ``"test"`` images.
    """

    dataset: str = "mnist"
    n_steps: int = 20
    t_max: int = 20
    min_delay: int = 4
    n_classes: int = 10
    noise_scale: float = 1.0
    delay: int | None = None
    t_stim: int | None = None
    split: str = "train"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        _check_int("n_steps", self.n_steps, 2)
        _check_int("min_delay", self.min_delay, 1)
        _check_int("n_classes", self.n_classes, 1, N_LABELS)
        _check_int("t_max", self.t_max, 2)
        if self.t_max > self.n_steps:
            raise ValueError(f"t_max={self.t_max!r} exceeds n_steps={self.n_steps!r}")
        if self.t_max <= self.min_delay:
            raise ValueError(
                f"t_max={self.t_max!r} leaves no room for min_delay={self.min_delay!r}: "
                "need t_max >= min_delay + 1"
            )
        if (
            isinstance(self.noise_scale, bool)
            or not isinstance(self.noise_scale, numbers.Real)
            or not 0.0 <= float(self.noise_scale) <= MAX_NOISE_SCALE
        ):
            raise ValueError(
                f"noise_scale must be a real number in [0, {MAX_NOISE_SCALE}], "
                f"got {self.noise_scale!r}"
            )
        if self.delay is None:
            if self.t_stim is not None:
                raise ValueError(
                    f"t_stim={self.t_stim!r} needs a fixed delay; set delay as well or drop t_stim"
                )
            return
        _check_int("delay", self.delay, 1)
        if self.t_stim is not None:
            _check_int("t_stim", self.t_stim, 0)
        latest_resp = self.latest_stim + self.delay
        if latest_resp >= self.n_steps:
            raise ValueError(
                f"delay={self.delay!r} with stimulus times up to {self.latest_stim} needs "
                f"n_steps >= {latest_resp + 1}, got n_steps={self.n_steps!r}"
            )

    @property
    def latest_stim(self) -> int:
        """The latest possible stimulus time."""
        if self.t_stim is not None:
            return self.t_stim
        return self.t_max - 1 - self.min_delay

    def replace(self, **changes: Any) -> TaskConfig:
        """A validated copy with ``changes``; unknown field names raise ValueError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown TaskConfig field(s): {unknown}")
        return dataclasses.replace(self, **changes)

    def with_episode_options(self, options: dict[str, Any] | None) -> TaskConfig:
        """A copy with the per-episode ``options`` of ``reset(options=...)`` applied.

        Raises:
            ValueError: for a key outside `EPISODE_FIELDS` or a value the task rejects.
        """
        if not options:
            return self
        if not isinstance(options, dict):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        bad = sorted(str(k) for k in options if k not in EPISODE_FIELDS)
        if bad:
            raise ValueError(
                f"unknown reset option(s) {bad}; allowed options are {list(EPISODE_FIELDS)}"
            )
        return dataclasses.replace(self, **options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
