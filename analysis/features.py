"""Slow points of networks with a CNN front-end, in the cell's input-feature space.

docs/paper.md ("Slow points"): for CIFAR-10 the fixed input of the slow-point search is the mean of
the CNN features over many noise frames, not the CNN's response to the mean frame (a CNN is
nonlinear, so the two differ). `analysis_view` gives the analysis what it needs for any model:

* a model without a front-end: the model itself and the mean noise frame ``[D]``;
* a model with one (``frontend`` set, ``encode`` and ``cell_step`` as in
  `agents.models.RecurrentModel`): a `FeatureInputModel`, whose ``transition`` takes the
  cell's input features, and the mean features ``[F + 1]`` (trigger last, 0).

The trigger bypasses the CNN and is the last feature, so ``analysis.slow_points.trigger_input``
(last element set to 1) gives the feature-space input of the readout step as well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.protocol import model_device_dtype
from memenv import DelayedRecallTask
from memenv.errors import UsageError

DEFAULT_FEATURE_FRAMES = 1000
"""Noise frames averaged for the mean feature input."""


def has_frontend(model: nn.Module) -> bool:
    """Whether ``model`` feeds its cell through a front-end it can bypass (``cell_step``)."""
    return (
        getattr(model, "frontend", None) is not None
        and callable(getattr(model, "encode", None))
        and callable(getattr(model, "cell_step", None))
    )


class FeatureInputModel(nn.Module):
    """A front-end model seen by the analysis: ``forward`` takes observations, ``transition``
    takes the cell's input features ``u [B, F + 1]`` (so the fixed input can be a feature mean).

    Args:
        model: Has ``encode(obs) -> u`` and ``cell_step(state, u) -> state`` besides the
            protocol (e.g. `agents.models.RecurrentModel` with a CNN).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not has_frontend(model):
            raise UsageError(f"{type(model).__name__} has no front-end with encode/cell_step")
        self.inner = model

    def initial_state(self, batch_size: int) -> Any:
        return self.inner.initial_state(batch_size)

    def forward(self, obs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.inner(obs, state)

    def transition(self, state: Any, u: torch.Tensor) -> Any:
        return self.inner.cell_step(state, u)

    def readout(self, state: Any) -> torch.Tensor:
        return self.inner.readout(state)


def mean_feature_input(
    model: nn.Module,
    task: DelayedRecallTask,
    n_frames: int = DEFAULT_FEATURE_FRAMES,
    seed: int = 0,
    batch_size: int = 250,
) -> np.ndarray:
    """The mean of ``model.encode`` over ``n_frames`` noise frames (trigger 0): float64
    ``[F + 1]``, its last element (the trigger) 0."""
    if n_frames < 1:
        raise UsageError(f"n_frames must be >= 1, got {n_frames}")
    device, dtype = model_device_dtype(model)
    rng = torch.Generator(device=device).manual_seed(int(seed))
    total: torch.Tensor | None = None
    done = 0
    with torch.no_grad():
        while done < n_frames:
            b = min(batch_size, n_frames - done)
            frames = task.noise((b, task.obs_dim), rng)
            frames[:, -1] = 0.0
            features = model.encode(frames.to(dtype)).double().sum(dim=0)
            total = features if total is None else total + features
            done += b
    return (total / n_frames).cpu().numpy()


def analysis_view(
    model: nn.Module,
    task: DelayedRecallTask,
    n_frames: int = DEFAULT_FEATURE_FRAMES,
    seed: int = 0,
) -> tuple[nn.Module, np.ndarray]:
    """``(model to analyse, its fixed input)``: the model and ``task.mean_frame``, or for a
    front-end model a `FeatureInputModel` and `mean_feature_input`."""
    if has_frontend(model):
        return FeatureInputModel(model), mean_feature_input(model, task, n_frames, seed)
    return model, np.asarray(task.mean_frame, dtype=np.float64)
