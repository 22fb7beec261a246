"""The architectures of `agents.arch_more`: protocol, fixed state, errors, equations, training."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from agents.arch_more import (
    ARCHITECTURES,
    FrameStackModel,
    IndRNNModel,
    LinearAttentionModel,
    MemorylessModel,
    SLSTMModel,
)
from memenv.errors import UsageError
from studies import bench
from studies.bench import has_fixed_state

OBS_DIM = 785


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[name](obs_dim=OBS_DIM, hidden_size=8, **kwargs)


def test_names_are_the_bench_names():
    assert list(ARCHITECTURES) == [
        "indrnn", "slstm", "linear-attention", "framestack", "memoryless",
    ]  # fmt: skip


# forward in windows == one pass == transition + readout: tests/bench/test_architectures.py,
# over every built-in


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_state_has_a_fixed_size_and_follows_the_dtype(name):
    model = build(name)
    assert has_fixed_state(model, OBS_DIM)
    state = model.double().initial_state(2)
    parts = state if isinstance(state, tuple) else (state,)
    assert all(part.dtype == torch.float64 and part.shape[0] == 2 for part in parts)


@pytest.mark.parametrize(
    ("model", "kwargs", "shown"),
    [
        (IndRNNModel, {"hidden_size": 0}, "0"),
        (IndRNNModel, {"obs_dim": 1}, "1"),
        (IndRNNModel, {"n_layers": 0}, "n_layers must be a positive integer, got 0"),
        (IndRNNModel, {"horizon": -5}, "horizon must be a positive integer, got -5"),
        (IndRNNModel, {"horizon": float("inf")}, "got inf"),
        (SLSTMModel, {"hidden_size": -3}, "-3"),
        (SLSTMModel, {"forget_gate": "tanh"}, "got 'tanh'"),
        (LinearAttentionModel, {"obs_dim": 0}, "0"),
        (LinearAttentionModel, {"n_heads": 3}, "n_heads=3, hidden_size=8"),
        (LinearAttentionModel, {"key_dim": 0}, "key_dim must be a positive integer, got 0"),
        (
            LinearAttentionModel,
            {"chunk_size": 2.5},
            "chunk_size must be a positive integer, got 2.5",
        ),
        (FrameStackModel, {"n_frames": 0}, "n_frames must be a positive integer, got 0"),
        (FrameStackModel, {"n_frames": "4"}, "got '4'"),
        (FrameStackModel, {"hidden_size": 0}, "0"),
        (MemorylessModel, {"obs_dim": -1}, "-1"),
    ],
)
def test_bad_constructor_values_are_usage_errors(model, kwargs, shown):
    arguments = {"obs_dim": OBS_DIM, "hidden_size": 8, **kwargs}
    with pytest.raises(UsageError) as error:
        model(**arguments)
    assert shown in str(error.value)


# ---------------------------------------------------------------------- equations, one per model
def test_indrnn_holds_a_value_with_unit_recurrence_and_clips_u():
    """u = 1 and W = identity on the first N inputs: h keeps x_0 through zero inputs; u = 1/2
    halves it each step; a u beyond the bound acts as 2^(1/T)."""
    model = IndRNNModel(obs_dim=6, hidden_size=4, horizon=50)
    with torch.no_grad():
        model.inputs[0].weight.zero_()
        model.inputs[0].weight[:, :4] = torch.eye(4)
        model.recurrent.fill_(1.0)
        x0 = torch.tensor([[0.5, 2.0, 0.0, 3.0, 9.0, 9.0]])
        obs = torch.cat([x0[:, None], torch.zeros(1, 30, 6)], dim=1)
        _, state = model(obs)
        torch.testing.assert_close(state, x0[:, :4])
        model.recurrent.fill_(0.5)
        _, state = model(obs[:, :4])
        torch.testing.assert_close(state, x0[:, :4] / 8)
        model.recurrent.fill_(5.0)
        assert torch.allclose(model._u(), torch.full((1, 4), 2 ** (1 / 50)))
        negative = model.transition(torch.zeros(1, 4), -x0)
        assert (negative == 0).all()  # ReLU


def test_indrnn_layers_feed_each_other():
    model = IndRNNModel(obs_dim=OBS_DIM, hidden_size=5, n_layers=2)
    x = torch.randn(2, OBS_DIM)
    state = torch.rand(2, 10)
    with torch.no_grad():
        new = model.transition(state, x)
        u = model._u()
        h1 = functional.relu(model.inputs[0](x) + u[0] * state[:, :5])
        h2 = functional.relu(model.inputs[1](h1) + u[1] * state[:, 5:])
    torch.testing.assert_close(new, torch.cat([h1, h2], dim=1))


def test_slstm_step_is_the_papers_and_the_normaliser_bounds_h():
    model = SLSTMModel(obs_dim=OBS_DIM, hidden_size=6)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, OBS_DIM, generator=g)
    h, c = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    n, m = torch.rand(3, 6, generator=g) + 0.5, torch.randn(3, 6, generator=g)
    with torch.no_grad():
        pre = model.inputs(x) + model.recurrent(h)
        z, i, f, o = pre.chunk(4, dim=-1)
        log_f = torch.log(torch.sigmoid(f))
        m_new = torch.maximum(log_f + m, i)
        i_gate, f_gate = torch.exp(i - m_new), torch.exp(log_f + m - m_new)
        c_new = f_gate * c + i_gate * torch.tanh(z)
        n_new = f_gate * n + i_gate
        expected = (torch.sigmoid(o) * c_new / n_new, c_new, n_new, m_new)
        for got, want in zip(model.transition((h, c, n, m), x), expected, strict=True):
            torch.testing.assert_close(got, want)

    # gates far too large for exp without the stabiliser: h stays finite and |h| <= 1
    for forget_gate in ("sigmoid", "exp"):
        big = SLSTMModel(obs_dim=OBS_DIM, hidden_size=6, forget_gate=forget_gate)
        with torch.no_grad():
            big.inputs.weight.mul_(40.0)
            big.recurrent.weight.mul_(40.0)
            state = big.initial_state(4)
            for _ in range(60):
                state = big.transition(state, torch.randn(4, OBS_DIM, generator=g))
                h, c, n, _ = state
                assert torch.isfinite(torch.stack(state)).all()
                assert (h.abs() <= 1 + 1e-6).all() and (n > 0).all()
                assert ((c / n).abs() <= 1 + 1e-6).all()


def test_linear_attention_is_the_explicit_kernel_sum_over_the_prefix():
    """Chunked forward (chunks of 4 over 11 steps) == the softmax-free attention sum computed
    directly, step by step, over each prefix; S and z are the sums of phi(k) v^T and phi(k)."""
    torch.manual_seed(0)
    model = LinearAttentionModel(obs_dim=OBS_DIM, hidden_size=8, n_heads=2, key_dim=3, chunk_size=4)
    model = model.double()
    obs = torch.randn(2, 11, OBS_DIM, dtype=torch.float64)
    with torch.no_grad():
        logits, (y_last, memory, normaliser) = model(obs)
        e = model.embed(obs)
        phi_q, phi_k, v = model.features(e)  # [B, T, H, *]
        rows = []
        for t in range(obs.shape[1]):
            kernel = (phi_q[:, t, None] * phi_k[:, : t + 1]).sum(-1)  # [B, t+1, H]
            weighted = (kernel[..., None] * v[:, : t + 1]).sum(1)  # [B, H, dv]
            rows.append(weighted / (kernel.sum(1)[..., None] + model.eps))
        attended = torch.stack(rows, dim=1).flatten(2)
        y = e + model.proj(attended)
        y = y + model.ff(model.norm2(y))
        expected = model.head(model.final_norm(y))
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(y_last, y[:, -1])
    torch.testing.assert_close(memory, torch.einsum("bthk,bthv->bhkv", phi_k, v))
    torch.testing.assert_close(normaliser, phi_k.sum(1))
    assert memory.shape == (2, 2, 3, 4)


def test_framestack_remembers_exactly_k_frames():
    """Logits at step t change with frame t-K+1 and not with frame t-K."""
    model = build("framestack", n_frames=3)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 8, OBS_DIM, generator=g)
    t, k = 6, 3
    with torch.no_grad():
        base, state = model(obs)
        oldest_kept, dropped = obs.clone(), obs.clone()
        oldest_kept[:, t - k + 1] += 1.0
        dropped[:, t - k] += 1.0
        kept_logits, _ = model(oldest_kept)
        dropped_logits, _ = model(dropped)
    assert not torch.allclose(kept_logits[:, t], base[:, t])
    torch.testing.assert_close(dropped_logits[:, t], base[:, t])
    torch.testing.assert_close(state, obs[:, -3:])


def test_memoryless_answers_from_the_current_frame_only():
    model = build("memoryless")
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 6, OBS_DIM, generator=g)
    t = 4
    with torch.no_grad():
        base, _ = model(obs)
        past, current = obs.clone(), obs.clone()
        past[:, :t] = torch.randn(2, t, OBS_DIM, generator=g)
        current[:, t] += 1.0
        past_logits, _ = model(past)
        current_logits, _ = model(current)
        stale = model.transition(torch.randn(2, OBS_DIM, generator=g), obs[:, t])
    torch.testing.assert_close(past_logits[:, t], base[:, t])
    assert not torch.allclose(current_logits[:, t], base[:, t])
    torch.testing.assert_close(model.readout(stale), base[:, t])


# ---------------------------------------------------------------------- the benchmark
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_trains_evaluates_and_measures_anchors_in_the_bench(name, tiny_protocol, tmp_path):
    spec = "agents.arch_more:" + ARCHITECTURES[name].__name__
    result = bench.run_one(bench.BenchArchitecture(name, spec), 0, tiny_protocol, tmp_path)
    assert result.status == "done"
    assert result.recurrent and len(result.anchor["speeds"]) == 10
