"""Models: forward (fused kernels) agrees with transition/readout (explicit equations)."""

from __future__ import annotations

import pytest
import torch

from agents import (
    RecurrentAgent,
    RecurrentModel,
    build_model,
    model_from_spec,
    state_from_tensor,
    state_tensor,
)
from agents.frontend import ConvFrontend
from agents.protocol import check_agent


def _step_by_step(model, obs, state=None):
    state = model.initial_state(obs.shape[0]) if state is None else state
    logits = []
    for t in range(obs.shape[1]):
        state = model.transition(state, obs[:, t])
        logits.append(model.readout(state))
    return torch.stack(logits, dim=1), state


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_transition_matches_forward(cell):
    torch.manual_seed(0)
    model = build_model(cell, hidden_size=12, dataset=None, obs_dim=9)
    obs = torch.randn(4, 6, 9)
    logits, state = model(obs)
    stepped, state_stepped = _step_by_step(model, obs)
    assert logits.shape == (4, 6, 11)
    torch.testing.assert_close(stepped, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state_tensor(state_stepped), state_tensor(state), atol=1e-5, rtol=0)
    # continuing from a non-zero state agrees as well
    more = torch.randn(4, 3, 9)
    logits2, _ = model(more, state)
    stepped2, _ = _step_by_step(model, more, state)
    torch.testing.assert_close(stepped2, logits2, atol=1e-5, rtol=1e-5)


def test_lstm_state_is_h_and_c():
    model = build_model("lstm", hidden_size=5, dataset=None, obs_dim=4)
    h, c = model.initial_state(3)
    assert h.shape == c.shape == (3, 5)
    _, (h, c) = model(torch.randn(3, 2, 4))
    assert not torch.equal(h, c)
    flat = state_tensor((h, c))
    assert flat.shape == (3, 10)
    h2, c2 = state_from_tensor(flat, model.initial_state(1))
    assert torch.equal(h2, h) and torch.equal(c2, c)
    with pytest.raises(ValueError, match="size"):
        state_from_tensor(flat[:, :7], model.initial_state(1))


def test_transition_is_differentiable_in_state():
    model = build_model("gru", hidden_size=6, dataset=None, obs_dim=4)
    x = torch.randn(1, 4)
    jac = torch.func.jacrev(lambda h: model.transition(h[None], x)[0])(torch.zeros(6))
    assert jac.shape == (6, 6) and torch.isfinite(jac).all()


def test_cnn_frontend_cifar_and_trigger_bypass():
    torch.manual_seed(0)
    model = build_model("gru", hidden_size=7, dataset="cifar10")
    assert isinstance(model.frontend, ConvFrontend)
    assert model.obs_dim == 3073 and model.input_size == 1024 + 1
    frontend_params = sum(p.numel() for p in model.frontend.parameters())
    # 3 convs of 128 3x3 filters, then 2048 -> 2048 -> 1024
    expected = (3 * 9 * 128 + 128) + 2 * (128 * 9 * 128 + 128) + (2048 * 2048 + 2048)
    assert frontend_params == expected + (2048 * 1024 + 1024)
    obs = torch.rand(2, 3, 3073)
    obs[:, :, -1] = 0
    u = model.encode(obs)
    obs_trig = obs.clone()
    obs_trig[:, 1, -1] = 1
    u_trig = model.encode(obs_trig)
    assert torch.equal(u[..., :-1], u_trig[..., :-1])  # the CNN never sees the trigger
    assert torch.equal(u_trig[:, 1, -1], torch.ones(2))
    logits, _ = model(obs_trig)
    stepped, _ = _step_by_step(model, obs_trig)
    torch.testing.assert_close(stepped, logits, atol=1e-5, rtol=1e-5)


def test_build_model_sizes_and_errors():
    model = build_model("gru", 200, "mnist")
    assert model.obs_dim == 785 and model.frontend is None and model.hidden_size == 200
    assert model.initial_state(3).abs().sum() == 0
    with pytest.raises(ValueError, match="cell"):
        build_model("transformer", 8)
    with pytest.raises(ValueError, match="obs_dim"):
        build_model("gru", 8, "mnist", obs_dim=100)
    with pytest.raises(ValueError, match="frontend"):
        build_model("gru", 8, "mnist", frontend="resnet")


def test_spec_round_trip_and_protocol():
    model = build_model("lstm", 6, "cifar10")
    clone = model_from_spec(model.spec())
    assert isinstance(clone, RecurrentModel) and clone.spec() == model.spec()
    assert isinstance(model, RecurrentAgent)
    check_agent(model)
    with pytest.raises(TypeError, match="transition"):
        check_agent(torch.nn.GRU(3, 3))
