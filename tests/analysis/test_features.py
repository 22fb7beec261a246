"""Front-end (CNN) models: the slow-point input is the mean of the CNN features (docs/paper.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.frontend import ConvFrontend
from agents.models import RecurrentModel, build_model
from analysis.backtrack import backtrack
from analysis.centers import class_centers
from analysis.features import FeatureInputModel, analysis_view, mean_feature_input
from analysis.protocol import FlatDynamics
from analysis.slow_points import find_slow_points
from memenv import DelayedRecallTask, TaskConfig


@pytest.fixture
def task(cifar_root) -> DelayedRecallTask:
    return DelayedRecallTask(TaskConfig(dataset="cifar10"), root=cifar_root)


def _cnn(seed: int = 0) -> RecurrentModel:
    """The CIFAR-10 architecture, narrowed so that the tests stay fast."""
    torch.manual_seed(seed)
    frontend = ConvFrontend((3, 32, 32), channels=4, fc_sizes=(16, 8))
    return RecurrentModel("gru", 3073, 6, frontend=frontend).eval()


@pytest.fixture
def cnn_model() -> RecurrentModel:
    return _cnn()


def test_mean_features_are_the_mean_of_the_encoded_noise_frames(cnn_model, task):
    mean_u = mean_feature_input(cnn_model, task, n_frames=40, seed=3, batch_size=15)
    # the same frames, drawn the same way, encoded one batch at a time
    rng = torch.Generator().manual_seed(3)
    parts = []
    for b in (15, 15, 10):
        frames = task.noise((b, task.obs_dim), rng)
        frames[:, -1] = 0.0
        with torch.no_grad():
            parts.append(cnn_model.encode(frames).double())
    np.testing.assert_allclose(mean_u, torch.cat(parts).mean(dim=0).numpy(), rtol=1e-6)
    assert mean_u.shape == (cnn_model.input_size,) and mean_u[-1] == 0.0
    # a CNN is nonlinear: its response to the mean frame is not the mean response
    with torch.no_grad():
        of_mean = cnn_model.encode(torch.as_tensor(task.mean_frame)[None]).double()[0].numpy()
    assert np.abs(of_mean - mean_u).max() > 1e-3


def test_the_view_of_a_front_end_model_steps_the_cell_on_features(cnn_model, task):
    view, input_u = analysis_view(cnn_model, task, n_frames=20)
    assert isinstance(view, FeatureInputModel)
    state = torch.randn(4, 6)
    u = torch.as_tensor(input_u, dtype=torch.float32).expand(4, -1)
    torch.testing.assert_close(view.transition(state, u), cnn_model.cell_step(state, u))
    obs = torch.randn(2, 3, task.obs_dim)
    torch.testing.assert_close(view(obs)[0], cnn_model(obs)[0])


def test_a_model_without_front_end_keeps_the_mean_frame(task):
    model = build_model(cell="gru", hidden_size=6, dataset="cifar10", frontend="none")
    view, input_x = analysis_view(model, task)
    assert view is model
    np.testing.assert_array_equal(input_x, task.mean_frame)
    with pytest.raises(ValueError, match="no front-end"):
        FeatureInputModel(model)


def test_slow_points_of_a_cnn_model_are_fixed_points_of_the_cell_under_mean_features(
    cnn_model, task
):
    view, input_u = analysis_view(cnn_model, task, n_frames=30)
    centers = class_centers(view, task, n_per_class=2, n_classes=3, input_x=input_u)
    points = find_slow_points(view, centers.states[:4], input_u, eigenvalues=False)
    assert points.input_x.shape == (cnn_model.input_size,)
    # check with the inner model's own cell in float64: F(h*, u_bar) = h*
    dynamics = FlatDynamics(view)
    u = torch.as_tensor(input_u)[None]
    h = torch.as_tensor(points.states)
    residual = dynamics.model.inner.cell_step(h, u.expand(len(h), -1)) - h
    assert float(residual.square().sum(dim=1).max()) < 1e-12


def test_backtracking_recomputes_the_feature_input_per_checkpoint(task):
    early, late = _cnn(0), _cnn(1)
    seen = []

    def view(net):
        seen.append(net)
        return analysis_view(net, task, n_frames=20)

    start = np.zeros((2, 6))
    lineage = backtrack([(0, early), (5, late)], start, None, view=view)
    assert seen == [late, early]  # last checkpoint first, each with its own input
    assert np.all(lineage.speeds < 1e-12)
