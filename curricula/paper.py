"""The paper's curricula (Haviv, Rivkind & Barak 2019) as `Schedule` data.

Boundaries are in the paper's training steps (one batch per step) at ``scale=1.0``:

============  ===========================================================  ===========
schedule      stages (start step: setting)                                 total steps
============  ===========================================================  ===========
MNIST DeCu    T_max 6 @0, 8 @20k, 10 @30k, 12 @40k, 14 @50k, 16 @60k,       140,000
              18 @70k, 20 @80k (10 classes throughout)
MNIST VoCu    classes 2 @0, 3 @8k, 4 @16k, 5 @26k, 6 @36k, 7 @48k, 8 @62k,   140,000
              9 @78k, 10 @98k (T_max 20 throughout)
CIFAR DeCu    T_max 6 @0, then +2 every 20k from 100k: 20 @220k             300,000
CIFAR VoCu    classes 2 @0, +1 every 30k: 10 @240k                          300,000
ReCu (any)    null_weight 0 @0, 0.25 @20k, 0.5 @30k, 0.75 @40k, 1 @60k      140,000 /
              (10 classes, T_max 20 throughout; the same boundaries for     300,000
              MNIST and CIFAR-10, as in the authors' code)
none          no settings: the task configuration as given (by default the  140,000 /
              paper's control, 10 classes and T_max 20 from the start)      300,000
============  ===========================================================  ===========

The paper has no Fashion-MNIST curricula; Fashion-MNIST uses MNIST's (same frame size, same
model and batch in the paper's MNIST protocol).

ReCu is not among the paper's curricula: it is a third curriculum of the authors' code
(DoronHaviv/MemoryRNN, ``TriggerMNISTCloud.py`` lines 148-154 and ``TriggerCIFARCloud.py``
lines 154-160, ``ZeroWeight`` fed as ``alpha`` to the loss ``(t_max - 1) * Z * Y * log(p) +
alpha * Y * log(p)``). Their run scripts (``RUNMNIST.sh``, ``RUNCIFAR.sh``) train only DeCu and
VoCu. See docs/curricula.md.
"""

from __future__ import annotations

from curricula.schedule import Schedule
from memenv.config import DATASETS, N_LABELS
from memenv.errors import UsageError

PAPER_T_MAX = 20
"""T_max of the full task, reached at the end of DeCu and used throughout VoCu."""

PAPER_BATCH_SIZE = {"mnist": 128, "fashion-mnist": 128, "cifar10": 64}
"""Trials per training step in the paper; one paper step = this many episodes (trials)."""

PAPER_TOTAL_STEPS = {"mnist": 140_000, "fashion-mnist": 140_000, "cifar10": 300_000}
"""Length of the paper's training runs, in steps."""

_DECU_STARTS = {
    "mnist": [0, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000],
    "cifar10": [0, *range(100_000, 220_001, 20_000)],
}
_DECU_T_MAX = [6, 8, 10, 12, 14, 16, 18, 20]
_VOCU_STARTS = {
    "mnist": [0, 8_000, 16_000, 26_000, 36_000, 48_000, 62_000, 78_000, 98_000],
    "cifar10": list(range(0, 240_001, 30_000)),
}
_VOCU_CLASSES = list(range(2, N_LABELS + 1))
# ReCu: the authors' ZeroWeight array, indexed by step - 1 for their 1-based steps, so index i
# is our 0-based step i. They set 0.75 twice ([40000:50000] and [50000:60000]); one stage here.
_RECU_STARTS = [0, 20_000, 30_000, 40_000, 60_000]
_RECU_NULL_WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0]


def _paper_key(dataset: str) -> str:
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    return "cifar10" if dataset == "cifar10" else "mnist"


def decu(dataset: str = "mnist", scale: float = 1.0) -> Schedule:
    """The delay curriculum: T_max grows from 6 to 20; all 10 classes throughout.

    Args:
        dataset: ``"mnist"``, ``"fashion-mnist"`` (MNIST's schedule) or ``"cifar10"``.
        scale: Multiplies every boundary (``0.01`` for a 1,400-step MNIST run).

    Returns:
        A `Schedule` named ``"decu"`` whose stages set ``t_max`` and ``n_classes``.
    """
    starts = _DECU_STARTS[_paper_key(dataset)]
    stages = [
        (s, {"t_max": t, "n_classes": N_LABELS}) for s, t in zip(starts, _DECU_T_MAX, strict=True)
    ]
    schedule = Schedule(stages, name="decu", total_steps=PAPER_TOTAL_STEPS[dataset])
    return schedule.scaled(scale)


def vocu(dataset: str = "mnist", scale: float = 1.0) -> Schedule:
    """The vocabulary curriculum: classes 2 to 10 (the first k of the data set); T_max 20.

    Args:
        dataset: ``"mnist"``, ``"fashion-mnist"`` (MNIST's schedule) or ``"cifar10"``.
        scale: Multiplies every boundary.

    Returns:
        A `Schedule` named ``"vocu"`` whose stages set ``n_classes`` and ``t_max``.
    """
    starts = _VOCU_STARTS[_paper_key(dataset)]
    stages = [
        (s, {"n_classes": k, "t_max": PAPER_T_MAX})
        for s, k in zip(starts, _VOCU_CLASSES, strict=True)
    ]
    schedule = Schedule(stages, name="vocu", total_steps=PAPER_TOTAL_STEPS[dataset])
    return schedule.scaled(scale)


def recu(dataset: str = "mnist", scale: float = 1.0) -> Schedule:
    """The loss curriculum of the authors' code: the null steps' loss weight grows 0 -> 1.

    Each stage sets ``null_weight`` (alpha in the authors' loss): 0 @0, 0.25 @20k, 0.5 @30k,
    0.75 @40k, 1 @60k, with the same boundaries for every data set (their MNIST and CIFAR-10
    scripts agree). The response step weighs ``19 + null_weight``. All 10 classes and
    ``T_max = 20`` throughout. Only the loss weights change: the trials, and an env's rewards,
    are those of the full task from the first step.

    Args:
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"`` (sets ``total_steps``).
        scale: Multiplies every boundary.

    Returns:
        A `Schedule` named ``"recu"`` whose stages set ``null_weight``, ``n_classes`` and
        ``t_max``.
    """
    _paper_key(dataset)
    stages = [
        (s, {"null_weight": w, "n_classes": N_LABELS, "t_max": PAPER_T_MAX})
        for s, w in zip(_RECU_STARTS, _RECU_NULL_WEIGHTS, strict=True)
    ]
    schedule = Schedule(stages, name="recu", total_steps=PAPER_TOTAL_STEPS[dataset])
    return schedule.scaled(scale)


def none(dataset: str = "mnist", scale: float = 1.0) -> Schedule:
    """No curriculum: one stage that sets nothing, so the task configuration applies as given.

    With memenv's defaults that is the paper's control (10 classes, T_max 20 from the start).
    A user's own ``t_max`` or ``n_classes`` is left alone.

    Args:
        dataset: Only sets ``total_steps`` (the paper's run length for the data set).
        scale: Multiplies ``total_steps``.
    """
    _paper_key(dataset)
    return Schedule([(0, {})], name="none", total_steps=PAPER_TOTAL_STEPS[dataset]).scaled(scale)
