"""Slow points: `find_slow_points`, the `SlowPoints` result and `deduplicate`.

A slow point of a network under a fixed input ``x`` (the mean noise frame, trigger off) is a
local minimum of the speed ``q(s) = ||phi(F(s, x)) - phi(s)||^2`` (docs/paper.md, "Slow points"; ``phi``
is tanh on LSTM cell coordinates, see `analysis.protocol`). A fixed point has ``q = 0``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.npz import load_npz, save_npz
from analysis.protocol import FlatDynamics
from analysis.search import SearchResult, adam_search, default_speed_tol, newton_search
from memenv.errors import UsageError

METHODS = ("newton", "adam")
NO_LABEL = -1
"""Readout label of a state whose answer is the null output (and 'unknown' initial label)."""


@dataclass
class SlowPoints:
    """A batch of M slow-point searches in an N-dimensional flat state space (numpy arrays).

    Attributes:
        states: float64 ``[M, N]``: final states (flat; see `analysis.protocol.StateLayout`).
        initial_states: float64 ``[M, N]``: where each search started.
        speeds: float64 ``[M]``: ``q`` at ``states``.
        converged: bool ``[M]``: a fixed point (``q <= speed_tol``) or a stationary point of
            ``q`` (``||grad q|| <= stationary_tol * 2 ||J||_F ||r||``).
        iterations: int64 ``[M]``: Adam steps or Newton Jacobians used.
        labels: int64 ``[M]``: readout label at ``states`` (class 0-9, -1 = null answer).
        initial_labels: int64 ``[M]``: the class each search started from (-1: unknown).
        eigenvalues: complex128 ``[M, N]``: eigenvalues of dF/ds at ``states``, by decreasing
            modulus, or None if not computed. A point is stable when all moduli are < 1.
        input_x: float64 ``[D]``: the fixed input.
        method: ``"newton"`` or ``"adam"``.
        n_classes: Active vocabulary used for ``labels``.
        speed_tol: The speed below which a point counts as fixed.
    """

    states: np.ndarray
    initial_states: np.ndarray
    speeds: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    labels: np.ndarray
    initial_labels: np.ndarray
    eigenvalues: np.ndarray | None
    input_x: np.ndarray
    method: str
    n_classes: int = 10
    speed_tol: float = 0.0

    def __post_init__(self) -> None:
        self.states = np.asarray(self.states, dtype=np.float64)
        if self.states.ndim != 2:
            raise UsageError(f"states must be [M, N], got shape {self.states.shape}")
        m, n = self.states.shape
        self.initial_states = _checked(self.initial_states, np.float64, (m, n), "initial_states")
        self.speeds = _checked(self.speeds, np.float64, (m,), "speeds")
        self.converged = _checked(self.converged, np.bool_, (m,), "converged")
        self.iterations = _checked(self.iterations, np.int64, (m,), "iterations")
        self.labels = _checked(self.labels, np.int64, (m,), "labels")
        self.initial_labels = _checked(self.initial_labels, np.int64, (m,), "initial_labels")
        if self.eigenvalues is not None:
            self.eigenvalues = _checked(self.eigenvalues, np.complex128, (m, n), "eigenvalues")
        self.input_x = np.asarray(self.input_x, dtype=np.float64)
        if self.input_x.ndim != 1:
            raise UsageError(f"input_x must be [D], got shape {self.input_x.shape}")
        if self.method not in METHODS:
            raise UsageError(f"method must be one of {METHODS}, got {self.method!r}")
        self.n_classes = int(self.n_classes)
        self.speed_tol = float(self.speed_tol)

    def __len__(self) -> int:
        return self.states.shape[0]

    @property
    def n_state(self) -> int:
        return self.states.shape[1]

    @property
    def spectral_radius(self) -> np.ndarray:
        """float64 ``[M]``: largest eigenvalue modulus (NaN without eigenvalues)."""
        if self.eigenvalues is None:
            return np.full(len(self), np.nan)
        if self.n_state == 0:
            return np.zeros(len(self))
        return np.abs(self.eigenvalues).max(axis=1)

    @property
    def stable(self) -> np.ndarray:
        """bool ``[M]``: all eigenvalue moduli below 1 (False without eigenvalues)."""
        return self.spectral_radius < 1.0

    def subset(self, index: Any) -> SlowPoints:
        """The points selected by an index array or boolean mask."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            per_point = isinstance(value, np.ndarray) and f.name != "input_x"
            values[f.name] = value[index] if per_point else value
        return SlowPoints(**values)

    def label_counts(self) -> dict[int, int]:
        """How many points answer each label (-1 = null), labels in increasing order."""
        labels, counts = np.unique(self.labels, return_counts=True)
        return {int(k): int(c) for k, c in zip(labels, counts, strict=True)}

    def deduplicate(self, tol: float = 1e-2) -> tuple[SlowPoints, np.ndarray]:
        """See `deduplicate`."""
        return deduplicate(self, tol)

    # ------------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Writes an ``.npz`` with one key per attribute (``eigenvalues`` absent if None)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        if arrays["eigenvalues"] is None:
            del arrays["eigenvalues"]
        save_npz(path, "SlowPoints", arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SlowPoints:
        arrays = load_npz(path, "SlowPoints")
        arrays.setdefault("eigenvalues", None)
        arrays["method"] = str(arrays["method"])
        arrays["n_classes"] = int(arrays["n_classes"])
        arrays["speed_tol"] = float(arrays["speed_tol"])
        return cls(**arrays)


def _checked(value: Any, dtype: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.shape != shape:
        raise UsageError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def trigger_input(input_x: Any) -> np.ndarray:
    """``input_x`` with its last element (memenv's trigger channel) set to 1."""
    trigger_x = torch.as_tensor(input_x).detach().cpu().double().reshape(-1).numpy().copy()
    trigger_x[-1] = 1.0
    return trigger_x


def as_dynamics(
    model: nn.Module | FlatDynamics,
    dtype: torch.dtype | None = torch.float64,
    device: Any = None,
    cell_state_leaves: Sequence[int] | None = None,
    cell_speed: str = "tanh",
) -> FlatDynamics:
    """``model`` as a `FlatDynamics` (returned as is when it already is one)."""
    if isinstance(model, FlatDynamics):
        return model
    return FlatDynamics(
        model, dtype=dtype, device=device, cell_state_leaves=cell_state_leaves,
        cell_speed=cell_speed,
    )  # fmt: skip


def find_slow_points(
    model: nn.Module | FlatDynamics,
    initial_states: Any,
    input_x: Any,
    method: str = "newton",
    *,
    trigger_x: Any = None,
    n_classes: int = 10,
    initial_labels: Any = None,
    eigenvalues: bool = True,
    clip: float | None = 1.0,
    speed_tol: float | None = None,
    stationary_tol: float | None = None,
    dtype: torch.dtype | None = torch.float64,
    device: Any = None,
    cell_state_leaves: Sequence[int] | None = None,
    cell_speed: str = "tanh",
    progress: bool = False,
    **method_options: Any,
) -> SlowPoints:
    """Minimises the speed from every initial state at once.

    Args:
        model: A protocol model (copied and converted to ``dtype``), or a `FlatDynamics`
            (used as is; saves the copy when searching one network many times).
        initial_states: ``[M, N]`` flat states (``N`` = hidden size, ``2 x`` hidden for an LSTM
            ``(h, c)``), e.g. `analysis.centers.ClassCenters.centers`.
        input_x: The fixed input ``[D]``: the mean noise frame with the trigger off
            (``task.mean_frame``).
        method: ``"newton"`` (batched Levenberg-Marquardt, fast; `search.newton_search`) or
            ``"adam"`` (the paper's; `search.adam_search`).
        trigger_x: Input of the readout step for the labels; default ``input_x`` with the
            trigger (last element) on.
        n_classes: Active vocabulary for the readout label.
        initial_labels: ``[M]`` int class each search starts from (-1 unknown); default -1.
        eigenvalues: Compute the eigenvalues of dF/ds at every point (costs a Jacobian and an
            N x N eigen-decomposition per point).
        clip: Hidden coordinates stay in ``[-clip, clip]`` (paper: 1); None disables.
        speed_tol: A point with ``q <= speed_tol`` is a fixed point; None = `default_speed_tol`.
        stationary_tol: Relative gradient below which a point with ``q > speed_tol`` counts as
            a converged local minimum; None = ``eps ** (1/3)`` of the dtype.
        dtype, device, cell_state_leaves, cell_speed: See `analysis.protocol.FlatDynamics`
            (ignored when ``model`` is a `FlatDynamics`).
        progress: Show tqdm bars.
        **method_options: Passed to the search (Adam: ``iterations``, ``lr``, ``lr_drop_at``,
            ``lr_drop_factor``; Newton: ``max_iterations``, ``initial_damping``,
            ``max_damping``, ``relative_tol``, ``chunk_size``).
    """
    if method not in METHODS:
        raise UsageError(f"method must be one of {METHODS}, got {method!r}")
    dynamics = as_dynamics(model, dtype, device, cell_state_leaves, cell_speed)
    initial_bxn = dynamics.as_states(initial_states)
    x_1xd = dynamics.as_input(input_x)
    n_points = initial_bxn.shape[0]
    if initial_labels is None:
        initial_labels = np.full(n_points, NO_LABEL, dtype=np.int64)
    if speed_tol is None:
        speed_tol = default_speed_tol(dynamics.n_state, dynamics.dtype)
    search = newton_search if method == "newton" else adam_search
    result: SearchResult = search(
        dynamics,
        initial_bxn,
        x_1xd,
        clip=clip,
        speed_tol=speed_tol,
        progress=progress,
        **method_options,
    )
    if stationary_tol is None:
        stationary_tol = torch.finfo(dynamics.dtype).eps ** (1 / 3)
    converged_b, eigenvalues_bxn = _diagnose(
        dynamics, result, x_1xd, speed_tol, stationary_tol, eigenvalues
    )
    trigger_1xd = dynamics.as_input(trigger_input(input_x) if trigger_x is None else trigger_x)
    labels_b = dynamics.readout_labels(result.states_bxn, trigger_1xd, n_classes)
    return SlowPoints(
        states=_numpy(result.states_bxn),
        initial_states=_numpy(initial_bxn),
        speeds=_numpy(result.speeds_b),
        converged=_numpy(converged_b),
        iterations=_numpy(result.iterations_b),
        labels=_numpy(labels_b),
        initial_labels=initial_labels,
        eigenvalues=eigenvalues_bxn,
        input_x=_numpy(x_1xd[0]),
        method=method,
        n_classes=n_classes,
        speed_tol=speed_tol,
    )


def _diagnose(
    dynamics: FlatDynamics,
    result: SearchResult,
    x_1xd: torch.Tensor,
    speed_tol: float,
    stationary_tol: float,
    with_eigenvalues: bool,
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Converged flags and (optionally) eigenvalues of dF/ds, one Jacobian pass per chunk."""
    converged = []
    spectra = []
    for states_cxn in result.states_bxn.split(dynamics.default_chunk_size()):
        r_cxn, jr_cxnxn = dynamics.residual_and_jacobian(states_cxn, x_1xd)
        gradient_c = (jr_cxnxn.transpose(1, 2) @ r_cxn[..., None])[..., 0].norm(dim=1)
        scale_c = jr_cxnxn.flatten(1).norm(dim=1) * r_cxn.norm(dim=1)
        speed_c = r_cxn.square().sum(dim=1)
        converged.append((speed_c <= speed_tol) | (gradient_c <= stationary_tol * scale_c))
        if with_eigenvalues:
            if dynamics.layout.has_cell_state:
                jf_cxnxn = dynamics.jacobian(states_cxn, x_1xd, of="transition")
            else:  # phi is the identity: dF/ds = dr/ds + I
                jf_cxnxn = jr_cxnxn + torch.eye(
                    dynamics.n_state, dtype=jr_cxnxn.dtype, device=jr_cxnxn.device
                )
            spectra.append(sorted_eigenvalues(jf_cxnxn))
    converged_b = torch.cat(converged) if converged else torch.zeros(0, dtype=torch.bool)
    if not with_eigenvalues:
        return converged_b, None
    if not spectra:
        return converged_b, np.zeros((0, dynamics.n_state), dtype=np.complex128)
    return converged_b, np.concatenate(spectra)


def sorted_eigenvalues(jacobians_bxnxn: torch.Tensor) -> np.ndarray:
    """Eigenvalues ``[B, N]`` complex128, each row by decreasing modulus."""
    values = torch.linalg.eigvals(jacobians_bxnxn.detach().cpu().double()).numpy()
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1).astype(np.complex128)


def deduplicate(points: SlowPoints, tol: float = 1e-2) -> tuple[SlowPoints, np.ndarray]:
    """Merges points closer than ``tol`` (Euclidean, flat state space) into one.

    Greedy by increasing speed: the slowest remaining point claims every unclaimed point within
    ``tol`` of it. The default 1e-2 is far below the distance between distinct slow points of
    the task's networks (order 1 in a state space bounded by [-1, 1]) and far above the
    precision a converged search reaches.

    Returns:
        ``(unique, cluster_m)``: the representatives (slowest first) and, for every input point,
        the index of its representative in ``unique``.
    """
    if tol < 0 or not math.isfinite(tol):
        raise UsageError(f"tol must be a finite number >= 0, got {tol!r}")
    order = np.argsort(points.speeds, kind="stable")
    cluster_m = np.full(len(points), -1, dtype=np.int64)
    keep: list[int] = []
    states = points.states
    for index in order:
        if cluster_m[index] >= 0:
            continue
        distances = np.linalg.norm(states - states[index], axis=1)
        claim = (distances <= tol) & (cluster_m < 0)
        cluster_m[claim] = len(keep)
        keep.append(int(index))
    return points.subset(np.asarray(keep, dtype=np.int64)), cluster_m


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()
