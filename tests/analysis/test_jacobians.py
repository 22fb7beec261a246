"""Closed-form Jacobians of the built-in cells against automatic differentiation."""

from __future__ import annotations

import pytest
import torch

from agents.architectures import LRUModel
from agents.authors import AuthorsModel
from agents.frontend import ConvFrontend
from agents.models import RecurrentModel
from analysis.features import FeatureInputModel
from analysis.jacobians import closed_form_jacobian
from analysis.protocol import FlatDynamics
from analysis.search import newton_search


def _pair(model, **options) -> tuple[FlatDynamics, FlatDynamics]:
    closed = FlatDynamics(model, **options)
    automatic = FlatDynamics(model, closed_form=False, **options)
    assert closed.step_jacobian is not None and automatic.step_jacobian is None
    return closed, automatic


MODELS = [(RecurrentModel, cell) for cell in ("gru", "lstm", "rnn")] + [
    (AuthorsModel, cell) for cell in ("gru", "lstm")
]


@pytest.mark.parametrize(("family", "cell"), MODELS, ids=[f"{f.__name__}-{c}" for f, c in MODELS])
@pytest.mark.parametrize("cell_speed", ["tanh", "raw"])
def test_closed_form_matches_autograd(family, cell, cell_speed):
    torch.manual_seed(0)
    closed, automatic = _pair(family(cell, 12, 7), cell_speed=cell_speed)
    assert closed.n_state == 7 * (2 if cell == "lstm" else 1)
    # large states: saturated gates and cells, where a wrong derivative term shows most
    states_bxn = 2.0 * torch.randn(6, closed.n_state, dtype=torch.float64)
    x_1xd = torch.randn(1, 12, dtype=torch.float64)
    r_closed, jr_closed = closed.residual_and_jacobian(states_bxn, x_1xd)
    r_auto, jr_auto = automatic.residual_and_jacobian(states_bxn, x_1xd)
    torch.testing.assert_close(r_closed, r_auto, rtol=0, atol=1e-12)
    torch.testing.assert_close(jr_closed, jr_auto, rtol=0, atol=1e-12)
    for of in ("transition", "residual"):
        torch.testing.assert_close(
            closed.jacobian(states_bxn, x_1xd, of=of, chunk_size=4),
            automatic.jacobian(states_bxn, x_1xd, of=of),
            rtol=0,
            atol=1e-12,
        )
    stepped, _ = closed.step_jacobian(states_bxn, x_1xd)
    torch.testing.assert_close(stepped, closed.step(states_bxn, x_1xd), rtol=0, atol=1e-14)


def test_closed_form_of_front_end_models_and_their_feature_view():
    torch.manual_seed(1)
    frontend = ConvFrontend((3, 32, 32), channels=2, fc_sizes=(8, 5))
    model = RecurrentModel("lstm", 3073, 4, frontend=frontend).eval()
    for view, width in ((model, 3073), (FeatureInputModel(model), 6)):
        closed, automatic = _pair(view)
        states_bxn = torch.randn(3, closed.n_state, dtype=torch.float64)
        x_1xd = torch.rand(1, width, dtype=torch.float64)
        torch.testing.assert_close(
            closed.jacobian(states_bxn, x_1xd),
            automatic.jacobian(states_bxn, x_1xd),
            rtol=0,
            atol=1e-12,
        )


def test_other_models_fall_back_to_autograd():
    class Overridden(RecurrentModel):
        def transition(self, state, x):
            return super().transition(state, 2 * x)

    assert closed_form_jacobian(LRUModel(obs_dim=12, hidden_size=8)) is None
    assert closed_form_jacobian(Overridden("gru", 12, 5)) is None
    assert FlatDynamics(Overridden("gru", 12, 5)).step_jacobian is None


@pytest.mark.parametrize("family", [RecurrentModel, AuthorsModel], ids=lambda f: f.__name__)
def test_newton_search_is_the_same_with_either_jacobian(family):
    torch.manual_seed(2)
    closed, automatic = _pair(family("gru", 12, 10))
    start_bxn = 0.5 * torch.randn(8, closed.n_state, dtype=torch.float64)
    x_1xd = torch.randn(1, 12, dtype=torch.float64)
    a = newton_search(closed, start_bxn, x_1xd, max_iterations=20)
    b = newton_search(automatic, start_bxn, x_1xd, max_iterations=20)
    torch.testing.assert_close(a.states_bxn, b.states_bxn, rtol=0, atol=1e-9)
    assert torch.equal(a.iterations_b, b.iterations_b)
