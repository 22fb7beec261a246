"""StateLayout and FlatDynamics: flat views of tensor and tuple states."""

from __future__ import annotations

import pytest
import torch
from analysis_toy_models import CellModel, zero_recurrent_gru, zero_recurrent_lstm
from torch import nn

from analysis.protocol import FlatDynamics, StateLayout


def test_tensor_state_round_trip():
    layout = StateLayout(torch.zeros(1, 5), torch.zeros(2, 5))
    states = torch.randn(3, 5)
    assert layout.n_state == 5
    assert not layout.has_cell_state
    assert torch.equal(layout.unflatten(layout.flatten(states)), states)


def test_pair_state_is_h_c_with_cell_coordinates_last():
    layout = StateLayout((torch.zeros(1, 4), torch.zeros(1, 4)), (torch.zeros(2, 4),) * 2)
    assert layout.n_state == 8
    assert layout.cell_mask_n.tolist() == [False] * 4 + [True] * 4
    h, c = torch.randn(3, 4), torch.randn(3, 4)
    flat = layout.flatten((h, c))
    assert torch.equal(flat, torch.cat([h, c], 1))
    back = layout.unflatten(flat)
    assert isinstance(back, tuple) and torch.equal(back[0], h) and torch.equal(back[1], c)


def test_batch_dimension_found_anywhere():
    # torch.nn.GRU keeps h as [layers, B, N]
    layout = StateLayout(torch.zeros(2, 1, 3), torch.zeros(2, 2, 3))
    state = torch.randn(2, 4, 3)
    flat = layout.flatten(state)
    assert flat.shape == (4, 6)
    assert torch.equal(flat[1], state[:, 1].reshape(-1))
    assert torch.equal(layout.unflatten(flat), state)


def test_nested_states_and_explicit_cell_leaves():
    b1 = [torch.zeros(1, 2), (torch.zeros(1, 3), torch.zeros(1, 1))]
    b2 = [torch.zeros(2, 2), (torch.zeros(2, 3), torch.zeros(2, 1))]
    layout = StateLayout(b1, b2, cell_state_leaves=[2])
    assert layout.n_state == 6
    assert layout.cell_mask_n.tolist() == [False] * 5 + [True]
    flat = torch.randn(4, 6)
    back = layout.unflatten(flat)
    assert isinstance(back, list) and isinstance(back[1], tuple)
    assert torch.equal(layout.flatten(back), flat)


def test_bad_states_raise():
    with pytest.raises(ValueError, match="batch dimension"):
        StateLayout(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(TypeError, match="tensor or a tuple"):
        StateLayout({"h": torch.zeros(1, 2)}, {"h": torch.zeros(2, 2)})
    layout = StateLayout(torch.zeros(1, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        layout.unflatten(torch.zeros(2, 4))


def test_flat_dynamics_step_matches_the_model_and_copies_it():
    model = zero_recurrent_lstm(6, 4)
    dynamics = FlatDynamics(model)
    assert dynamics.dtype == torch.float64 and dynamics.n_state == 12
    assert next(model.parameters()).dtype == torch.float32  # the user's model is untouched
    h, c = torch.randn(3, 6), torch.randn(3, 6)
    x = torch.rand(3, 4)
    want_h, want_c = model.cell(x, (h, c))
    got = dynamics.step(torch.cat([h, c], 1).double(), x.double())
    assert torch.allclose(got, torch.cat([want_h, want_c], 1).double(), atol=1e-6)


def test_speed_uses_tanh_on_cell_coordinates():
    model = zero_recurrent_lstm(3, 2)
    dynamics = FlatDynamics(model)
    states = torch.randn(4, 6, dtype=torch.float64)
    x = torch.rand(1, 2, dtype=torch.float64)
    stepped = dynamics.step(states, x)
    want = (stepped[:, :3] - states[:, :3]).square().sum(1) + (
        stepped[:, 3:].tanh() - states[:, 3:].tanh()
    ).square().sum(1)
    assert torch.allclose(dynamics.speed(states, x), want)


def test_jacobian_matches_finite_differences():
    model = CellModel(nn.GRUCell(3, 4), 4)
    dynamics = FlatDynamics(model)
    states = torch.rand(2, 4, dtype=torch.float64) - 0.5
    x = torch.rand(1, 3, dtype=torch.float64)
    jac = dynamics.jacobian(states, x, chunk_size=1)
    eps = 1e-6
    for j in range(4):
        bump = torch.zeros(4, dtype=torch.float64)
        bump[j] = eps
        numeric = (dynamics.step(states + bump, x) - dynamics.step(states - bump, x)) / (2 * eps)
        assert torch.allclose(jac[:, :, j], numeric, atol=1e-8)


def test_clip_leaves_cell_coordinates_alone():
    dynamics = FlatDynamics(zero_recurrent_lstm(2, 2))
    states = torch.tensor([[3.0, -3.0, 3.0, -3.0]], dtype=torch.float64)
    assert dynamics.clip(states, 1.0).tolist() == [[1.0, -1.0, 3.0, -3.0]]
    gru = FlatDynamics(zero_recurrent_gru(2, 2))
    assert gru.clip(states[:, :2], 1.0).tolist() == [[1.0, -1.0]]


def test_raw_cell_speed_option():
    model = zero_recurrent_lstm(3, 2)
    dynamics = FlatDynamics(model, cell_speed="raw")
    states = torch.randn(4, 6, dtype=torch.float64)
    x = torch.rand(1, 2, dtype=torch.float64)
    want = (dynamics.step(states, x) - states).square().sum(1)
    assert torch.allclose(dynamics.speed(states, x), want)
    with pytest.raises(ValueError, match="cell_speed"):
        FlatDynamics(model, cell_speed="log")
