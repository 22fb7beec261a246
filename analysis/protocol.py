"""The recurrent-model protocol, seen as a map on flat state vectors.

The analysis works on any model that follows the recurrent protocol of docs/agents.md (duck typing)::

    initial_state(B) -> state
    transition(state, x_bxd) -> state           # one step of F
    readout(state) -> logits_bx11
    forward(obs_bxtxd, state=None) -> (logits_bxtx11, state)

A state may be one tensor or a (nested) tuple/list of tensors, e.g. an LSTM's ``(h, c)``; each
tensor has a batch dimension somewhere (found by comparing ``initial_state(1)`` with
``initial_state(2)``). `StateLayout` flattens any such state to ``[B, N]`` and back, and
`FlatDynamics` wraps a model as ``s_bxn -> F(s_bxn)`` plus the speed, Jacobians and readout
label used throughout the analysis.

Speed coordinates. The speed of a state is ``q(s) = ||phi(F(s)) - phi(s)||^2`` where ``phi`` is
the identity on hidden-state coordinates and ``tanh`` on LSTM cell-state coordinates, as in the
authors' code (docs/paper.md: for an LSTM, ``||h' - h||^2 + ||tanh(c') - tanh(c)||^2``). By default a
state that is a 2-tuple of equal-sized tensors is taken to be ``(h, c)``; pass
``cell_state_leaves`` to say otherwise. Clipping of the search (the paper clips to [-1, 1]) applies
only to hidden coordinates, never to cell coordinates (the authors clip ``h`` only).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.jacobians import closed_form_jacobian
from memenv.errors import ArgumentTypeError, UsageError

N_OUTPUTS = 11
"""Output classes of the task: 0 = null, k = data-set class k - 1."""

CELL_SPEEDS = ("tanh", "raw")


# --------------------------------------------------------------------------------- pytrees
def _flatten_tree(state: Any) -> tuple[list[torch.Tensor], Any]:
    """Leaves (depth-first) and a description of the nesting."""
    if isinstance(state, torch.Tensor):
        return [state], None
    if isinstance(state, tuple | list):
        leaves: list[torch.Tensor] = []
        children = []
        for item in state:
            sub_leaves, sub_def = _flatten_tree(item)
            leaves.extend(sub_leaves)
            children.append((len(sub_leaves), sub_def))
        return leaves, (type(state), children)
    raise ArgumentTypeError(
        f"a model state must be a tensor or a tuple/list of tensors, got {type(state).__name__}"
    )


def _unflatten_tree(leaves: Sequence[torch.Tensor], treedef: Any) -> Any:
    if treedef is None:
        (leaf,) = leaves
        return leaf
    kind, children = treedef
    items = []
    start = 0
    for n_leaves, sub_def in children:
        items.append(_unflatten_tree(leaves[start : start + n_leaves], sub_def))
        start += n_leaves
    if hasattr(kind, "_fields"):  # namedtuple
        return kind(*items)
    return kind(items)


@dataclass(frozen=True)
class _Leaf:
    batch_dim: int
    shape_without_batch: tuple[int, ...]
    size: int


class StateLayout:
    """How a model's state maps to a flat ``[B, N]`` tensor and back.

    Args:
        state_b1: The model's state for a batch of 1 (e.g. ``model.initial_state(1)``).
        state_b2: The same for a batch of 2; the dimension that differs is each leaf's batch
            dimension.
        cell_state_leaves: Indices (in depth-first order) of the leaves that are LSTM cell states
            (speed measured through tanh, never clipped). None: leaf 1 when the state is a
            2-tuple of equal-sized tensors (the ``(h, c)`` convention), else none.
    """

    def __init__(
        self,
        state_b1: Any,
        state_b2: Any,
        cell_state_leaves: Sequence[int] | None = None,
    ) -> None:
        leaves1, treedef = _flatten_tree(state_b1)
        leaves2, treedef2 = _flatten_tree(state_b2)
        if len(leaves1) != len(leaves2) or _describe(treedef) != _describe(treedef2):
            raise UsageError("initial_state(1) and initial_state(2) have different structures")
        self.treedef = treedef
        self.leaves: list[_Leaf] = []
        for i, (a, b) in enumerate(zip(leaves1, leaves2, strict=True)):
            differ = [d for d in range(a.dim()) if a.shape[d] != b.shape[d]]
            if (
                a.dim() != b.dim()
                or len(differ) != 1
                or (a.shape[differ[0]], b.shape[differ[0]])
                != (
                    1,
                    2,
                )
            ):
                raise UsageError(
                    f"state leaf {i}: cannot find its batch dimension from shapes "
                    f"{tuple(a.shape)} (B=1) and {tuple(b.shape)} (B=2)"
                )
            rest = tuple(a.shape[d] for d in range(a.dim()) if d != differ[0])
            self.leaves.append(_Leaf(differ[0], rest, math.prod(rest)))
        if cell_state_leaves is None:
            is_pair = (
                isinstance(state_b1, tuple)
                and len(self.leaves) == 2
                and treedef[1] == [(1, None), (1, None)]
                and self.leaves[0].size == self.leaves[1].size
            )
            cell_state_leaves = (1,) if is_pair else ()
        bad = [i for i in cell_state_leaves if not 0 <= i < len(self.leaves)]
        if bad:
            raise UsageError(f"cell_state_leaves {bad} out of range for {len(self.leaves)} leaves")
        self.cell_state_leaves = tuple(sorted(set(cell_state_leaves)))
        self.n_state = sum(leaf.size for leaf in self.leaves)
        mask = np.zeros(self.n_state, dtype=bool)
        start = 0
        for i, leaf in enumerate(self.leaves):
            if i in self.cell_state_leaves:
                mask[start : start + leaf.size] = True
            start += leaf.size
        self.cell_mask_n = mask
        """bool ``[N]``: True at cell-state coordinates."""

    @classmethod
    def of(cls, model: Any, cell_state_leaves: Sequence[int] | None = None) -> StateLayout:
        """The layout of ``model.initial_state``."""
        with torch.no_grad():
            return cls(model.initial_state(1), model.initial_state(2), cell_state_leaves)

    @property
    def has_cell_state(self) -> bool:
        return bool(self.cell_state_leaves)

    def flatten(self, state: Any) -> torch.Tensor:
        """A model state -> ``[B, N]`` (batch first, leaves concatenated)."""
        leaves, _ = _flatten_tree(state)
        if len(leaves) != len(self.leaves):
            raise UsageError(f"state has {len(leaves)} tensors, the layout {len(self.leaves)}")
        parts = []
        for tensor, leaf in zip(leaves, self.leaves, strict=True):
            moved = tensor.movedim(leaf.batch_dim, 0)
            if tuple(moved.shape[1:]) != leaf.shape_without_batch:
                raise UsageError(
                    f"state leaf of shape {tuple(tensor.shape)} does not match the layout "
                    f"{leaf.shape_without_batch} (batch dim {leaf.batch_dim})"
                )
            parts.append(moved.reshape(moved.shape[0], leaf.size))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def unflatten(self, states_bxn: torch.Tensor) -> Any:
        """``[B, N]`` -> a model state with the layout's structure."""
        if states_bxn.dim() != 2 or states_bxn.shape[1] != self.n_state:
            raise UsageError(f"want [B, {self.n_state}] states, got {tuple(states_bxn.shape)}")
        batch = states_bxn.shape[0]
        leaves = []
        start = 0
        for leaf in self.leaves:
            part = states_bxn[:, start : start + leaf.size]
            start += leaf.size
            part = part.reshape(batch, *leaf.shape_without_batch).movedim(0, leaf.batch_dim)
            leaves.append(part)
        return _unflatten_tree(leaves, self.treedef)


def _describe(treedef: Any) -> Any:
    if treedef is None:
        return None
    kind, children = treedef
    return (kind.__name__, [(n, _describe(d)) for n, d in children])


# ------------------------------------------------------------------------------ dynamics
def analysis_copy(model: nn.Module, dtype: torch.dtype | None, device: Any = None) -> nn.Module:
    """A frozen copy of ``model`` in eval mode, converted to ``dtype``/``device`` if given."""
    clone = copy.deepcopy(model)
    clone.eval()
    if dtype is not None:
        clone = clone.to(dtype=dtype)
    if device is not None:
        clone = clone.to(device=device)
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's first floating parameter (CPU/float32 if none)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.device, parameter.dtype
    return torch.device("cpu"), torch.float32


class FlatDynamics:
    """A protocol model as a map ``F`` on flat states ``[B, N]``, with its speed and Jacobians.

    The model is copied (frozen, eval mode) and converted to ``dtype``: float64 by default,
    because speeds near a fixed point fall below float32 resolution (a 200-unit state carries
    rounding errors of about 1e-12 in ``q``) and the Jacobian spectrum is more faithful.

    Args:
        model: Follows the protocol (module docstring).
        dtype: Computation dtype; None keeps the model's own.
        device: Device; None keeps the model's own.
        cell_state_leaves: See `StateLayout`.
        cell_speed: How cell coordinates enter the speed: ``"tanh"`` (the paper's
            ``||tanh(c') - tanh(c)||^2``) or ``"raw"`` (``||c' - c||^2``, which does not vanish
            as ``|c|`` grows, so searches cannot run off along saturated cell coordinates).
        copy_model: False uses ``model`` itself (it must already be in the wanted dtype/device;
            its parameters are not frozen).
        closed_form: Use the closed-form Jacobians of `analysis.jacobians` where the model has
            them (built-in GRU/LSTM/RNN: ``O(N^2)`` per state instead of ``O(N^3)``); False
            always differentiates ``transition`` automatically.
    """

    def __init__(
        self,
        model: nn.Module,
        dtype: torch.dtype | None = torch.float64,
        device: Any = None,
        cell_state_leaves: Sequence[int] | None = None,
        copy_model: bool = True,
        cell_speed: str = "tanh",
        closed_form: bool = True,
    ) -> None:
        if cell_speed not in CELL_SPEEDS:
            raise UsageError(f"cell_speed must be one of {CELL_SPEEDS}, got {cell_speed!r}")
        self.cell_speed = cell_speed
        self.model = analysis_copy(model, dtype, device) if copy_model else model
        self.device, self.dtype = model_device_dtype(self.model)
        self.layout = StateLayout.of(self.model, cell_state_leaves)
        self.cell_mask_n = torch.as_tensor(self.layout.cell_mask_n, device=self.device)
        self.hidden_mask_n = ~self.cell_mask_n
        self.step_jacobian = closed_form_jacobian(self.model) if closed_form else None
        """The closed-form ``(F, dF/ds)``, or None (automatic differentiation)."""

    @property
    def n_state(self) -> int:
        return self.layout.n_state

    # ---------------------------------------------------------------- inputs and states
    def as_states(self, states: Any) -> torch.Tensor:
        """``[B, N]`` (or ``[N]``) array-like -> ``[B, N]`` tensor on the model's device/dtype."""
        states_bxn = torch.as_tensor(states).to(device=self.device, dtype=self.dtype)
        if states_bxn.dim() == 1:
            states_bxn = states_bxn[None]
        if states_bxn.dim() != 2 or states_bxn.shape[1] != self.n_state:
            raise UsageError(
                f"states must be [B, {self.n_state}] for this model, got {tuple(states_bxn.shape)}"
            )
        if not torch.isfinite(states_bxn).all():
            raise UsageError("states contain NaN or infinite values")
        return states_bxn

    def as_input(self, input_x: Any) -> torch.Tensor:
        """A fixed input ``[D]`` or ``[1, D]`` -> ``[1, D]`` tensor on the model's device/dtype."""
        x_1xd = torch.as_tensor(input_x).to(device=self.device, dtype=self.dtype)
        if x_1xd.dim() == 1:
            x_1xd = x_1xd[None]
        if x_1xd.dim() != 2 or x_1xd.shape[0] != 1:
            raise UsageError(f"input must be [D] or [1, D], got {tuple(x_1xd.shape)}")
        return x_1xd

    def clip(self, states_bxn: torch.Tensor, bound: float | None) -> torch.Tensor:
        """States with hidden coordinates clipped to ``[-bound, bound]`` (cell ones untouched)."""
        if bound is None:
            return states_bxn
        clipped = states_bxn.clamp(-bound, bound)
        if not self.layout.has_cell_state:
            return clipped
        return torch.where(self.cell_mask_n, states_bxn, clipped)

    def bound_active(
        self,
        states_bxn: torch.Tensor,
        gradient_bxn: torch.Tensor,
        bound: float | None,
        epsilon_b: torch.Tensor | float = 0.0,
    ) -> torch.Tensor:
        """bool ``[B, N]``: hidden coordinates within ``epsilon`` of the clip bound whose
        descent direction (``-gradient``) points out of ``[-bound, bound]``."""
        if bound is None:
            return torch.zeros_like(states_bxn, dtype=torch.bool)
        epsilon = torch.as_tensor(epsilon_b, dtype=states_bxn.dtype, device=states_bxn.device)
        if epsilon.dim() == 1:
            epsilon = epsilon[:, None]
        upper = (states_bxn >= bound - epsilon) & (gradient_bxn < 0)
        lower = (states_bxn <= -bound + epsilon) & (gradient_bxn > 0)
        return (upper | lower) & self.hidden_mask_n

    # ------------------------------------------------------------------------ the map
    def step(self, states_bxn: torch.Tensor, x_bxd: torch.Tensor) -> torch.Tensor:
        """``F(s, x)`` for a batch: ``[B, N], [B or 1, D] -> [B, N]``."""
        x_bxd = x_bxd.expand(states_bxn.shape[0], -1)
        new_state = self.model.transition(self.layout.unflatten(states_bxn), x_bxd)
        return self.layout.flatten(new_state)

    def speed_coordinates(self, states_bxn: torch.Tensor) -> torch.Tensor:
        """``phi(s)``: identity on hidden coordinates, tanh on cell-state coordinates (identity
        everywhere with ``cell_speed="raw"``)."""
        if not self.layout.has_cell_state or self.cell_speed == "raw":
            return states_bxn
        return torch.where(self.cell_mask_n, torch.tanh(states_bxn), states_bxn)

    def residual(self, states_bxn: torch.Tensor, x_1xd: torch.Tensor) -> torch.Tensor:
        """``phi(F(s, x)) - phi(s)``: ``[B, N]``; the speed is its squared norm."""
        stepped = self.step(states_bxn, x_1xd)
        return self.speed_coordinates(stepped) - self.speed_coordinates(states_bxn)

    def speed(self, states_bxn: torch.Tensor, x_1xd: torch.Tensor) -> torch.Tensor:
        """``q(s) = ||phi(F(s, x)) - phi(s)||^2``: ``[B]``."""
        with torch.no_grad():
            return self.residual(states_bxn, x_1xd).square().sum(dim=1)

    def _single(self, fn: Callable, x_1xd: torch.Tensor) -> Callable:
        def one(state_n: torch.Tensor) -> torch.Tensor:
            return fn(state_n[None], x_1xd)[0]

        return one

    def jacobian(
        self,
        states_bxn: torch.Tensor,
        x_1xd: torch.Tensor,
        of: str = "transition",
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        """Per-state Jacobians ``[B, N, N]`` (``J[b, i, j] = d out_i / d s_j``), in closed form
        where `step_jacobian` exists, else by ``vmap(jacrev)``.

        Args:
            of: ``"transition"`` (dF/ds, whose eigenvalues give stability) or ``"residual"``
                (d/ds of ``phi(F(s)) - phi(s)``, used by the Newton search).
            chunk_size: States per batched call (memory bound).
        """
        fn = {"transition": self.step, "residual": self.residual}.get(of)
        if fn is None:
            raise UsageError(f"of must be 'transition' or 'residual', got {of!r}")
        chunk_size = chunk_size or self.default_chunk_size()
        if self.step_jacobian is not None:
            parts = [
                self._closed_form(chunk, x_1xd, of)[1] for chunk in states_bxn.split(chunk_size)
            ]
        else:
            jac = torch.func.vmap(torch.func.jacrev(self._single(fn, x_1xd)))
            parts = [jac(chunk) for chunk in states_bxn.split(chunk_size)]
        return torch.cat(parts) if parts else states_bxn.new_zeros(0, self.n_state, self.n_state)

    def residual_and_jacobian(
        self, states_bxn: torch.Tensor, x_1xd: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r [B, N], dr/ds [B, N, N])`` in one batched pass (one state chunk, no splitting)."""
        if self.step_jacobian is not None:
            return self._closed_form(states_bxn, x_1xd, "residual")
        one = self._single(self.residual, x_1xd)

        def with_aux(state_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = one(state_n)
            return out, out

        jac_bxnxn, r_bxn = torch.func.vmap(torch.func.jacrev(with_aux, has_aux=True))(states_bxn)
        return r_bxn, jac_bxnxn

    def _closed_form(
        self, states_bxn: torch.Tensor, x_1xd: torch.Tensor, of: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, J)`` from `step_jacobian`, with ``r = phi(F(s)) - phi(s)`` and ``J = dF/ds``
        (``of="transition"``) or ``dr/ds = diag(phi'(F(s))) dF/ds - diag(phi'(s))``
        (``of="residual"``, formed in place on ``dF/ds``: no second ``[B, N, N]`` tensor)."""
        stepped_bxn, jacobian_bxnxn = self.step_jacobian(states_bxn, x_1xd)
        r_bxn = self.speed_coordinates(stepped_bxn) - self.speed_coordinates(states_bxn)
        if of == "transition":
            return r_bxn, jacobian_bxnxn
        if not self.layout.has_cell_state or self.cell_speed == "raw":  # phi' = 1
            jacobian_bxnxn.diagonal(dim1=1, dim2=2).sub_(1.0)
            return r_bxn, jacobian_bxnxn
        jacobian_bxnxn.mul_(self._speed_slope(stepped_bxn)[:, :, None])
        jacobian_bxnxn.diagonal(dim1=1, dim2=2).sub_(self._speed_slope(states_bxn))
        return r_bxn, jacobian_bxnxn

    def _speed_slope(self, states_bxn: torch.Tensor) -> torch.Tensor:
        """``phi'(s)`` with tanh-measured cells: 1 on hidden, ``1 - tanh(s)^2`` on cell ones."""
        squashed = torch.tanh(states_bxn)
        return torch.where(self.cell_mask_n, 1 - squashed * squashed, 1.0)

    def default_chunk_size(self) -> int:
        """States per Jacobian batch: about 2^24 Jacobian entries (128 MiB in float64)."""
        return int(max(1, min(1024, 2**24 // (self.n_state * self.n_state))))

    # ------------------------------------------------------------------------ readout
    def readout_labels(
        self, states_bxn: torch.Tensor, trigger_x_1xd: torch.Tensor, n_classes: int = 10
    ) -> torch.Tensor:
        """What the network answers if the trigger comes now: int64 ``[B]``, class or -1 (null).

        One more step with ``trigger_x_1xd`` (the mean frame with the trigger on), then the
        readout; the argmax runs over the null output and the first ``n_classes`` classes (the
        active vocabulary; the others are masked, as in training).
        """
        with torch.no_grad():
            stepped = self.step(states_bxn, trigger_x_1xd)
            logits = self.model.readout(self.layout.unflatten(stepped))
            if logits.shape[-1] != N_OUTPUTS:
                raise UsageError(f"readout must give {N_OUTPUTS} logits, got {logits.shape[-1]}")
            return logits[:, : n_classes + 1].argmax(dim=1) - 1
