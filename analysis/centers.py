"""Class centres of mass and hidden-state trajectories (the slow-point search's starting points).

Protocol of the authors' MNIST analysis script (docs/paper.md, "Slow points"), with one deliberate
change:

* per class, ``n_per_class`` trials (authors: 100) show a clean image at t = 0 and noise frames
  after it; the network runs ``settle_steps`` steps in all (authors: 15, image included, so the
  state is taken after frames 0..14);
* a trial counts when the network answers it correctly *now*: one more step on the mean frame
  with the trigger on, then the readout (the authors' ``ReadOut`` function);
* the centre of a class is the mean flat state over its correct trials.

Noise: ``noise_scale = 1`` (the task's own noise, the distribution the network was trained on)
and independent noise in every trial, by default. The authors' MNIST script (BlackBoxMNIST.py)
drew the noise with std/3 and one noise sequence shared by all trials, while their CIFAR-10
script used the full std (docs/paper.md lists the mismatch among the defects of the released
code). Full-strength, independent noise gives centres of the states the network actually visits
during a trial; ``AUTHORS_CENTERS`` (``noise_scale=1/3, shared_noise=True``) reproduces the
MNIST script, for sensitivity checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.npz import load_npz, save_npz
from analysis.protocol import FlatDynamics
from analysis.slow_points import as_dynamics, trigger_input
from memenv import DelayedRecallTask, TrialSpec
from memenv.errors import UsageError

AUTHORS_TRIALS_PER_CLASS = 100
AUTHORS_SETTLE_STEPS = 15
AUTHORS_CENTERS = {"noise_scale": 1 / 3, "shared_noise": True}
"""The noise of the centres in the authors' MNIST script (BlackBoxMNIST.py)."""


@dataclass
class ClassCenters:
    """Per-class centres of mass of the hidden state (numpy arrays).

    Attributes:
        centers: float64 ``[K, N]``: mean flat state over the correct trials of each class
            (NaN rows for a class with no correct trial).
        classes: int64 ``[K]``: the class of each row (0 .. K-1).
        n_correct: int64 ``[K]``: correct trials per class.
        n_trials: int64 ``[K]``: trials per class.
        states: float64 ``[B, N]``: the settled state of every trial.
        trial_labels: int64 ``[B]``: each trial's class.
        correct: bool ``[B]``: the network answered the trial correctly.
        settle_steps: Steps run from the image (included) to the state.
        noise_scale: Noise std in units of the data set's pixel std.
        shared_noise: Whether every trial saw the same noise sequence.
    """

    centers: np.ndarray
    classes: np.ndarray
    n_correct: np.ndarray
    n_trials: np.ndarray
    states: np.ndarray
    trial_labels: np.ndarray
    correct: np.ndarray
    settle_steps: int
    noise_scale: float
    shared_noise: bool = False

    def __post_init__(self) -> None:
        self.centers = np.asarray(self.centers, dtype=np.float64)
        if self.centers.ndim != 2:
            raise UsageError(f"centers must be [K, N], got shape {self.centers.shape}")
        k, n = self.centers.shape
        for name, dtype in (("classes", np.int64), ("n_correct", np.int64), ("n_trials", np.int64)):
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.shape != (k,):
                raise UsageError(f"{name} must have shape {(k,)}, got {value.shape}")
            setattr(self, name, value)
        self.states = np.asarray(self.states, dtype=np.float64)
        if self.states.ndim != 2 or self.states.shape[1] != n:
            raise UsageError(f"states must be [B, {n}], got shape {self.states.shape}")
        b = self.states.shape[0]
        for name, dtype in (("trial_labels", np.int64), ("correct", np.bool_)):
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.shape != (b,):
                raise UsageError(f"{name} must have shape {(b,)}, got {value.shape}")
            setattr(self, name, value)
        self.settle_steps = int(self.settle_steps)
        self.noise_scale = float(self.noise_scale)
        self.shared_noise = bool(self.shared_noise)

    @property
    def accuracy(self) -> np.ndarray:
        """float64 ``[K]``: share of correct trials per class after ``settle_steps``."""
        return self.n_correct / np.maximum(self.n_trials, 1)

    @property
    def valid(self) -> np.ndarray:
        """bool ``[K]``: the class has at least one correct trial (a finite centre)."""
        return self.n_correct > 0

    def save(self, path: str | os.PathLike) -> None:
        save_npz(path, "ClassCenters", {f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClassCenters:
        arrays = load_npz(path, "ClassCenters")
        arrays["settle_steps"] = int(arrays["settle_steps"])
        arrays["noise_scale"] = float(arrays["noise_scale"])
        arrays["shared_noise"] = bool(arrays.get("shared_noise", False))  # older files lack it
        return cls(**arrays)


def balanced_spec(
    task: DelayedRecallTask, n_per_class: int, n_classes: int, t_resp: int, rng: torch.Generator
) -> TrialSpec:
    """Trials with the image at t = 0, ``n_per_class`` per class, response at ``t_resp``."""
    device = rng.device
    label = torch.arange(n_classes, device=device).repeat_interleave(n_per_class)
    n_images = task.images.n_per_class
    pick = torch.randint(0, n_images, (label.numel(),), generator=rng, device=device)
    t_stim = torch.zeros_like(label)
    t_resp_b = torch.full_like(label, t_resp)
    return TrialSpec(label, label * n_images + pick, t_stim, t_resp_b)


def _noise_task(task: DelayedRecallTask, noise_scale: float) -> DelayedRecallTask:
    return task.with_config(task.config.replace(noise_scale=float(noise_scale)))


def class_centers(
    model: nn.Module | FlatDynamics,
    task: DelayedRecallTask,
    *,
    n_per_class: int = AUTHORS_TRIALS_PER_CLASS,
    settle_steps: int = AUTHORS_SETTLE_STEPS,
    noise_scale: float = 1.0,
    shared_noise: bool = False,
    n_classes: int | None = None,
    seed: int = 0,
    batch_size: int = 1000,
    dtype: torch.dtype | None = torch.float64,
    device: Any = None,
    input_x: Any = None,
) -> ClassCenters:
    """Per-class centre of mass of the settled hidden state over correctly answered trials.

    Args:
        model: A protocol model or a `FlatDynamics`.
        task: Supplies the images, the noise statistics and the mean frame.
        n_per_class: Trials per class (authors: 100).
        settle_steps: Steps from the image (included) to the state (authors: 15).
        noise_scale: Noise std in pixel-std units (see the module docstring for the choice).
        shared_noise: One noise sequence for every trial (the authors' MNIST script) instead of
            independent noise per trial.
        n_classes: Classes analysed (the active vocabulary); default ``task.config.n_classes``.
        seed: Seeds the images and the noise.
        batch_size: Trials run at once.
        dtype, device: Computation dtype and device (see `analysis.protocol.FlatDynamics`).
        input_x: The fixed input of the dynamics (its trigger-on version answers for the
            "correct" test); default ``task.mean_frame`` (`analysis.features.analysis_view`
            gives the feature-space one of a front-end model).
    """
    if settle_steps < 1:
        raise UsageError(f"settle_steps must be >= 1, got {settle_steps}")
    if n_per_class < 1:
        raise UsageError(f"n_per_class must be >= 1, got {n_per_class}")
    dynamics = as_dynamics(model, dtype, device)
    n_classes = task.config.n_classes if n_classes is None else n_classes
    rng = torch.Generator(device=dynamics.device).manual_seed(seed)
    spec = balanced_spec(task, n_per_class, n_classes, settle_steps, rng)
    noisy = _noise_task(task, noise_scale)
    trigger_1xd = dynamics.as_input(trigger_input(task.mean_frame if input_x is None else input_x))
    # one trial's noise frames [1, T, D], repeated for every trial and batch
    shared_1xtxd = noisy.noise((1, settle_steps, task.obs_dim), rng) if shared_noise else None
    states, answers = [], []
    for start in range(0, spec.batch_size, batch_size):
        part = _slice_spec(spec, start, start + batch_size)
        if shared_1xtxd is None:
            obs = noisy.render(part, 0, settle_steps, rng)
        else:
            obs = shared_1xtxd.expand(part.batch_size, -1, -1).clone()
            noisy.place(obs, part, 0)
        obs = obs.to(dynamics.dtype)
        with torch.no_grad():
            _, state = dynamics.model(obs)
        states_bxn = dynamics.layout.flatten(state)
        states.append(states_bxn)
        answers.append(dynamics.readout_labels(states_bxn, trigger_1xd, n_classes))
    states_bxn = torch.cat(states).double().cpu().numpy()
    labels_b = spec.label.cpu().numpy()
    correct_b = torch.cat(answers).cpu().numpy() == labels_b
    centers = np.full((n_classes, dynamics.n_state), np.nan)
    n_correct = np.zeros(n_classes, dtype=np.int64)
    for k in range(n_classes):
        chosen = correct_b & (labels_b == k)
        n_correct[k] = int(chosen.sum())
        if n_correct[k]:
            centers[k] = states_bxn[chosen].mean(axis=0)
    return ClassCenters(
        centers=centers,
        classes=np.arange(n_classes),
        n_correct=n_correct,
        n_trials=np.full(n_classes, n_per_class),
        states=states_bxn,
        trial_labels=labels_b,
        correct=correct_b,
        settle_steps=settle_steps,
        noise_scale=noise_scale,
        shared_noise=shared_noise,
    )


def _slice_spec(spec: TrialSpec, start: int, stop: int) -> TrialSpec:
    return TrialSpec(*(getattr(spec, f.name)[start:stop] for f in fields(spec)))


def state_trajectories(
    model: nn.Module | FlatDynamics,
    task: DelayedRecallTask,
    *,
    n_per_class: int = 10,
    n_steps: int = 40,
    noise_scale: float = 1.0,
    n_classes: int | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    device: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat hidden states along trials with the image at t = 0 and noise after it, no trigger.

    Returns:
        ``(trajectories [B, n_steps, N] float64, labels [B] int64)``: the state after each step
        (``trajectories[:, t]`` after frame t), B = ``n_per_class`` x classes.
    """
    if n_steps < 1:
        raise UsageError(f"n_steps must be >= 1, got {n_steps}")
    dynamics = as_dynamics(model, dtype, device)
    n_classes = task.config.n_classes if n_classes is None else n_classes
    rng = torch.Generator(device=dynamics.device).manual_seed(seed)
    spec = balanced_spec(task, n_per_class, n_classes, n_steps, rng)
    obs = _noise_task(task, noise_scale).render(spec, 0, n_steps, rng).to(dynamics.dtype)
    with torch.no_grad():
        state = dynamics.model.initial_state(spec.batch_size)
        steps = []
        for t in range(n_steps):  # forward, not transition: a front-end model's F takes features
            _, state = dynamics.model(obs[:, t : t + 1], state)
            steps.append(dynamics.layout.flatten(state).to(dynamics.dtype))
    trajectories = torch.stack(steps, dim=1).double().cpu().numpy()
    return trajectories, spec.label.cpu().numpy()
