"""The built-in architectures follow the protocol; the plug-in route and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.architectures import BUILTIN, build_architecture, check_protocol, load_factory
from studies.bench import has_fixed_state

OBS_DIM = 785


@pytest.mark.parametrize("name", list(BUILTIN))
def test_forward_windows_and_transition_agree(name):
    """forward in windows with the carried state == one pass == transition + readout."""
    model = build_architecture(name, hidden_size=8, seed=0)
    obs = torch.randn(3, 9, OBS_DIM, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, _ = model(obs)
        first, state = model(obs[:, :4])
        rest, _ = model(obs[:, 4:], state)
        step_state = model.initial_state(3)
        stepped = []
        for t in range(obs.shape[1]):
            step_state = model.transition(step_state, obs[:, t])
            stepped.append(model.readout(step_state))
    assert whole.shape == (3, 9, 11)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(stepped, dim=1), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(BUILTIN))
def test_only_the_transformer_state_grows(name):
    model = build_architecture(name, hidden_size=8, seed=0)
    assert has_fixed_state(model, OBS_DIM) is (name != "transformer")


def test_transformer_remembers_through_its_cache():
    """The last answer depends on the first frame (memory), and the cache holds every step."""
    model = build_architecture("transformer", hidden_size=8, seed=0)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 5, OBS_DIM, generator=g)
    b = a.clone()
    b[:, 0] = torch.randn(2, OBS_DIM, generator=g)  # only the first frame differs
    with torch.no_grad():
        logits_a, state = model(a)
        logits_b, _ = model(b)
    assert state[1].shape == (2, 5, 8)  # layer 1 keys: one per step seen
    assert not torch.allclose(logits_a[:, -1], logits_b[:, -1])


def test_seed_makes_the_same_model():
    a = build_architecture("lru", hidden_size=8, seed=3)
    b = build_architecture("lru", hidden_size=8, seed=3)
    c = build_architecture("lru", hidden_size=8, seed=4)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.input_re.weight, c.input_re.weight)


def test_lru_stays_stable_and_mingru_gates_memory():
    lru = build_architecture("lru", hidden_size=16, seed=0)
    lam_re, lam_im, gamma = lru._coefficients()
    modulus = torch.sqrt(lam_re**2 + lam_im**2)
    assert (modulus < 1).all() and (modulus > 0.89).all()
    torch.testing.assert_close(gamma, torch.sqrt(1 - modulus**2))
    mingru = build_architecture("mingru", hidden_size=16, seed=0)
    x = torch.randn(4, OBS_DIM)
    z = torch.sigmoid(mingru.gates(x).chunk(2, dim=-1)[0])
    h = torch.randn(4, 16)
    candidate = mingru.gates(x).chunk(2, dim=-1)[1]
    torch.testing.assert_close(mingru.transition(h, x), (1 - z) * h + z * candidate)


def test_plugin_factory_from_a_test_file():
    name, factory = load_factory("bench_plugin_model:elman")
    assert name == "elman" and callable(factory)
    assert load_factory("mine=bench_plugin_model:elman")[0] == "mine"
    model = build_architecture("bench_plugin_model:elman", hidden_size=5, seed=0)
    assert type(model).__name__ == "ElmanNet" and model.hidden_size == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bench_plugin_model.elman", "or 'package.module:factory'"),
        ("bench_plugin_model:", "must look like"),
        ("no_such_package_xyz.models:make", "cannot import 'no_such_package_xyz.models'"),
        ("bench_plugin_model:missing", "has no attribute 'missing'"),
        ("bench_plugin_model:NOT_CALLABLE", "is not callable"),
        ("bench_plugin_model:not_a_module", "not a torch.nn.Module"),
        ("bench_plugin_model:no_readout", "missing ['initial_state', 'transition', 'readout']"),
        (
            "bench_plugin_model:wrong_logits",
            "must return (logits [2, 1, 11], state), got (2, 1, 5)",
        ),
        ("bench_plugin_model:float32_state", "initial_state must use the parameters' dtype"),
        ("gpt5", "unknown architecture 'gpt5'"),
    ],
)
def test_bad_model_spec_is_a_clear_error(spec, message):
    with pytest.raises(ValueError) as error:
        build_architecture(spec, hidden_size=4)
    assert message in str(error.value)
    assert spec.split(":")[0] in str(error.value)


def test_check_protocol_names_what_it_checked():
    with pytest.raises(ValueError, match="'thing'"):
        check_protocol(torch.nn.Linear(3, 3), OBS_DIM, what="thing")


@pytest.mark.parametrize("name", ["lru", "mingru"])
def test_slow_point_search_finds_the_one_fixed_point_of_a_linear_recurrence(name):
    """Under a fixed input x the LRU and minGRU are affine in their state, with exactly one fixed
    point: minGRU's is h~(x), the LRU's (1 - lambda)^-1 gamma B x. The analysis finds it."""
    from analysis.slow_points import find_slow_points

    model = build_architecture(name, hidden_size=6, seed=0).double()
    x = torch.full((OBS_DIM,), 0.13, dtype=torch.float64)
    x[-1] = 0.0
    with torch.no_grad():
        if name == "mingru":
            expected = model.gates(x).chunk(2, dim=-1)[1]
        else:
            lam_re, lam_im, gamma = model._coefficients()
            lam = torch.complex(lam_re, lam_im)
            u = torch.complex(model.input_re(x), model.input_im(x)) * gamma
            fixed = u / (1 - lam)
            expected = torch.cat([fixed.real, fixed.imag])
    starts = torch.randn(3, expected.numel(), dtype=torch.float64).numpy() * 0.5
    points = find_slow_points(model, starts, x.numpy(), clip=None, eigenvalues=False)
    for state in points.states:
        np.testing.assert_allclose(state, expected.numpy(), atol=1e-6)
    assert (points.speeds < 1e-12).all()
