"""Closed-form step Jacobians of the built-in cells (GRU, LSTM, vanilla RNN).

Every gate of a cell is an elementwise function of ``W_hh h``, so the Jacobian ``dF/ds`` of one
step is a sum of row-scaled copies of the recurrent weight blocks: ``O(N^2)`` work per state,
against ``O(N^3)`` for the ``N`` vector-Jacobian products of ``vmap(jacrev)``. For a 200-unit GRU
this makes a Jacobian about as cheap as solving with it, which is what the Newton search does
with it (`analysis.search`). With ``gi = W_ih u + b_ih`` (fixed input ``u``) and
``gh = W_hh h + b_hh`` split into gate blocks:

* GRU, ``h' = (1 - z) n + z h``::

      dh'/dh = diag((1 - z)(1 - n^2) gh_n r(1 - r)) W_hr + diag((h - n) z(1 - z)) W_hz
             + diag((1 - z)(1 - n^2) r) W_hn + diag(z)

* LSTM, state ``(h, c)``, ``c' = sf c + si tg``, ``h' = so tanh(c')`` (``s* = sigmoid``,
  ``tg = tanh(g)``)::

      dc'/dh = diag(c sf(1 - sf)) W_hf + diag(tg si(1 - si)) W_hi + diag(si(1 - tg^2)) W_hg
      dc'/dc = diag(sf)
      dh'/dh = diag(tanh(c') so(1 - so)) W_ho + diag(so(1 - tanh(c')^2)) dc'/dh
      dh'/dc = diag(so(1 - tanh(c')^2) sf)

* vanilla RNN, ``h' = tanh(gi + gh)``: ``dh'/dh = diag(1 - h'^2) W_hh``.

The authors' cells (`agents.authors.AuthorsModel`, row-vector weights ``h U``, so the column
form uses ``U^T``):

* LSTM: the equations of PyTorch's LSTM (same gate order), with ``W_hh = U^T`` and the biases
  in ``gi``: the LSTM formula above.
* GRU, ``h' = (1 - z) h + z n``, ``n = tanh(x Wh + (r h) Uh + bh)``: the reset gate acts
  before ``Uh``, so one term is a product of two recurrent blocks (``O(N^3)`` per state, one
  batched matmul)::

      dh'/dh = diag(1 - z) + diag((n - h) z(1 - z)) Uz^T
             + diag(z(1 - n^2)) Uh^T [diag(r) + diag(h r(1 - r)) Ur^T]

`closed_form_jacobian` recognises `agents.models.RecurrentModel`, its `FeatureInputModel` view
(whose ``transition`` takes the features) and `agents.authors.AuthorsModel`; any other model
(an ensemble, a subclass that overrides the step) returns None and the analysis falls back to
automatic differentiation. The tests check both against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

StepJacobian = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(states_bxn, x_1xd) -> (F(s) [B, N], dF/ds [B, N, N])`` on flat states."""


def closed_form_jacobian(model: nn.Module) -> StepJacobian | None:
    """The closed-form ``F`` and ``dF/ds`` of ``model``'s ``transition``, or None when the model
    is not a plain built-in cell (its ``transition`` or ``cell_step`` overridden, other
    architectures)."""
    from agents.authors import AuthorsModel
    from agents.models import RecurrentModel
    from analysis.features import FeatureInputModel

    if isinstance(model, AuthorsModel):
        return _authors_jacobian(model)
    if type(model) is FeatureInputModel:
        inner, encode = model.inner, None  # its transition takes the cell's input itself
    else:
        inner = model
        encode = getattr(model, "encode", None)
    if not isinstance(inner, RecurrentModel):
        return None
    kind = type(inner)
    if kind.transition is not RecurrentModel.transition or kind.cell_step is not (
        RecurrentModel.cell_step
    ):
        return None
    rnn = inner.rnn
    weight_hh, bias_hh = rnn.weight_hh_l0, rnn.bias_hh_l0
    weight_ih, bias_ih = rnn.weight_ih_l0, rnn.bias_ih_l0
    step = _STEPS[inner.cell]
    n_hidden = inner.hidden_size

    def step_and_jacobian(
        states_bxn: torch.Tensor, x_1xd: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            u_1xd = encode(x_1xd) if encode is not None else x_1xd
            gi_1xg = nn.functional.linear(u_1xd, weight_ih, bias_ih)
            h_bxn = states_bxn[:, :n_hidden]
            gh_bxg = nn.functional.linear(h_bxn, weight_hh, bias_hh)
            return step(states_bxn, gi_1xg, gh_bxg, weight_hh)

    return step_and_jacobian


def _scaled(rows_bxn: torch.Tensor, weight_nxn: torch.Tensor) -> torch.Tensor:
    """``diag(rows) W`` for each state: ``[B, N, N]``."""
    return rows_bxn[:, :, None] * weight_nxn[None]


def _add_diagonal(matrix_bxnxn: torch.Tensor, diagonal_bxn: torch.Tensor) -> torch.Tensor:
    matrix_bxnxn.diagonal(dim1=1, dim2=2).add_(diagonal_bxn)
    return matrix_bxnxn


def _gru(h_bxn, gi_1xg, gh_bxg, weight_hh):
    gi_r, gi_z, gi_n = gi_1xg.chunk(3, dim=-1)
    gh_r, gh_z, gh_n = gh_bxg.chunk(3, dim=-1)
    w_r, w_z, w_n = weight_hh.chunk(3, dim=0)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    through_n = (1 - z) * (1 - n * n)
    jacobian = _scaled(through_n * gh_n * r * (1 - r), w_r)
    jacobian.addcmul_(((h_bxn - n) * z * (1 - z))[:, :, None], w_z)
    jacobian.addcmul_((through_n * r)[:, :, None], w_n)
    return n + z * (h_bxn - n), _add_diagonal(jacobian, z)


def _lstm(states_bxn, gi_1xg, gh_bxg, weight_hh):
    n = weight_hh.shape[1]
    c = states_bxn[:, n:]
    i, f, g, o = (gi_1xg + gh_bxg).chunk(4, dim=-1)
    w_i, w_f, w_g, w_o = weight_hh.chunk(4, dim=0)
    si, sf, tg, so = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = sf * c + si * tg
    tc = torch.tanh(c_next)
    through_c = so * (1 - tc * tc)
    dc_dh = _scaled(c * sf * (1 - sf), w_f)
    dc_dh.addcmul_((tg * si * (1 - si))[:, :, None], w_i)
    dc_dh.addcmul_((si * (1 - tg * tg))[:, :, None], w_g)
    dh_dh = _scaled(tc * so * (1 - so), w_o).addcmul_(through_c[:, :, None], dc_dh)
    jacobian = states_bxn.new_zeros(states_bxn.shape[0], 2 * n, 2 * n)
    jacobian[:, :n, :n] = dh_dh
    jacobian[:, n:, :n] = dc_dh
    jacobian[:, :n, n:].diagonal(dim1=1, dim2=2).copy_(through_c * sf)
    jacobian[:, n:, n:].diagonal(dim1=1, dim2=2).copy_(sf)
    return torch.cat([so * tc, c_next], dim=1), jacobian


def _rnn(h_bxn, gi_1xg, gh_bxg, weight_hh):
    h_next = torch.tanh(gi_1xg + gh_bxg)
    return h_next, _scaled(1 - h_next * h_next, weight_hh)


_STEPS: dict[str, Any] = {"gru": _gru, "lstm": _lstm, "rnn": _rnn}


def _authors_jacobian(model: nn.Module) -> StepJacobian | None:
    """The closed form for an `agents.authors.AuthorsModel` whose step is not overridden."""
    from agents.authors import AuthorsModel

    if type(model).transition is not AuthorsModel.transition:
        return None
    weight_x, weight_h, bias = model.weight_x, model.weight_h, model.bias
    cell = model.cell

    def step_and_jacobian(
        states_bxn: torch.Tensor, x_1xd: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            xw_1xg = x_1xd @ weight_x + bias
            if cell == "gru":
                return _authors_gru(states_bxn, xw_1xg, weight_h)
            n = weight_h.shape[0]
            gh_bxg = states_bxn[:, :n] @ weight_h
            return _lstm(states_bxn, xw_1xg, gh_bxg, weight_h.t())

    return step_and_jacobian


def _authors_gru(h_bxn, xw_1xg, weight_h_nxg):
    n = h_bxn.shape[1]
    x_r, x_z, x_h = xw_1xg.split(n, dim=-1)
    h_r, h_z = (h_bxn @ weight_h_nxg[:, : 2 * n]).split(n, dim=-1)
    u_r_t, u_z_t, u_h_t = (block.t() for block in weight_h_nxg.split(n, dim=1))
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    candidate = torch.tanh(x_h + (r * h_bxn) @ u_h_t.t())
    b = h_bxn.shape[0]
    # d(candidate pre-activation)/dh = Uh^T diag(r) + (Uh^T diag(h r(1 - r))) Ur^T
    through_r = (u_h_t[None] * (h_bxn * r * (1 - r))[:, None, :]).reshape(b * n, n) @ u_r_t
    d_pre = through_r.reshape(b, n, n).add_(u_h_t[None] * r[:, None, :])
    jacobian = d_pre.mul_((z * (1 - candidate * candidate))[:, :, None])
    jacobian.addcmul_(((candidate - h_bxn) * z * (1 - z))[:, :, None], u_z_t)
    return (1 - z) * h_bxn + z * candidate, _add_diagonal(jacobian, 1 - z)
