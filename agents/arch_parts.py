"""Pieces every architecture module shares (`agents.architectures`, `agents.arch_more`,
`agents.arch_ssm`), in a module of their own so that those import no one another."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from agents.protocol import N_OUTPUTS
from memenv.errors import UsageError

MNIST_OBS_DIM = 785
"""784 pixels + the trigger."""


class MLPReadout(nn.Module):
    """``logits = W2 gelu(W1 s + b1) + b2``: state features ``[..., S]`` -> ``[..., 11]``."""

    def __init__(self, in_features: int, hidden: int, n_outputs: int = N_OUTPUTS) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(functional.gelu(self.hidden(features)))


def check_sizes(obs_dim: int, hidden_size: int) -> None:
    """UsageError naming both sizes unless ``obs_dim >= 2`` and ``hidden_size >= 1``."""
    if int(obs_dim) < 2 or int(hidden_size) < 1:
        raise UsageError(f"need obs_dim >= 2 and hidden_size >= 1, got {obs_dim}, {hidden_size}")
