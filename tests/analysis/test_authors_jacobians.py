"""The analysis' view of the authors' models: when closed-form Jacobians apply (their
agreement with autograd is tested in test_jacobians.py), and what the search finds."""

from __future__ import annotations

import torch

from agents.authors import AuthorsEnsemble, AuthorsModel
from analysis.jacobians import closed_form_jacobian
from analysis.protocol import FlatDynamics


def _pair(model, **options) -> tuple[FlatDynamics, FlatDynamics]:
    closed = FlatDynamics(model, **options)
    automatic = FlatDynamics(model, closed_form=False, **options)
    assert closed.step_jacobian is not None and automatic.step_jacobian is None
    return closed, automatic


def test_other_authors_models_fall_back_to_autograd():
    class Overridden(AuthorsModel):
        def transition(self, state, x):
            return super().transition(state, 2 * x)

    assert closed_form_jacobian(Overridden("gru", 12, 5)) is None
    assert FlatDynamics(Overridden("lstm", 12, 5)).step_jacobian is None
    ensemble = AuthorsEnsemble.build([0, 1], cell="gru", hidden_size=4, dataset=None, obs_dim=6)
    assert closed_form_jacobian(ensemble) is None


def test_flat_dynamics_sees_h_and_c_of_the_authors_lstm():
    torch.manual_seed(3)
    model = AuthorsModel("lstm", 9, 4)
    dynamics = FlatDynamics(model)
    assert dynamics.n_state == 8 and dynamics.cell_mask_n.tolist() == [False] * 4 + [True] * 4
    states_bxn = torch.randn(3, 8, dtype=torch.float64)
    x_1xd = torch.randn(1, 9, dtype=torch.float64)
    h, c = states_bxn[:, :4], states_bxn[:, 4:]
    with torch.no_grad():
        h2, c2 = model.double().transition((h, c), x_1xd.expand(3, -1))
    torch.testing.assert_close(dynamics.step(states_bxn, x_1xd), torch.cat([h2, c2], dim=1))
