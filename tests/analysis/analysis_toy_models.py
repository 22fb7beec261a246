"""Tiny protocol-following models with fixed points known in closed form."""

from __future__ import annotations

import torch
from torch import nn

from tests.protocol_models import StepwiseModel

N_OUTPUTS = 11


class CellModel(StepwiseModel):
    """A torch RNN cell (GRUCell / LSTMCell / RNNCell) behind the memenv model protocol."""

    def __init__(self, cell: nn.Module, n_hidden: int) -> None:
        super().__init__()
        self.cell = cell
        self.n_hidden = n_hidden
        self.head = nn.Linear(n_hidden, N_OUTPUTS)

    @property
    def is_lstm(self) -> bool:
        return isinstance(self.cell, nn.LSTMCell)

    def initial_state(self, batch_size: int):
        zeros = self.head.weight.new_zeros(batch_size, self.n_hidden)
        return (zeros, zeros.clone()) if self.is_lstm else zeros

    def transition(self, state, x_bxd):
        return self.cell(x_bxd, state)

    def readout(self, state):
        h_bxn = state[0] if self.is_lstm else state
        return self.head(h_bxn)


class LinearRNN(StepwiseModel):
    """``h' = A h + B x + b``: fixed point ``(I - A)^-1 (B x + b)``, Jacobian ``A``."""

    def __init__(self, a_nxn: torch.Tensor, b_nxd: torch.Tensor, bias_n: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a_nxn)
        self.b = nn.Parameter(b_nxd)
        self.bias = nn.Parameter(bias_n)
        self.head = nn.Linear(a_nxn.shape[0], N_OUTPUTS)

    def initial_state(self, batch_size: int):
        return self.a.new_zeros(batch_size, self.a.shape[0])

    def transition(self, state, x_bxd):
        return state @ self.a.T + x_bxd @ self.b.T + self.bias

    def readout(self, state):
        return self.head(state)


def zero_recurrent_gru(n_hidden: int, n_input: int, seed: int = 0) -> CellModel:
    torch.manual_seed(seed)
    model = CellModel(nn.GRUCell(n_input, n_hidden), n_hidden)
    with torch.no_grad():
        model.cell.weight_hh.zero_()
    return model


def gru_fixed_point(model: CellModel, x_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h* [N], eigenvalues of dF/dh [N])`` of a GRU whose recurrent weights are zero."""
    cell = model.cell
    n = model.n_hidden
    gi = cell.weight_ih @ x_d + cell.bias_ih
    r = torch.sigmoid(gi[:n] + cell.bias_hh[:n])
    z = torch.sigmoid(gi[n : 2 * n] + cell.bias_hh[n : 2 * n])
    h_star = torch.tanh(gi[2 * n :] + r * cell.bias_hh[2 * n :])
    return h_star, z


def zero_recurrent_lstm(n_hidden: int, n_input: int, seed: int = 0) -> CellModel:
    torch.manual_seed(seed)
    model = CellModel(nn.LSTMCell(n_input, n_hidden), n_hidden)
    with torch.no_grad():
        model.cell.weight_hh.zero_()
        model.cell.weight_ih.mul_(0.5)  # gates near 1/2: |c*| stays moderate, tanh(c*) unsaturated
    return model


def lstm_fixed_point(model: CellModel, x_d: torch.Tensor):
    """``(h*, c*, eigenvalues)`` of an LSTM whose recurrent weights are zero.

    Gates depend on ``x`` only, so ``c* = i g / (1 - f)``, ``h* = o tanh(c*)``; the Jacobian is
    block triangular with eigenvalues ``f`` (cell block) and 0 (hidden block).
    """
    cell = model.cell
    gates = cell.weight_ih @ x_d + cell.bias_ih + cell.bias_hh
    i, f, g, o = gates.chunk(4)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_star = i * g / (1 - f)
    h_star = o * torch.tanh(c_star)
    return h_star, c_star, torch.cat([f, torch.zeros_like(f)])


class TanhRNN(StepwiseModel):
    """``h' = tanh(W h + U x + b)`` with a hand-set readout; the state is ``h [B, N]``."""

    def __init__(self, w_nxn: torch.Tensor, u_nxd: torch.Tensor, b_n: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w_nxn)
        self.u = nn.Parameter(u_nxd)
        self.b = nn.Parameter(b_n)
        self.head = nn.Linear(w_nxn.shape[0], N_OUTPUTS)

    def initial_state(self, batch_size: int):
        return self.w.new_zeros(batch_size, self.w.shape[0])

    def transition(self, state, x_bxd):
        return torch.tanh(state @ self.w.T + x_bxd @ self.u.T + self.b)

    def readout(self, state):
        return self.head(state)


def pitchfork_rnn(gain: float, n_input: int = 3) -> TanhRNN:
    """Two units: ``h1' = tanh(gain h1 + 0.1)``, ``h2' = tanh(0.5 h2)``; inputs ignored.

    ``gain = 0.5``: one fixed point, ``h1 ~ +0.2``. ``gain = 2``: two stable fixed points,
    ``h1 ~ +0.96`` and ``h1 ~ -0.95`` (and an unstable one between). The readout answers
    class 0 for ``h1 > 0`` and class 1 for ``h1 < 0``, never null.
    """
    w = torch.tensor([[gain, 0.0], [0.0, 0.5]])
    model = TanhRNN(w, torch.zeros(2, n_input), torch.tensor([0.1, 0.0]))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-100.0)
        model.head.bias[0] = -1.0  # null only when |h1| is tiny
        model.head.weight[1, 0] = 10.0
        model.head.weight[2, 0] = -10.0
        model.head.bias[1] = 0.0
        model.head.bias[2] = 0.0
    return model


def trigger_reader(obs_dim: int, memory: float = 0.0) -> LinearRNN:
    """Unit 0 copies the trigger; the readout answers class 0 when unit 0 is on, else null.

    Unit 1 holds ``memory`` of itself plus the mean pixel; unit 2 is constant 0.25.
    """
    a = torch.zeros(3, 3)
    a[1, 1] = memory
    b = torch.zeros(3, obs_dim)
    b[0, -1] = 1.0
    b[1, :-1] = 1.0 / (obs_dim - 1)
    model = LinearRNN(a, b, torch.tensor([0.0, 0.0, 0.25]))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-10.0)
        model.head.bias[0] = 0.0  # null
        model.head.weight[1, 0] = 5.0  # class 0 when the trigger came
        model.head.bias[1] = 0.0
    return model
