"""`TaskConfig`: the one description of a delayed-recall trial distribution.

Every consumer (the single env, the vector env, supervised training, evaluation) builds its
trials from a `TaskConfig` through `DelayedRecallTask`, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memenv.errors import UsageError

DATASETS = ("mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test", "fit", "validation")
"""Image splits: the data set's training and test images, and the training images cut in two
for tuning: ``validation`` (the last tenth of each class's training images) and ``fit`` (the
rest). Test images are never used to choose settings."""
N_LABELS = 10
"""Every supported data set has 10 classes; the action/output space adds the null class."""

RESPONSE_WEIGHT = 20.0
"""Loss weight of the response step at the paper's loss (docs/paper.md: n_steps - 1 + 1 = 20), where
null steps weigh 1. In general the response weighs ``RESPONSE_WEIGHT - 1 + null_weight`` (see
`TaskConfig.null_weight`): the authors' ``(t_max - 1) * Z * Y + alpha * Y`` with ``t_max = 20``."""

MAX_NOISE_SCALE = 100.0

MAX_N_STEPS = 2**31 - 1
"""Longest trial. Step indices then fit int32 for any consumer, and the int64 arithmetic of the
samplers (``t_stim + delay`` and the like) cannot overflow."""

DEFAULT_MAX_BYTES = 4 * 2**30
"""Default ceiling on what one call may allocate (the vector env's buffers, a sampled batch).
Larger requests are refused with a `UsageError` before anything is allocated, rather than
failing after gigabytes with a `MemoryError`. Override with the environment variable
``MEMENV_MAX_BYTES`` (bytes, an integer)."""

MAX_BYTES_ENV = "MEMENV_MAX_BYTES"

# Fields that may change between episodes (reset options, curricula). The others fix the
# observation space or the image pool, so they are set once at construction.
EPISODE_FIELDS = (
    "n_steps",
    "t_max",
    "min_delay",
    "n_classes",
    "noise_scale",
    "delay",
    "t_stim",
    "null_weight",
)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as a Python int; bools and floats (even 2.0) are refused, not converted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UsageError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    # isinstance first: `value in choices` on a numpy array would compare element-wise.
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{name} must be one of {choices}, got {value!r}")
    return str(value)


def _check_noise_scale(value: Any) -> float:
    # Compared before float(): float() of a huge int overflows; NaN fails both comparisons.
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value <= MAX_NOISE_SCALE
    ):
        raise UsageError(
            f"noise_scale must be a real number in [0, {MAX_NOISE_SCALE}], got {value!r}"
        )
    return float(value)


def _check_null_weight(value: Any) -> float:
    # Compared before float(), as for noise_scale: no OverflowError, and NaN fails both tests.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise UsageError(f"null_weight must be a real number in [0, 1], got {value!r}")
    return float(value)


def short_repr(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages about any input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def format_bytes(n_bytes: int) -> str:
    """``n_bytes`` for a message: ``"4 GiB (4,294,967,296 bytes)"``."""
    return f"{n_bytes / 2**30:.3g} GiB ({n_bytes:,} bytes)"


def max_bytes() -> int:
    """The allocation ceiling: ``$MEMENV_MAX_BYTES`` if set, else `DEFAULT_MAX_BYTES`."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise UsageError(f"{MAX_BYTES_ENV} must be a positive integer (bytes), got {raw!r}")
    return limit


def check_bytes(n_bytes: int, what: str) -> None:
    """Refuses, before allocating, a request of ``n_bytes`` over `max_bytes`.

    ``what`` names the request and the arguments that size it, e.g. ``"num_envs=1000000
    (obs_dim=785, ...)"``.
    """
    limit = max_bytes()
    if n_bytes > limit:
        raise UsageError(
            f"{what} would allocate about {format_bytes(n_bytes)}, over the limit of "
            f"{format_bytes(limit)}; ask for less, or raise the limit with the environment "
            f"variable {MAX_BYTES_ENV}"
        )


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
        n_steps: Trial length in steps (paper: 20; at most `MAX_N_STEPS`).
        t_max: Responses happen before ``t_max``; steps ``>= t_max`` carry no loss
            (the DeCu curriculum lowers it). ``t_max <= n_steps``.
        min_delay: Smallest ``t_resp - t_stim`` (paper: 4).
        n_classes: Active vocabulary: labels are drawn from the first ``n_classes`` classes.
        noise_scale: Multiplies the noise std (1.0 = the paper; 0.0 = the constant mean frame).
        delay: Fixed delay ``t_resp - t_stim`` (>= 1), or None for the paper's random delays.
        t_stim: Fixed stimulus time, or None. Only meaningful together with ``delay``.
        split: ``"train"`` or ``"test"`` images; ``"fit"`` / ``"validation"``: the training
            images cut in two for tuning (`SPLITS`).
        null_weight: Supervised loss weight of the null steps before ``t_max``, in [0, 1]
            (the ReCu curriculum raises it from 0 to 1; 1.0 = the paper's loss). The response
            step weighs ``RESPONSE_WEIGHT - 1 + null_weight`` (19 + null_weight), as in the
            authors' loss ``(t_max - 1) * Z * Y + alpha * Y`` with ``t_max = 20``; steps
            ``>= t_max`` weigh 0. It changes only the ``loss_weight`` the sampler returns (and
            the envs report in ``info``), never the trials or the envs' rewards.

    Integer fields take any integer type (numpy's too) but not bools or floats such as 2.0;
    ``noise_scale`` and ``null_weight`` take any real number but not a bool. Values are stored
    as plain Python ``int`` / ``float``. A bad value raises `memenv.errors.UsageError` (a ValueError) naming
    the field and showing the value.
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
    null_weight: float = 1.0

    def __post_init__(self) -> None:
        # Validated fields are stored as plain int / float / str, so that numpy scalars never
        # leak into configs, their equality or their JSON.
        def store(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        store("dataset", _check_choice("dataset", self.dataset, DATASETS))
        store("split", _check_choice("split", self.split, SPLITS))
        store("n_steps", _check_int("n_steps", self.n_steps, 2, MAX_N_STEPS))
        store("min_delay", _check_int("min_delay", self.min_delay, 1))
        store("n_classes", _check_int("n_classes", self.n_classes, 1, N_LABELS))
        store("t_max", _check_int("t_max", self.t_max, 2))
        if self.t_max > self.n_steps:
            raise UsageError(f"t_max={self.t_max!r} exceeds n_steps={self.n_steps!r}")
        if self.t_max <= self.min_delay:
            raise UsageError(
                f"t_max={self.t_max!r} leaves no room for min_delay={self.min_delay!r}: "
                "need t_max >= min_delay + 1"
            )
        store("noise_scale", _check_noise_scale(self.noise_scale))
        store("null_weight", _check_null_weight(self.null_weight))
        if self.delay is None:
            if self.t_stim is not None:
                raise UsageError(
                    f"t_stim={self.t_stim!r} needs a fixed delay; set delay as well or drop t_stim"
                )
            return
        store("delay", _check_int("delay", self.delay, 1))
        if self.t_stim is not None:
            store("t_stim", _check_int("t_stim", self.t_stim, 0))
        latest_resp = self.latest_stim + self.delay
        if latest_resp >= self.n_steps:
            raise UsageError(
                f"delay={self.delay!r} with stimulus times up to {self.latest_stim} needs "
                f"n_steps >= {latest_resp + 1}, got n_steps={self.n_steps!r}"
            )

    @property
    def latest_stim(self) -> int:
        """The latest possible stimulus time."""
        if self.t_stim is not None:
            return self.t_stim
        return self.t_max - 1 - self.min_delay

    @property
    def response_weight(self) -> float:
        """Loss weight of the response step: ``RESPONSE_WEIGHT - 1 + null_weight``."""
        return RESPONSE_WEIGHT - 1.0 + self.null_weight

    def replace(self, **changes: Any) -> TaskConfig:
        """A validated copy with ``changes``; unknown field names raise `UsageError`."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise UsageError(f"unknown TaskConfig field(s): {unknown}")
        return dataclasses.replace(self, **changes)

    def with_episode_options(self, options: Mapping[str, Any] | None) -> TaskConfig:
        """A copy with the per-episode ``options`` of ``reset(options=...)`` applied.

        Both envs validate their reset options here, so they word every refusal alike.

        Raises:
            UsageError: ``options`` is not None or a mapping, has a key outside
                `EPISODE_FIELDS`, or a value the task rejects (the message names the key).
        """
        if options is None:
            return self
        if not isinstance(options, Mapping):
            raise UsageError(
                f"options must be None or a dict of per-episode TaskConfig fields "
                f"{list(EPISODE_FIELDS)}, got {short_repr(options)} ({type(options).__name__})"
            )
        bad = sorted(repr(k) for k in options if k not in EPISODE_FIELDS)
        if bad:
            raise UsageError(
                f"unknown reset option(s) {', '.join(bad)}; allowed options are "
                f"{list(EPISODE_FIELDS)}"
            )
        if not options:
            return self
        return dataclasses.replace(self, **options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
