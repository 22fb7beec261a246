"""The state-space architectures of agents.arch_ssm: protocol, equations, a bench run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal
from scipy.special import eval_sh_legendre
from torch.nn import functional

from agents.arch_ssm import ARCHITECTURES, LMUModel, S4DModel, SelectiveSSMModel
from memenv.errors import UsageError
from studies.bench import BenchArchitecture, has_fixed_state, run_one

OBS_DIM = 785


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[name](obs_dim=kwargs.pop("obs_dim", OBS_DIM), **kwargs)


# forward in windows == one pass == transition + readout: tests/bench/test_architectures.py,
# over every built-in


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_state_has_a_fixed_size_and_follows_the_dtype(name):
    model = build(name, hidden_size=8)
    assert has_fixed_state(model, OBS_DIM)
    state = model.double().initial_state(2)
    assert isinstance(state, torch.Tensor) and state.dtype == torch.float64
    sizes = {"lmu": 8 + 8, "s4d": 8 * 16 + 8, "mamba": 8 * 16 + 8}  # documented defaults
    assert state.shape == (2, sizes[name])


@pytest.mark.parametrize("name", list(ARCHITECTURES))
@pytest.mark.parametrize(("kwargs", "shown"), [({"hidden_size": -3}, "-3"), ({"obs_dim": 1}, "1")])
def test_bad_sizes_are_refused(name, kwargs, shown):
    with pytest.raises(UsageError, match=f"got .*{shown}"):
        build(name, **{"hidden_size": 8, **kwargs})


@pytest.mark.parametrize(
    ("name", "kwargs", "shown"),
    [
        ("lmu", {"order": -2}, "-2"),
        ("lmu", {"theta": -5.0}, "-5.0"),
        ("lmu", {"theta": math.inf}, "inf"),
        ("s4d", {"d_state": 7}, "7"),
        ("s4d", {"dt_min": 0.5, "dt_max": 0.25}, "0.5, 0.25"),
        ("mamba", {"d_state": -4}, "-4"),
        ("mamba", {"dt_rank": -1}, "-1"),
        ("mamba", {"dt_min": 0.0}, "0.0"),
    ],
)
def test_bad_model_arguments_are_refused(name, kwargs, shown):
    with pytest.raises(UsageError) as error:
        build(name, hidden_size=8, **kwargs)
    assert shown in str(error.value)


# ------------------------------------------------------------------------------- LMU
def paper_lmu_matrices(order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of Voelker et al. (2019), written out entry by entry."""
    a = np.zeros((order, order))
    b = np.zeros((order, 1))
    for i in range(order):
        b[i, 0] = (2 * i + 1) * (-1) ** i
        for j in range(order):
            a[i, j] = (2 * i + 1) * (-1 if i < j else (-1) ** (i - j + 1))
    return a, b


def scipy_zoh(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """scipy's zero-order hold, step 1, of ``theta dm/dt = A m + B u``: ``(A_bar, B_bar [d, 1])``."""
    a, b = paper_lmu_matrices(order)
    a_bar, b_bar, *_ = signal.cont2discrete(
        (a / theta, b / theta, np.eye(order), np.zeros((order, 1))), dt=1.0, method="zoh"
    )
    return a_bar, b_bar


def memory_trace(model: LMUModel, obs: torch.Tensor) -> np.ndarray:
    """``m_t`` after each step, ``[T, d]``, of one trial ``obs [T, D]``."""
    state = model.initial_state(1)
    trace = []
    with torch.no_grad():
        for x in obs:
            state = model.transition(state, x[None])
            trace.append(state[0, model.hidden_size :].double().numpy())
    return np.stack(trace)


def lmu_memory_only(order: int, theta: float) -> LMUModel:
    """An LMU with ``u_t = x_t[0]``: ``e_x = (1, 0, 0)``, ``e_h = 0`` and ``e_m = 0`` (its init)."""
    model = LMUModel(obs_dim=3, hidden_size=2, order=order, theta=theta)
    with torch.no_grad():
        model.recurrent.weight.zero_()
        model.input.weight[model.hidden_size].copy_(torch.tensor([1.0, 0.0, 0.0]))
    return model


def test_lmu_memory_is_the_zero_order_hold_of_the_papers_system():
    """After a unit impulse, ``m_k = A_bar^k B_bar``, with ``(A_bar, B_bar)`` scipy's zero-order
    hold of ``theta dm/dt = A m + B u``."""
    order, theta = 6, 7.0
    model = lmu_memory_only(order, theta)
    obs = torch.zeros(12, 3)
    obs[0, 0] = 1.0
    a_bar, b_bar = scipy_zoh(order, theta)
    expected = np.stack([np.linalg.matrix_power(a_bar, k) @ b_bar[:, 0] for k in range(12)])
    np.testing.assert_allclose(memory_trace(model, obs), expected, atol=1e-5)


def test_lmu_memory_holds_a_window_of_theta_steps():
    """The memory's defining property: the shifted Legendre polynomials decode the input delayed
    by any ``theta' <= theta`` from it. A step input that began ``theta / 2`` steps ago reads 1
    inside the last ``theta / 2`` steps and 0 before."""
    order, theta = 12, 40.0
    model = lmu_memory_only(order, theta)
    obs = torch.zeros(20, 3)
    obs[:, 0] = 1.0
    m = memory_trace(model, obs)[-1]
    ratios = np.array([0.1, 0.3, 0.7, 0.9])  # theta' / theta
    legendre = np.stack([eval_sh_legendre(i, ratios) for i in range(order)], axis=1)
    np.testing.assert_allclose(legendre @ m, [1, 1, 0, 0], atol=0.1)


def test_lmu_step_is_the_papers_equations():
    model = LMUModel(obs_dim=5, hidden_size=3, order=4, theta=10.0).double()
    n = model.hidden_size
    with torch.no_grad():
        model.memory_encoder.normal_()  # zero at init, which would hide its term
    g = torch.Generator().manual_seed(0)
    h, m, x = (torch.randn(2, k, generator=g, dtype=torch.float64) for k in (n, 4, 5))
    w_x, e_x = model.input.weight[:n], model.input.weight[n]
    w_h, e_h = model.recurrent.weight[:n], model.recurrent.weight[n]
    a_bar, b_bar = (torch.from_numpy(part).double() for part in scipy_zoh(4, 10.0))
    with torch.no_grad():
        u = x @ e_x + h @ e_h + m @ model.memory_encoder
        m_new = m @ a_bar.T + u[:, None] * b_bar[:, 0]
        h_new = torch.tanh(x @ w_x.T + h @ w_h.T + m_new @ model.memory_kernel.weight.T)
        stepped = model.transition(torch.cat([h, m], dim=1), x)
    torch.testing.assert_close(stepped, torch.cat([h_new, m_new], dim=1), atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------------------- S4D
def test_s4d_starts_from_s4d_lin():
    model = S4DModel(obs_dim=3, hidden_size=4, d_state=6, dt_min=0.01, dt_max=0.2)
    a = torch.complex(-torch.exp(model.a_log), model.a_im)
    expected = torch.complex(torch.full((3,), -0.5), math.pi * torch.arange(3.0))
    torch.testing.assert_close(a, expected.expand(4, 3))
    dt = torch.exp(model.dt_log)
    assert ((dt >= 0.01) & (dt <= 0.2)).all()


def test_s4d_impulse_response_is_the_discretised_kernel():
    """``y_k = 2 Re(sum_m C_m A_bar^k B_bar) u_0 + D u_k``, computed here in complex
    arithmetic, for two channels of two modes each, after an impulse at step 0."""
    model = S4DModel(obs_dim=3, hidden_size=2, d_state=4)
    with torch.no_grad():
        model.input.weight.zero_()
        model.input.weight[:, 0] = torch.tensor([1.0, 0.5])
        model.input.bias.zero_()
        model.dt_log.copy_(torch.log(torch.tensor([0.3, 0.7])))
        model.a_log.copy_(torch.log(torch.tensor([[0.5, 0.2], [1.0, 0.05]])))
        model.a_im.copy_(torch.tensor([[0.0, 2.0], [1.0, -3.0]]))
        model.skip.copy_(torch.tensor([0.25, -1.0]))
    obs = torch.zeros(1, 10, 3)
    obs[0, 0, 0] = 1.0
    states = []
    state = model.initial_state(1)
    with torch.no_grad():
        for x in obs[0]:
            state = model.transition(state, x[None])
            states.append(state[0, -2:])
    a = torch.complex(-torch.exp(model.a_log), model.a_im).detach().to(torch.complex128)
    dt = torch.exp(model.dt_log).detach().double()[:, None]
    c = torch.complex(model.c_re, model.c_im).detach().to(torch.complex128)
    a_bar = torch.exp(dt * a)
    b_bar = (a_bar - 1) / a
    u0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    expected = [
        2 * (c * a_bar**k * b_bar).sum(dim=-1).real * u0
        + (model.skip.detach() * u0 if k == 0 else 0)
        for k in range(10)
    ]
    torch.testing.assert_close(
        torch.stack(states).double(), torch.stack(expected), atol=1e-5, rtol=1e-5
    )


# ----------------------------------------------------------------------------- Mamba
def test_mamba_starts_from_s4d_real():
    model = SelectiveSSMModel(obs_dim=3, hidden_size=4, d_state=5)
    a = -torch.exp(model.a_log)
    torch.testing.assert_close(a, -torch.arange(1.0, 6.0).expand(4, 5))
    dt = functional.softplus(model.dt_proj.bias.detach())
    assert ((dt >= 0.001 - 1e-7) & (dt <= 0.1 + 1e-7)).all()


def mamba_by_hand(model: SelectiveSSMModel, h, x):
    """The equations of `SelectiveSSMModel` for one trial, scalar by scalar: ``h [E, N]``,
    ``x [D]`` -> ``(h_t [E, N], o_t [E])``."""
    e_size, n_size = model.hidden_size, model.d_state
    silu, softplus = functional.silu, functional.softplus
    v_z = model.input(x)
    branch, gate = silu(v_z[:e_size]), silu(v_z[e_size:])
    selected = model.select(branch)
    low = selected[: model.dt_rank]
    b = selected[model.dt_rank : model.dt_rank + n_size]
    c = selected[model.dt_rank + n_size :]
    delta = softplus(model.dt_proj(low))
    a = -torch.exp(model.a_log)
    h_new = torch.empty(e_size, n_size, dtype=h.dtype)
    out = torch.empty(e_size, dtype=h.dtype)
    for e in range(e_size):
        for n in range(n_size):
            h_new[e, n] = torch.exp(delta[e] * a[e, n]) * h[e, n] + delta[e] * b[n] * branch[e]
        out[e] = (
            sum(c[n] * h_new[e, n] for n in range(n_size)) + model.skip[e] * branch[e]
        ) * gate[e]
    return h_new, out


def test_mamba_step_is_its_equations():
    model = SelectiveSSMModel(obs_dim=5, hidden_size=3, d_state=4, dt_rank=2).double()
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 4, generator=g, dtype=torch.float64)
    x = torch.randn(5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        h_new, out = mamba_by_hand(model, h, x)
        stepped = model.transition(
            torch.cat([h.flatten(), torch.zeros(3, dtype=torch.float64)])[None], x[None]
        )
    torch.testing.assert_close(stepped[0], torch.cat([h_new.flatten(), out]))


def test_mamba_input_sets_how_much_is_kept():
    """Selectivity: with nothing written (``B_t = 0``) the memory decays by
    ``exp(Delta(x) A)``, so an input with a larger step keeps less than one with a smaller step.

    Weights set so that ``Delta(0) = softplus(b_dt) = 0.05`` and ``Delta(2 * ones) ~ 1``."""
    model = SelectiveSSMModel(obs_dim=4, hidden_size=3, d_state=2, dt_rank=1).double()
    with torch.no_grad():
        model.input.weight[:3].fill_(0.5)  # v_t = 0.5 sum(x), so x' = silu(v) = 0 at x = 0
        model.input.bias.zero_()
        model.select.weight.zero_()  # B_t = C_t = 0
        model.select.weight[0].fill_(1.0)  # r_t = sum(x')
        model.dt_proj.weight.fill_(0.3)
        model.dt_proj.bias.fill_(math.log(math.expm1(0.05)))
    h = torch.ones(1, 3 * 2 + 3, dtype=torch.float64)
    kept, deltas = {}, {}
    with torch.no_grad():
        for value in (0.0, 2.0):
            x = torch.full((1, 4), value, dtype=torch.float64)
            kept[value] = model.transition(h, x)[0, :6].reshape(3, 2)
            branch = functional.silu(model.input(x)[0, :3])
            deltas[value] = functional.softplus(model.dt_proj(model.select(branch)[:1]))
    torch.testing.assert_close(deltas[0.0], torch.full((3,), 0.05, dtype=torch.float64))
    assert (deltas[2.0] > 0.5).all()
    a = -torch.exp(model.a_log.detach())
    for value in kept:
        torch.testing.assert_close(kept[value], torch.exp(deltas[value][:, None] * a))
    assert (kept[2.0] < kept[0.0] - 0.3).all()


# ------------------------------------------------------------------------------ bench
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_a_tiny_bench_run_trains_and_measures_the_anchor(name, tiny_protocol, tmp_path):
    spec = "agents.arch_ssm:" + ARCHITECTURES[name].__name__
    result = run_one(BenchArchitecture(name, spec), 0, tiny_protocol, tmp_path)
    assert result.status == "done"
    assert result.recurrent and result.anchor is not None
    assert len(result.anchor["speeds"]) == 10
