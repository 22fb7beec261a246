"""find_slow_points on networks whose fixed points are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from analysis_toy_models import (
    LinearRNN,
    gru_fixed_point,
    lstm_fixed_point,
    pitchfork_rnn,
    zero_recurrent_gru,
    zero_recurrent_lstm,
)

from analysis.slow_points import SlowPoints, deduplicate, find_slow_points

N_INPUT = 5
# The paper's Adam, with a larger rate and an early stop so the tests stay fast.
ADAM = {"iterations": 4000, "lr": 1e-2, "lr_drop_at": 1000, "speed_tol": 1e-18}


def _input(seed: int = 0) -> torch.Tensor:
    x = torch.rand(N_INPUT, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[-1] = 0.0  # the trigger channel
    return x


def _near(point: torch.Tensor, n: int, radius: float, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, point.numel(), generator=gen, dtype=torch.float64) * 2 - 1
    return point.detach() + radius * noise


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_gru_with_zero_recurrent_weights(method):
    model = zero_recurrent_gru(8, N_INPUT).double()
    x = _input()
    h_star, z = gru_fixed_point(model, x)
    starts = _near(h_star, 4, 0.5 if method == "newton" else 0.1)
    options = ADAM if method == "adam" else {}
    points = find_slow_points(model, starts, x, method, **options)
    assert np.abs(points.states - h_star.detach().numpy()).max() < 1e-6
    assert points.converged.all()
    assert (points.speeds < 1e-12).all()
    # dF/dh = diag(z): eigenvalues are the update gates
    want = np.sort(z.detach().numpy())
    assert np.abs(np.sort(points.eigenvalues.real, axis=1) - want).max() < 1e-9
    assert np.abs(points.eigenvalues.imag).max() < 1e-12
    assert points.stable.all()


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_linear_rnn(method):
    gen = torch.Generator().manual_seed(3)
    n = 6
    a = 0.3 * torch.randn(n, n, generator=gen, dtype=torch.float64)
    b = 0.2 * torch.randn(n, N_INPUT, generator=gen, dtype=torch.float64)
    bias = 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    model = LinearRNN(a, b, bias).double()
    x = _input()
    h_star = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - a, b @ x + bias)
    starts = _near(h_star, 3, 0.5 if method == "newton" else 0.1)
    options = ADAM if method == "adam" else {}
    points = find_slow_points(model, starts, x, method, clip=None, **options)
    assert np.abs(points.states - h_star.detach().numpy()).max() < 1e-6
    assert points.converged.all()
    got = np.sort_complex(points.eigenvalues[0])
    want = np.sort_complex(torch.linalg.eigvals(a).numpy())
    assert np.abs(got - want).max() < 1e-9
    if method == "newton":  # exact Newton on a linear map: one step
        assert (points.iterations <= 5).all()


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_lstm_with_zero_recurrent_weights(method):
    model = zero_recurrent_lstm(6, N_INPUT).double()
    x = _input()
    h_star, c_star, gates = lstm_fixed_point(model, x)
    star = torch.cat([h_star, c_star])
    starts = _near(star, 3, 0.3 if method == "newton" else 0.05)
    options = ADAM if method == "adam" else {}
    points = find_slow_points(model, starts, x, method, **options)
    assert points.n_state == 12
    assert np.abs(points.states - star.detach().numpy()).max() < 1e-6
    assert points.converged.all()
    # block-triangular Jacobian: eigenvalues f (cell block) and 0 (hidden block)
    want = np.sort(gates.detach().numpy())
    assert np.abs(np.sort(np.abs(points.eigenvalues), axis=1) - want).max() < 1e-9


def test_newton_is_fast_and_float32_models_are_converted():
    model = zero_recurrent_gru(16, N_INPUT)  # float32 parameters
    x = _input()
    h_star, _ = gru_fixed_point(model.double(), x)
    model = model.float()
    starts = torch.rand(10, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    points = find_slow_points(model, starts, x.float())
    assert points.states.dtype == np.float64
    assert np.abs(points.states - h_star.detach().numpy()).max() < 1e-6
    assert (points.iterations <= 10).all()


def test_readout_label_is_the_answer_after_a_trigger_step():
    model = pitchfork_rnn(gain=2.0, n_input=N_INPUT).double()
    starts = torch.tensor([[0.9, 0.3], [-0.9, -0.2], [0.5, 0.0]], dtype=torch.float64)
    points = find_slow_points(model, starts, torch.zeros(N_INPUT), initial_labels=[0, 1, 0])
    assert points.labels.tolist() == [0, 1, 0]
    assert points.initial_labels.tolist() == [0, 1, 0]
    assert points.states[0, 0] > 0.9 and points.states[1, 0] < -0.9
    # the vocabulary masks inactive classes: with one class active, class 1 is impossible
    one_class = find_slow_points(model, starts, torch.zeros(N_INPUT), n_classes=1)
    assert set(one_class.labels.tolist()) <= {-1, 0}
    # null answer where the readout says so
    silent = pitchfork_rnn(gain=2.0, n_input=N_INPUT).double()
    with torch.no_grad():
        silent.head.bias[0] = 1000.0
    assert (find_slow_points(silent, starts, torch.zeros(N_INPUT)).labels == -1).all()


def test_unstable_fixed_point_is_found_and_flagged():
    model = pitchfork_rnn(gain=2.0, n_input=N_INPUT).double()
    start = torch.tensor([[-0.1, 0.0]], dtype=torch.float64)
    points = find_slow_points(model, start, torch.zeros(N_INPUT))
    h1 = points.states[0, 0]
    bias = model.b[0].item()  # 0.1 in float32
    assert abs(np.tanh(2 * h1 + bias) - h1) < 1e-12
    assert not points.stable[0] and points.spectral_radius[0] > 1


def test_deduplicate_keeps_the_slowest_of_each_cluster():
    model = pitchfork_rnn(gain=2.0, n_input=N_INPUT).double()
    starts = torch.tensor(
        [[0.5, 0.1], [0.9, -0.3], [-0.5, 0.2], [-0.8, 0.0], [0.7, 0.0]], dtype=torch.float64
    )
    points = find_slow_points(model, starts, torch.zeros(N_INPUT), eigenvalues=False)
    unique, cluster = deduplicate(points, tol=1e-3)
    assert len(unique) == 2
    assert cluster.tolist() == [cluster[0]] * 2 + [cluster[2]] * 2 + [cluster[0]]
    assert sorted(unique.labels.tolist()) == [0, 1]
    assert unique.label_counts() == {0: 1, 1: 1}
    # representatives are the slowest members
    for m in range(len(unique)):
        assert unique.speeds[m] == points.speeds[cluster == m].min()
    with pytest.raises(ValueError, match="tol"):
        deduplicate(points, tol=-1)


def test_save_load_round_trip(tmp_path):
    model = zero_recurrent_lstm(3, N_INPUT).double()
    points = find_slow_points(model, torch.zeros(2, 6), _input(), initial_labels=[4, 7])
    path = tmp_path / "points.npz"
    points.save(path)
    back = SlowPoints.load(path)
    for name in ("states", "initial_states", "speeds", "converged", "iterations", "labels"):
        assert np.array_equal(getattr(back, name), getattr(points, name))
    assert np.array_equal(back.eigenvalues, points.eigenvalues)
    assert back.initial_labels.tolist() == [4, 7]
    assert (back.method, back.n_classes, back.speed_tol) == ("newton", 10, points.speed_tol)
    with np.load(path) as archive:
        assert {"states", "speeds", "eigenvalues", "labels", "input_x"} <= set(archive.files)
    no_eig = points.subset([0])
    no_eig.eigenvalues = None
    no_eig.save(path)
    assert SlowPoints.load(path).eigenvalues is None


def test_validation():
    model = zero_recurrent_gru(4, N_INPUT)
    with pytest.raises(ValueError, match="method"):
        find_slow_points(model, torch.zeros(1, 4), _input(), method="sgd")
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        find_slow_points(model, torch.zeros(1, 5), _input())
    with pytest.raises(ValueError, match="NaN"):
        find_slow_points(model, torch.full((1, 4), float("nan")), _input())
    base = dict(
        states=np.zeros((2, 3)), initial_states=np.zeros((2, 3)), speeds=np.zeros(2),
        converged=np.ones(2, bool), iterations=np.zeros(2), labels=np.zeros(2),
        initial_labels=np.zeros(2), eigenvalues=None, input_x=np.zeros(4), method="adam",
    )  # fmt: skip
    SlowPoints(**base)
    with pytest.raises(ValueError, match="speeds"):
        SlowPoints(**{**base, "speeds": np.zeros(3)})
    with pytest.raises(ValueError, match="eigenvalues"):
        SlowPoints(**{**base, "eigenvalues": np.zeros((2, 2))})


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_searches_stay_in_the_clip_box(method):
    # h' = 0.9 h + 0.1 has its fixed point on the bound (h* = 1) and q keeps falling towards it
    a = torch.tensor([[0.9, 0.0], [0.0, 0.5]], dtype=torch.float64)
    bias = torch.tensor([0.1, 0.0], dtype=torch.float64)
    model = LinearRNN(a, torch.zeros(2, N_INPUT, dtype=torch.float64), bias).double()
    starts = torch.tensor([[0.2, 0.5], [0.999999, -0.3], [1.0, 0.0]], dtype=torch.float64)
    options = ADAM if method == "adam" else {}
    points = find_slow_points(model, starts, _input(), method, **options)
    assert (np.abs(points.states) <= 1.0).all()
    assert np.abs(points.states - [1.0, 0.0]).max() < 1e-6
    assert (points.speeds < 1e-12).all()
    unclipped = find_slow_points(model, starts * 0.5, _input(), clip=None)
    assert np.abs(unclipped.states - [1.0, 0.0]).max() < 1e-9


def test_lstm_raw_cell_speed_finds_the_same_fixed_point():
    model = zero_recurrent_lstm(6, N_INPUT).double()
    x = _input()
    h_star, c_star, _ = lstm_fixed_point(model, x)
    starts = _near(torch.cat([h_star, c_star]), 3, 0.5)
    points = find_slow_points(model, starts, x, cell_speed="raw")
    assert np.abs(points.states - torch.cat([h_star, c_star]).detach().numpy()).max() < 1e-6
