"""The `RecurrentAgent` protocol and helpers for recurrent states.

Any ``torch.nn.Module`` with these four methods trains (`agents.train`), evaluates
(`agents.evaluate_delays`), acts in the Gymnasium envs (`agents.RecurrentPolicy`) and can be
analysed (slow points use `transition`, `readout`, `initial_state`).

A *state* is either one tensor ``[B, S]`` (GRU, vanilla RNN: ``h``) or a tuple of tensors each
``[B, S_i]`` (LSTM: ``(h, c)``). Its first axis is always the batch. `state_tensor` and
`state_from_tensor` flatten a state to one ``[B, sum S_i]`` matrix and back, so that code which
works on vectors (optimising a state to a slow point, class centres of mass) handles every cell
the same way.
"""

from __future__ import annotations

from typing import Protocol, Union, runtime_checkable

import torch

from memenv.errors import ArgumentTypeError, UsageError

N_OUTPUTS = 11
"""Output units: 0 = null, k = class k - 1 (docs/paper.md)."""


def check_sizes(obs_dim: int, hidden_size: int) -> None:
    """Refuses an observation or hidden size a recurrent network cannot have."""
    if int(obs_dim) < 2 or int(hidden_size) < 1:
        raise UsageError(f"need obs_dim >= 2 and hidden_size >= 1, got {obs_dim}, {hidden_size}")


State = Union[torch.Tensor, tuple[torch.Tensor, ...]]  # noqa: UP007 (a runtime alias)

MODEL_FAMILIES = ("torch", "authors")
"""How a reference network is written (docs/agents.md, "Model families"): ``torch``, PyTorch's
cells with a linear readout and masked cross-entropy (`agents.models`); ``authors``, the
authors' hand-written cells with a sigmoid readout and their loss (`agents.authors`)."""


@runtime_checkable
class RecurrentAgent(Protocol):
    """What a recurrent model must offer (`torch.nn.Module` subclasses in practice).

    Shapes: B = batch, T = steps, D = observation size (785 for MNIST: 784 pixels + trigger;
    3073 for CIFAR-10), 11 = output units.
    """

    def forward(self, obs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Runs ``T`` steps.

        Args:
            obs: float32 ``[B, T, D]``.
            state: The state before the first step; None means `initial_state`.

        Returns:
            ``(logits [B, T, 11], state after the last step)``. ``logits[:, t]`` must equal
            ``readout(state after step t)``.
        """
        ...

    def initial_state(self, batch_size: int) -> State:
        """The state before a trial's first step (``h0 = c0 = 0`` for the reference models)."""
        ...

    def transition(self, state: State, x: torch.Tensor) -> State:
        """One step of the dynamics F: the state after observing ``x`` (float32 ``[B, D]``).

        Must agree with `forward` (one step of ``forward(x[:, None], state)``) and be
        differentiable in ``state`` (slow-point search and Jacobians differentiate it).
        """
        ...

    def readout(self, state: State) -> torch.Tensor:
        """Unmasked logits ``[B, 11]`` of a state."""
        ...


def state_tensor(state: State) -> torch.Tensor:
    """Flattens a state to one matrix ``[B, S]`` (tuples are concatenated along the last axis).

    Args:
        state: ``h [B, N]`` or ``(h [B, N], c [B, N])`` (any number of parts).

    Returns:
        ``[B, N]`` or ``[B, 2N]`` (``h`` first, then ``c``).
    """
    if isinstance(state, torch.Tensor):
        return state
    return torch.cat(tuple(state), dim=-1)


def state_from_tensor(vector: torch.Tensor, like: State) -> State:
    """Inverse of `state_tensor`: splits ``vector [..., S]`` into the structure of ``like``.

    Args:
        vector: ``[..., S]`` with ``S`` the summed last-axis sizes of ``like``'s parts.
        like: Any state of the model (e.g. ``model.initial_state(1)``); only its structure and
            part sizes are used.

    Returns:
        A tensor (when ``like`` is a tensor) or a tuple of views of ``vector``.
    """
    if isinstance(like, torch.Tensor):
        if vector.shape[-1] != like.shape[-1]:
            raise UsageError(f"state vector has size {vector.shape[-1]}, want {like.shape[-1]}")
        return vector
    sizes = [part.shape[-1] for part in like]
    if vector.shape[-1] != sum(sizes):
        raise UsageError(f"state vector has size {vector.shape[-1]}, want {sum(sizes)}")
    return tuple(torch.split(vector, sizes, dim=-1))


def hidden(state: State) -> torch.Tensor:
    """The part of a state the readout sees: ``h`` (the first part of a tuple state)."""
    return state if isinstance(state, torch.Tensor) else state[0]


def map_state(state: State, fn) -> State:
    """Applies ``fn`` to every tensor of a state, keeping its structure."""
    if isinstance(state, torch.Tensor):
        return fn(state)
    return tuple(fn(part) for part in state)


def select_rows(state: State, rows: torch.Tensor) -> State:
    """The states of the batch rows ``rows`` (int64 ``[R]``)."""
    return map_state(state, lambda part: part[rows])


def model_family(model: object) -> str:
    """The family of ``model`` (its ``family`` attribute): ``"torch"`` for any model without one.

    It decides the training loss (`agents.loss.member_loss`) and the loss's scale
    (`agents.loss.LOSS_SCALE_VS_AUTHORS`).
    """
    family = getattr(model, "family", "torch")
    if family not in MODEL_FAMILIES:
        raise UsageError(
            f"{type(model).__name__}.family is {family!r}; a model family is one of "
            f"{MODEL_FAMILIES}"
        )
    return family


def check_model_family(family: str) -> None:
    if family not in MODEL_FAMILIES:
        raise UsageError(f"model family must be one of {MODEL_FAMILIES}, got {family!r}")


def check_agent(model: object) -> None:
    """Raises TypeError naming the missing methods when ``model`` lacks the protocol."""
    missing = [
        name
        for name in ("forward", "initial_state", "transition", "readout")
        if not callable(getattr(model, name, None))
    ]
    if missing:
        raise ArgumentTypeError(
            f"{type(model).__name__} does not follow agents.RecurrentAgent: missing {missing}"
        )
