"""The speed regulariser of docs/paper.md ("The speed regulariser"): anchors and the penalty.

``S = sum_k sum_j ||phi(F(h*_k, x_j)) - phi(h*_k)||^2`` over fixed anchor states ``h*_k`` (one
per class) and ``n_noise`` fresh noise frames ``x_j`` per anchor (full-strength task noise,
trigger 0); ``phi`` is tanh on LSTM cell coordinates (the paper's ``||tanh(c') - tanh(c)||^2``
term) and the identity elsewhere. The loss becomes ``L + lam * S``, on the authors' loss scale
for either model family (`loss_scale`).

Anchor modes (`ANCHOR_MODES`):

* ``center``: the class centres of mass (`analysis.centers.class_centers`), the paper's
  preferred anchors (slow points move during training, centres less so);
* ``slow``: the slow point found from each class centre (`analysis.find_slow_points`);
* ``control``: the centres, with ``lam = 0``: the same fine-tuning without the penalty. The
  penalty is still computed and logged, so the control shows how the speed drifts on its own.

Anchors are computed once before training, as in the paper; `SpeedPenalty` can also recompute
them from the current network every ``recompute_every`` steps (the only way to use the penalty
from scratch, where the initial network has no meaningful centres).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.centers import class_centers
from analysis.features import analysis_view
from analysis.npz import load_npz, save_npz
from analysis.protocol import FlatDynamics, model_device_dtype
from analysis.slow_points import find_slow_points
from analysis.speed_accuracy import speeds_at
from memenv import DelayedRecallTask
from memenv.errors import UsageError

ANCHOR_MODES = ("center", "slow", "control")
PAPER_LAMBDA = {"mnist": 1e-3, "fashion-mnist": 1e-3, "cifar10": 1e-2}
"""The paper's penalty weight per data set (Fashion-MNIST: MNIST's)."""
PAPER_NOISE_DRAWS = 10


def check_mode(mode: Any) -> str:
    if mode not in ANCHOR_MODES:
        raise UsageError(f"mode must be one of {ANCHOR_MODES}, got {mode!r}")
    return mode


def check_lam(lam: Any, mode: str) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam):
        raise UsageError(f"lam must be a finite number >= 0, got {lam!r}")
    if lam < 0:
        raise UsageError(f"lam must be >= 0, got {lam!r}")
    if mode == "control" and lam != 0:
        raise UsageError(f"mode 'control' means lam = 0, got lam={lam!r}")
    return float(lam)


@dataclass
class Anchors:
    """Fixed anchor states of the penalty (numpy).

    Attributes:
        states: float64 ``[K, N]``: flat anchor states (NaN rows: a class with no correct trial,
            left out of the penalty).
        classes: int64 ``[K]``: the class of each anchor.
        mode: ``"center"``, ``"slow"`` or ``"control"``.
        speeds: float64 ``[K]``: ``q(h*_k)`` under the mean noise frame (the slow-point speed).
        step: Training step of the network the anchors came from (0 = before fine-tuning).
    """

    states: np.ndarray
    classes: np.ndarray
    mode: str
    speeds: np.ndarray
    step: int = 0

    def __post_init__(self) -> None:
        self.states = np.asarray(self.states, dtype=np.float64)
        if self.states.ndim != 2:
            raise UsageError(f"states must be [K, N], got shape {self.states.shape}")
        k = self.states.shape[0]
        self.classes = np.asarray(self.classes, dtype=np.int64)
        self.speeds = np.asarray(self.speeds, dtype=np.float64)
        for name in ("classes", "speeds"):
            if getattr(self, name).shape != (k,):
                raise UsageError(f"{name} must have shape {(k,)}, got {getattr(self, name).shape}")
        check_mode(self.mode)
        self.step = int(self.step)

    @property
    def valid(self) -> np.ndarray:
        """bool ``[K]``: anchors that enter the penalty (finite states)."""
        return np.isfinite(self.states).all(axis=1)

    def save(self, path: str | os.PathLike) -> None:
        save_npz(path, "Anchors", {f: getattr(self, f) for f in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Anchors:
        arrays = load_npz(path, "Anchors")
        arrays["mode"] = str(arrays["mode"])
        arrays["step"] = int(arrays["step"])
        return cls(**arrays)


def compute_anchors(
    model: nn.Module,
    task: DelayedRecallTask,
    mode: str,
    *,
    n_per_class: int = 100,
    settle_steps: int = 15,
    seed: int = 0,
    step: int = 0,
    method: str = "newton",
    all_trials_fallback: bool = False,
) -> Anchors:
    """The anchors of ``mode`` for ``model`` (float64 analysis; the model is not changed).

    Args:
        model: A protocol model.
        task: Supplies images, noise and the mean frame (its ``n_classes`` classes get anchors).
        mode: See `ANCHOR_MODES`.
        n_per_class, settle_steps: Centres of mass settings (`analysis.class_centers`).
        seed: Seeds the centres' trials.
        step: Recorded in the result.
        method: Slow-point search of mode ``"slow"``.
        all_trials_fallback: A class the network never answers correctly gets the mean over
            all its trials instead of no anchor (for training from scratch, where early
            networks answer few trials correctly).
    """
    check_mode(mode)
    view, input_x = analysis_view(model, task, seed=seed)
    dynamics = FlatDynamics(view)  # a frozen float64 copy
    centers = class_centers(
        dynamics, task, n_per_class=n_per_class, settle_steps=settle_steps, seed=seed,
        input_x=input_x,
    )  # fmt: skip
    states = centers.centers.copy()
    if all_trials_fallback:
        for k in np.flatnonzero(~centers.valid):
            states[k] = centers.states[centers.trial_labels == centers.classes[k]].mean(axis=0)
    valid = np.isfinite(states).all(axis=1)
    if mode == "slow" and valid.any():
        points = find_slow_points(
            dynamics, states[valid], input_x, method=method, eigenvalues=False
        )
        states[valid] = points.states
    return Anchors(states, centers.classes, mode, speeds_at(dynamics, states, input_x), step)


def anchor_speeds(model: nn.Module, anchors: Anchors, task: DelayedRecallTask) -> np.ndarray:
    """``q`` of ``model`` at the (fixed) ``anchors`` under the mean frame: float64 ``[K]``."""
    view, input_x = analysis_view(model, task)
    return speeds_at(view, anchors.states, input_x)


def loss_scale(model: nn.Module) -> float:
    """What ``lambda * S`` is multiplied by so that lambda means the paper's for ``model``.

    The authors add ``lambda * S`` to their loss, a mean over the ``[B, 11, T]`` grid; the
    `torch` family's loss is a mean over ``[B, T]`` only, 11 times larger, so its penalty is
    scaled by 11 (`agents.loss.LOSS_SCALE_VS_AUTHORS`). This is the one place where lambda is
    converted: ``--lam 1e-3`` is the paper's 1e-3 for either model family.
    """
    from agents.loss import LOSS_SCALE_VS_AUTHORS, model_family

    return LOSS_SCALE_VS_AUTHORS[model_family(model)]


class SpeedPenalty:
    """``lam * S`` as a training penalty (`agents.trainer.TrainingPenalty`).

    Args:
        anchors: The anchors before training (``step`` 0).
        task: The training task: its noise statistics make the noise frames (and, with
            ``recompute_every``, its images the new centres).
        lam: Weight ``lambda >= 0`` (paper: 1e-3 MNIST, 1e-2 CIFAR-10; `PAPER_LAMBDA`).
        n_noise: Noise frames per anchor per step (paper: 10).
        recompute_every: Recompute the anchors from the current network every this many steps
            (None: never, as in the paper).
        seed: Seeds the penalty's own noise stream (the training trials are not touched, so
            ``lam = 0`` gives exactly the unpenalised run's weights).
        n_per_class, settle_steps: Centres settings used when recomputing.
        all_trials_fallback: Passed to `compute_anchors` when recomputing.
    """

    def __init__(
        self,
        anchors: Anchors,
        task: DelayedRecallTask,
        lam: float,
        *,
        n_noise: int = PAPER_NOISE_DRAWS,
        recompute_every: int | None = None,
        seed: int = 0,
        n_per_class: int = 100,
        settle_steps: int = 15,
        all_trials_fallback: bool = False,
    ) -> None:
        self.mode = check_mode(anchors.mode)
        self.lam = check_lam(lam, self.mode)
        if isinstance(n_noise, bool) or not isinstance(n_noise, int) or n_noise < 1:
            raise UsageError(f"n_noise must be a positive integer, got {n_noise!r}")
        if recompute_every is not None and (
            isinstance(recompute_every, bool)
            or not isinstance(recompute_every, int)
            or recompute_every < 1
        ):
            raise UsageError(
                f"recompute_every must be a positive integer or None, got {recompute_every!r}"
            )
        if not anchors.valid.any():
            raise UsageError("no valid anchor: the network answers no class correctly")
        self.anchors = anchors
        self.task = task
        self.n_noise = n_noise
        self.recompute_every = recompute_every
        self.seed = int(seed)
        self.n_per_class = n_per_class
        self.settle_steps = settle_steps
        self.all_trials_fallback = all_trials_fallback
        self.history: list[dict[str, Any]] = []
        self._rng: torch.Generator | None = None
        self._rng_state: torch.Tensor | None = None
        self._dynamics: FlatDynamics | None = None
        self._states_key: tuple | None = None
        self._states_bxn: torch.Tensor | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "speed",
            "mode": self.mode,
            "lam": self.lam,
            # runs of memenv before lambda was put on the authors' scale lack this key, so
            # they refuse to resume under the new meaning
            "lam_scale": "authors' loss",
            "n_noise": self.n_noise,
            "recompute_every": self.recompute_every,
            "seed": self.seed,
            "n_anchors": int(self.anchors.valid.sum()),
        }

    # -------------------------------------------------------------------- the penalty
    def speed_sum(self, model: nn.Module, noise_bxd: torch.Tensor) -> torch.Tensor:
        """``S`` for noise frames ``[K' * n_noise, D]`` (K' = valid anchors), differentiable in
        the model's parameters."""
        dynamics = self._dynamics_of(model)
        key = (id(self.anchors), dynamics.device, dynamics.dtype)
        if self._states_key != key:  # one host-to-device copy per set of anchors
            states_kxn = torch.as_tensor(
                self.anchors.states[self.anchors.valid], dtype=dynamics.dtype,
                device=dynamics.device,
            )  # fmt: skip
            self._states_bxn = states_kxn.repeat_interleave(self.n_noise, dim=0)
            self._states_key = key
        return dynamics.residual(self._states_bxn, noise_bxd).square().sum()

    def noise(self, device: torch.device) -> torch.Tensor:
        """Fresh full-strength noise frames with the trigger off: float32 ``[K' * n_noise, D]``."""
        rng = self._generator(device)
        n = int(self.anchors.valid.sum()) * self.n_noise
        frames = self.task.noise((n, self.task.obs_dim), rng)
        frames[:, -1] = 0.0
        return frames

    def __call__(self, model: nn.Module, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        due = bool(self.recompute_every) and step > 0 and step % self.recompute_every == 0
        if due and self.anchors.step != step:
            self.recompute(model, step)
        device, _ = model_device_dtype(model)
        value = self.speed_sum(model, self.noise(device))
        return self.lam * loss_scale(model) * value, value.detach()

    def recompute(self, model: nn.Module, step: int) -> None:
        """New anchors from ``model`` (same mode), recorded in ``history``."""
        seed = self.seed + step
        anchors = compute_anchors(
            model, self.task, self.mode, n_per_class=self.n_per_class,
            settle_steps=self.settle_steps, seed=seed, step=step,
            all_trials_fallback=self.all_trials_fallback,
        )  # fmt: skip
        if anchors.valid.any():
            self.anchors = anchors
        self.history.append(
            {"step": step, "n_valid": int(anchors.valid.sum()), "speeds": anchors.speeds.tolist()}
        )

    # -------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        rng_state = self._rng.get_state() if self._rng is not None else self._rng_state
        # tensors and plain values only: resume.pt is read with torch.load(weights_only=True)
        anchors = {f: getattr(self.anchors, f) for f in self.anchors.__dataclass_fields__}
        return {
            "anchors": {
                f: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                for f, v in anchors.items()
            },
            "rng": rng_state,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchors = Anchors(
            **{
                f: v.numpy() if isinstance(v, torch.Tensor) else v
                for f, v in state["anchors"].items()
            }
        )
        self.history = list(state["history"])
        self._rng_state = state["rng"]
        if self._rng is not None and self._rng_state is not None:
            self._rng.set_state(self._rng_state)

    # -------------------------------------------------------------------- helpers
    def _generator(self, device: torch.device) -> torch.Generator:
        if self._rng is None or self._rng.device != device:
            self._rng = torch.Generator(device=device).manual_seed(self.seed)
            if self._rng_state is not None:
                self._rng.set_state(self._rng_state)
        return self._rng

    def _dynamics_of(self, model: nn.Module) -> FlatDynamics:
        if self._dynamics is None or self._dynamics.model is not model:
            self._dynamics = FlatDynamics(model, dtype=None, copy_model=False)
        return self._dynamics
