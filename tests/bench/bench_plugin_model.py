"""A user's own model for the plug-in route of ``memenv bench`` (and broken ones for errors)."""

from __future__ import annotations

import torch
from torch import nn


class ElmanNet(nn.Module):
    """A hand-written tanh RNN following `agents.RecurrentAgent` (state ``[B, N]``)."""

    def __init__(self, obs_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(obs_dim, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, 11)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.hidden_size, dtype=self.out.weight.dtype)

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.inp(x) + self.rec(state))

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.out(state)

    def forward(self, obs: torch.Tensor, state: torch.Tensor | None = None):
        h = self.initial_state(obs.shape[0]) if state is None else state
        states = []
        for t in range(obs.shape[1]):
            h = self.transition(h, obs[:, t])
            states.append(h)
        return self.out(torch.stack(states, dim=1)), h


def elman(hidden_size: int = 16, obs_dim: int = 785) -> ElmanNet:
    return ElmanNet(obs_dim, hidden_size)


def not_a_module(hidden_size: int = 16, obs_dim: int = 785) -> dict:
    return {"hidden_size": hidden_size}


class _NoReadout(nn.Module):
    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(obs_dim, 11)

    def forward(self, obs, state=None):
        return self.lin(obs), state


def no_readout(hidden_size: int = 16, obs_dim: int = 785) -> nn.Module:
    return _NoReadout(obs_dim)


class _WrongLogits(ElmanNet):
    def forward(self, obs, state=None):
        logits, h = super().forward(obs, state)
        return logits[..., :5], h


def wrong_logits(hidden_size: int = 16, obs_dim: int = 785) -> nn.Module:
    return _WrongLogits(obs_dim, hidden_size)


class _Float32State(ElmanNet):
    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.hidden_size)  # ignores the parameters' dtype


def float32_state(hidden_size: int = 16, obs_dim: int = 785) -> nn.Module:
    return _Float32State(obs_dim, hidden_size)


NOT_CALLABLE = 3
