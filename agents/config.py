"""`TrainConfig`: everything that defines a supervised training run, and its presets.

Presets (`preset`):

* ``paper``: the authors' hyperparameters exactly (docs/paper.md). MNIST / Fashion-MNIST: the authors' own
  networks (``model_family="authors"``: their GRU / LSTM equations, initialisation, sigmoid
  readout and loss), 200 units, Adam lr 1e-5, batch 128, 140,000 steps, lr / 10 at step
  120,000. CIFAR-10: PyTorch's cells (``model_family="torch"``) with 512 units and the CNN
  front-end, Adam lr 1e-4, batch 64, 300,000 steps, lr / 10 at 280,000.
* ``fast``: a CPU preset for MNIST: a 128-unit ``torch`` network, Adam lr 1e-3, batch 128,
  2,500 steps, lr / 10 at step 2,000. On the embedded MNIST subset a GRU reaches >= 90% response accuracy
  on held-out images at trained delays in a few minutes on 2 cores (docs/agents.md).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.authors import AUTHORS_CELLS
from agents.cells import CELLS
from agents.protocol import MODEL_FAMILIES
from memenv.errors import CorruptFileError, UsageError

DEVICES = ("auto", "cpu", "cuda")
FRONTENDS = ("auto", "cnn", "none")
PRESETS = ("paper", "fast")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """One supervised training run (or one ensemble of ``n_members`` independent runs).

    Attributes:
        dataset: Image data set: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        split: Image split to train on (``"train"``; held-out evaluation uses ``"test"``).
        data_root: Folder with the data files (else ``$MEMENV_DATA`` / the embedded MNIST).
        download: Let torchvision download missing data sets.
        model_family: ``"torch"`` (PyTorch's cells, linear readout, masked cross-entropy;
            `agents.models`) or ``"authors"`` (the authors' GRU / LSTM, sigmoid readout and
            loss; `agents.authors`; MNIST / Fashion-MNIST only). Decides what `initial_model`
            builds; a model given to `agents.train` brings its own family (and loss).
        cell: Recurrent cell: ``"gru"``, ``"lstm"`` or ``"rnn"`` (``torch`` family only).
        hidden_size: Units of the cell (paper: 200 MNIST, 512 CIFAR-10).
        frontend: ``"auto"`` (CNN for CIFAR-10), ``"cnn"`` or ``"none"``.
        n_steps: Trial length in steps (paper: 20).
        min_delay: Smallest delay between stimulus and response (paper: 4).
        noise_scale: Noise std in units of the data set's pixel std (paper: 1.0).
        curriculum: Schedule name resolved through `curricula` (``"none"``, ``"vocu"``,
            ``"decu"``, ``"recu"``, ...); ``"none"`` needs no curricula package.
        curriculum_scale: Stretches the curriculum's step boundaries (1.0 = the paper's).
        batch_size: Trials per step per network.
        total_steps: Optimiser steps.
        lr: Adam learning rate.
        lr_decay_step: Step from which the learning rate is ``lr * lr_decay_factor`` (None: never).
        lr_decay_factor: Learning-rate factor after ``lr_decay_step`` (paper: 0.1).
        adam_eps: Adam's epsilon (1e-8, as TensorFlow's and PyTorch's default).
        seed: Seed of the initial weights (member k: ``seed + k``) and of the trial stream.
        n_members: Independent networks trained together as one batched ensemble.
        checkpoint_every: Steps between kept checkpoints (``checkpoints/step_XXXXXX.pt``).
        log_every: Steps between lines of ``metrics.jsonl``.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        tf32: On CUDA, let matrix products and cuDNN use TensorFloat-32 (10-bit mantissa inputs,
            fp32 accumulation; several times faster on Ampere and later GPUs). Off by default:
            the paper trained in fp32. No effect on the CPU. May change on resume.
    """

    dataset: str = "mnist"
    split: str = "train"
    data_root: str | None = None
    download: bool = False
    model_family: str = "torch"
    cell: str = "gru"
    hidden_size: int = 200
    frontend: str = "auto"
    n_steps: int = 20
    min_delay: int = 4
    noise_scale: float = 1.0
    curriculum: str = "none"
    curriculum_scale: float = 1.0
    batch_size: int = 128
    total_steps: int = 140_000
    lr: float = 1e-5
    lr_decay_step: int | None = 120_000
    lr_decay_factor: float = 0.1
    adam_eps: float = 1e-8
    seed: int = 0
    n_members: int = 1
    checkpoint_every: int = 5_000
    log_every: int = 100
    device: str = "auto"
    tf32: bool = False

    def __post_init__(self) -> None:
        from memenv.config import DATASETS, SPLITS

        def fail(name: str, want: str) -> None:
            raise UsageError(f"TrainConfig.{name} must be {want}, got {getattr(self, name)!r}")

        choices = {
            "dataset": DATASETS,
            "split": SPLITS,
            "model_family": MODEL_FAMILIES,
            "cell": CELLS,
            "frontend": FRONTENDS,
            "device": DEVICES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                fail(name, f"one of {allowed}")
        if self.data_root is not None and not isinstance(self.data_root, str):
            fail("data_root", "a path string or None")
        for name in ("download", "tf32"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "a bool")
        if not isinstance(self.curriculum, str) or not self.curriculum:
            fail("curriculum", "a non-empty schedule name")
        positive_ints = (
            "hidden_size",
            "n_steps",
            "min_delay",
            "batch_size",
            "total_steps",
            "n_members",
            "checkpoint_every",
            "log_every",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                fail(name, "a positive integer")
        if not _is_int(self.seed) or self.seed < 0:
            fail("seed", "a non-negative integer")
        for name in ("lr", "adam_eps", "curriculum_scale"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 < value < float("inf"):
                fail(name, "a positive finite number")
        if not _is_real(self.noise_scale) or not 0 <= self.noise_scale <= 100:
            fail("noise_scale", "a number in [0, 100]")
        if not _is_real(self.lr_decay_factor) or not 0 < self.lr_decay_factor <= 1:
            fail("lr_decay_factor", "a number in (0, 1]")
        if self.lr_decay_step is not None and (
            not _is_int(self.lr_decay_step) or self.lr_decay_step < 1
        ):
            fail("lr_decay_step", "a positive integer or None")
        if self.min_delay >= self.n_steps:
            fail("min_delay", f"smaller than n_steps={self.n_steps}")
        if self.model_family == "authors":
            self._check_authors_family()

    def _check_authors_family(self) -> None:
        where = "with TrainConfig.model_family='authors' (the authors' networks)"
        if self.cell not in AUTHORS_CELLS:
            raise UsageError(
                f"TrainConfig.cell must be one of {AUTHORS_CELLS} {where}, got {self.cell!r}; "
                "use model_family='torch' for it"
            )
        if self.dataset == "cifar10":
            raise UsageError(
                f"TrainConfig.dataset must be mnist or fashion-mnist {where}, got 'cifar10' "
                "(no CNN front-end); use model_family='torch' for CIFAR-10"
            )
        if self.frontend == "cnn":
            raise UsageError(
                f"TrainConfig.frontend must be 'auto' or 'none' {where}, got 'cnn'; use "
                "model_family='torch' for a CNN front-end"
            )

    # ------------------------------------------------------------------------------ helpers
    def task_config(self):
        """The base `memenv.TaskConfig` (all classes, ``t_max = n_steps``) before a curriculum."""
        from memenv.config import TaskConfig

        return TaskConfig(
            dataset=self.dataset,
            n_steps=self.n_steps,
            t_max=self.n_steps,
            min_delay=self.min_delay,
            n_classes=10,
            noise_scale=float(self.noise_scale),
            split=self.split,
        )

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based)."""
        if self.lr_decay_step is not None and step >= self.lr_decay_step:
            return self.lr * self.lr_decay_factor
        return self.lr

    def member_seeds(self) -> list[int]:
        """Initialisation seeds of the members: ``seed, seed + 1, ...``."""
        return [self.seed + k for k in range(self.n_members)]

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy; unknown field names raise ValueError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise UsageError(f"unknown TrainConfig field(s): {unknown}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError. Missing keys take their
        defaults: a ``config.json`` written before ``model_family`` existed is ``torch``."""
        return cls().replace(**data)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Reads a ``config.json``; a damaged or foreign file is a CorruptFileError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CorruptFileError(f"{path} is not valid JSON ({error}); it is damaged") from None
        if not isinstance(data, dict):
            raise CorruptFileError(
                f"{path} holds a JSON {type(data).__name__}, not the object of a TrainConfig"
            )
        try:
            return cls.from_dict(data)
        except (UsageError, TypeError) as error:
            raise CorruptFileError(f"{path} is not a valid TrainConfig: {error}") from None


def preset(name: str, dataset: str = "mnist", **overrides: Any) -> TrainConfig:
    """A named preset for ``dataset``, with ``overrides`` applied (validated).

    ``paper`` on MNIST / Fashion-MNIST trains the authors' networks (``model_family="authors"``;
    GRU and LSTM: pass ``model_family="torch"`` for ``cell="rnn"``); on CIFAR-10 and in ``fast``
    the family is ``torch``.

    Args:
        name: ``"paper"`` or ``"fast"``.
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"`` (``fast`` is for the 28 x 28
            data sets).
        **overrides: Any `TrainConfig` fields.
    """
    if name not in PRESETS:
        raise UsageError(f"preset must be one of {PRESETS}, got {name!r}")
    if name == "paper":
        if dataset == "cifar10":
            values = dict(
                hidden_size=512,
                lr=1e-4,
                batch_size=64,
                total_steps=300_000,
                lr_decay_step=280_000,
                checkpoint_every=10_000,
            )
        else:
            values = dict(
                model_family="authors",
                hidden_size=200,
                lr=1e-5,
                batch_size=128,
                total_steps=140_000,
                lr_decay_step=120_000,
                checkpoint_every=5_000,
            )
        values.update(log_every=100)
    else:
        if dataset == "cifar10":
            raise UsageError("preset 'fast' is for mnist / fashion-mnist, not cifar10")
        values = dict(
            hidden_size=128,
            lr=1e-3,
            batch_size=128,
            total_steps=2_500,
            lr_decay_step=2_000,
            checkpoint_every=250,
            log_every=50,
        )
    values.update(overrides)
    return TrainConfig(dataset=dataset).replace(**values)
