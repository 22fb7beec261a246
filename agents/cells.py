"""The recurrent cells' update equations, written out once.

`cell_update` is used by `RecurrentModel.cell_step` (one step, the slow-point analysis' F) and
by `EnsembleModel` (K stacked networks); `RecurrentModel.forward` runs the same equations
through PyTorch's fused ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` kernels (cuDNN on CUDA), whose
gate layout these equations follow:

* GRU (gates r, z, n)::

      r = sigmoid(Wir x + bir + Whr h + bhr)
      z = sigmoid(Wiz x + biz + Whz h + bhz)
      n = tanh(Win x + bin + r * (Whn h + bhn))
      h' = (1 - z) * n + z * h

* LSTM (gates i, f, g, o), state ``(h, c)``::

      c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
      h' = sigmoid(o) * tanh(c')

* vanilla RNN: ``h' = tanh(Wih x + bih + Whh h + bhh)``.
"""

from __future__ import annotations

import torch

from memenv.errors import UsageError

CELLS = ("gru", "lstm", "rnn")
GATES = {"gru": 3, "lstm": 4, "rnn": 1}
"""Rows of ``weight_ih`` per hidden unit (PyTorch's layout)."""


def cell_update(cell: str, gi: torch.Tensor, gh: torch.Tensor, state):
    """One step of ``cell`` from its input and hidden projections.

    Args:
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        gi: ``W_ih x + b_ih``, ``[..., G * N]``.
        gh: ``W_hh h + b_hh``, ``[..., G * N]``.
        state: ``h [..., N]`` (GRU, RNN) or ``(h, c)`` (LSTM).

    Returns:
        The next state, with the structure of ``state``.
    """
    if cell == "gru":
        h = state
        gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
        gh_r, gh_z, gh_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(gi_r + gh_r)
        z = torch.sigmoid(gi_z + gh_z)
        n = torch.tanh(gi_n + r * gh_n)
        return n + z * (h - n)
    if cell == "lstm":
        _, c = state
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next
    if cell == "rnn":
        return torch.tanh(gi + gh)
    raise UsageError(f"cell must be one of {CELLS}, got {cell!r}")


def check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise UsageError(f"cell must be one of {CELLS}, got {cell!r}")
