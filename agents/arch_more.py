"""Five more architectures for `memenv bench`: two recurrences, linear attention, and two anchors.

Every model follows `agents.protocol.RecurrentAgent` (``forward``, ``initial_state``,
``transition``, ``readout``; batch-first states) and has a state of fixed size, so it trains
with `agents.train`, evaluates at any delay and has its class anchors measured
(`studies.bench.anchor_speed`).

* `IndRNNModel`: IndRNN (Li et al., CVPR 2018), a ReLU recurrence with one recurrent weight per
  unit, state ``[B, L N]``.
* `SLSTMModel`: the sLSTM of xLSTM (Beck et al., NeurIPS 2024), exponential gating with a
  normaliser and a stabiliser, state ``(h, c, n, m)``, each ``[B, N]``.
* `LinearAttentionModel`: a one-layer linear-attention Transformer in its recurrent form
  (Katharopoulos et al., ICML 2020), state ``(y [B, d], S [B, H, d_k, d/H], z [B, H, d_k])``.
* `FrameStackModel`: an MLP of the last ``K`` frames (the frame-stacking baseline of POPGym),
  state ``[B, K, D]``: exactly ``K`` steps of memory, a lower anchor.
* `MemorylessModel`: an MLP of the current frame (POPGym's MLP baseline), state ``[B, D]``: no
  memory at all, the floor.

The readout of each is `agents.architectures.MLPReadout` (as for the LRU and minGRU), so that
the models differ in how they remember, not in how they read their memory.

`ARCHITECTURES` maps bench names to the classes; each class is itself a factory
``factory(hidden_size=..., obs_dim=...)`` (plug-in spec ``"agents.arch_more:IndRNNModel"``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from agents.arch_parts import MNIST_OBS_DIM, MLPReadout, check_sizes
from memenv.errors import UsageError

FORGET_GATES = ("sigmoid", "exp")
"""The sLSTM's forget-gate activations (xLSTM allows both)."""


def _positive_int(name: str, value: int) -> int:
    """``value`` as an int, or UsageError unless it is a whole number >= 1 (2.0 passes)."""
    whole = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    )
    if not whole or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class IndRNNModel(nn.Module):
    """Independently Recurrent Neural Network (Li, Li, Cook, Zhu & Gao, "Independently Recurrent
    Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR 2018), ``L`` stacked layers
    (default one) with an MLP readout. Follows `RecurrentAgent`.

    Each unit sees only its own past, through one recurrent weight::

        h^1_t  = relu(W^1 x_t       + u^1 * h^1_{t-1} + b^1)
        h^l_t  = relu(W^l h^{l-1}_t + u^l * h^l_{t-1} + b^l)       l = 2 .. L
        logits = MLPReadout(h^L_t)

    Units interact only through the next layer (and the readout). Recurrent weights: ``u`` is
    drawn uniform in ``[0, 1]`` (no unit starts out amplifying) and used clipped to the paper's
    bound ``|u| <= 2^(1/T)``, which lets a ReLU unit's gradient grow at most twofold over ``T``
    steps (``T = horizon``). The clip is applied where ``u`` is used (not to the stored
    parameter), so the forward pass always obeys it; a weight beyond the bound gets no gradient.
    Input weights: PyTorch's `nn.Linear` default; biases start at 0.

    Args:
        obs_dim: D.
        hidden_size: N, units per layer.
        n_layers: L.
        horizon: T of the bound on ``|u|``.
        readout_hidden: Width of the MLP readout (default N).

    State: float ``[B, L N]``, layer 1's units first.
    """

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        n_layers: int = 1,
        horizon: int = 100,
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        self.n_layers = _positive_int("n_layers", n_layers)
        self.horizon = _positive_int("horizon", horizon)
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        n = self.hidden_size
        self.u_max = 2.0 ** (1.0 / self.horizon)
        self.inputs = nn.ModuleList(
            nn.Linear(self.obs_dim if layer == 0 else n, n) for layer in range(self.n_layers)
        )
        for linear in self.inputs:
            nn.init.zeros_(linear.bias)
        self.recurrent = nn.Parameter(torch.rand(self.n_layers, n))
        self.head = MLPReadout(n, readout_hidden or n)

    def _u(self) -> torch.Tensor:
        """The recurrent weights in use, ``[L, N]``, clipped to ``|u| <= 2^(1/T)``."""
        return self.recurrent.clamp(-self.u_max, self.u_max)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = self.recurrent
        n = self.n_layers * self.hidden_size
        return torch.zeros(batch_size, n, dtype=p.dtype, device=p.device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], state [B, L N])``."""
        state = self.initial_state(obs.shape[0]) if state is None else state
        u = self._u()
        layer_in, finals = obs, []
        for layer, h in enumerate(state.chunk(self.n_layers, dim=-1)):
            drive = self.inputs[layer](layer_in)  # [B, T, N]: the input of all steps at once
            states = []
            for drive_t in drive.unbind(1):  # unbind: see arch_ssm.S4DModel.forward
                h = functional.relu(drive_t + u[layer] * h)
                states.append(h)
            layer_in = torch.stack(states, dim=1)
            finals.append(h)
        return self.head(layer_in), torch.cat(finals, dim=-1)

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        u = self._u()
        layer_in, new = x, []
        for layer, h in enumerate(state.chunk(self.n_layers, dim=-1)):
            layer_in = functional.relu(self.inputs[layer](layer_in) + u[layer] * h)
            new.append(layer_in)
        return torch.cat(new, dim=-1)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state[..., -self.hidden_size :])


class SLSTMModel(nn.Module):
    """sLSTM (Beck et al., "xLSTM: Extended Long Short-Term Memory", NeurIPS 2024), one cell
    with one head (a full recurrent matrix; the paper's block-diagonal heads are not used), with
    an MLP readout instead of the paper's residual block. Follows `RecurrentAgent`.

    Exponential input gate, stabilised by ``m`` and normalised by ``n``::

        z~, i~, f~, o~ = W x_t + R h_{t-1} + b                 (four blocks of N)
        log f_t = log sigmoid(f~)    (forget_gate="sigmoid")   or  f~   (forget_gate="exp")
        m_t  = max(log f_t + m_{t-1}, i~)                      stabiliser
        i'_t = exp(i~ - m_t)
        f'_t = exp(log f_t + m_{t-1} - m_t)
        c_t  = f'_t * c_{t-1} + i'_t * tanh(z~)
        n_t  = f'_t * n_{t-1} + i'_t                           normaliser
        h_t  = sigmoid(o~) * c_t / n_t
        logits = MLPReadout(h_t)

    ``c_t / n_t`` is a weighted mean of past ``tanh(z~)`` (the weights are positive), so
    ``|h_t| <= sigmoid(o~) < 1`` however large the exponential gates get; the stabiliser only
    rescales ``c`` and ``n`` together and does not change ``h``. ``n_t > 0`` after the first
    step (``h_0 = c_0 = n_0 = m_0 = 0``). With the exponential forget gate, ``m`` may drift
    without bound under a constant input, so its anchor speed need not vanish.

    Initialisation: `nn.Linear` defaults, except the forget-gate bias, spread linearly over
    ``[3, 6]`` across units with the sigmoid gate (``f`` from 0.95 to 0.998: long memory at
    the start, as xLSTM's positive forget biases intend) and 0 with the exponential gate.

    Args:
        obs_dim: D.
        hidden_size: N.
        forget_gate: ``"sigmoid"`` (the xLSTM code's sLSTM) or ``"exp"``.
        readout_hidden: Width of the MLP readout (default N).

    State: ``(h, c, n, m)``, each float ``[B, N]``.
    """

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        forget_gate: str = "sigmoid",
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        if forget_gate not in FORGET_GATES:
            raise UsageError(f"forget_gate must be one of {FORGET_GATES}, got {forget_gate!r}")
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        self.forget_gate = forget_gate
        n = self.hidden_size
        self.inputs = nn.Linear(self.obs_dim, 4 * n)  # z, i, f, o in one matmul
        self.recurrent = nn.Linear(n, 4 * n, bias=False)
        with torch.no_grad():
            forget_bias = self.inputs.bias[2 * n : 3 * n]
            if forget_gate == "sigmoid":
                forget_bias.copy_(torch.linspace(3.0, 6.0, n))
            else:
                forget_bias.zero_()
        self.head = MLPReadout(n, readout_hidden or n)

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        p = self.inputs.weight
        zeros = torch.zeros(batch_size, self.hidden_size, dtype=p.dtype, device=p.device)
        return (zeros, zeros.clone(), zeros.clone(), zeros.clone())

    def _step(
        self, drive: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        """One step from the input projection ``drive = W x + b [B, 4N]``."""
        h, c, n, m = state
        z_pre, i_pre, f_pre, o_pre = (drive + self.recurrent(h)).chunk(4, dim=-1)
        log_f = functional.logsigmoid(f_pre) if self.forget_gate == "sigmoid" else f_pre
        m_new = torch.maximum(log_f + m, i_pre)
        i_gate = torch.exp(i_pre - m_new)
        f_gate = torch.exp(log_f + m - m_new)
        c = f_gate * c + i_gate * torch.tanh(z_pre)
        n = f_gate * n + i_gate
        return torch.sigmoid(o_pre) * c / n, c, n, m_new

    def forward(
        self, obs: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], (h, c, n, m))``."""
        state = self.initial_state(obs.shape[0]) if state is None else tuple(state)
        drive = self.inputs(obs)  # [B, T, 4N]: the input projection of all steps at once
        hs = []
        for drive_t in drive.unbind(1):  # unbind: see arch_ssm.S4DModel.forward
            state = self._step(drive_t, state)
            hs.append(state[0])
        return self.head(torch.stack(hs, dim=1)), state

    def transition(self, state: tuple[torch.Tensor, ...], x: torch.Tensor):
        return self._step(self.inputs(x), tuple(state))

    def readout(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.head(state[0])


class LinearAttentionModel(nn.Module):
    """Linear-attention Transformer (Katharopoulos, Vyas, Pappas & Fleuret, "Transformers are
    RNNs: Fast Autoregressive Transformers with Linear Attention", ICML 2020), one pre-LayerNorm
    layer in its recurrent form, with an MLP readout. Follows `RecurrentAgent`.

    Per head (``H`` heads, keys and queries of size ``d_k``, values of size ``d / H``)::

        e_t        = W_e x_t + b_e                              embedding, width d
        q, k, v    = W_qkv LayerNorm(e_t) + b_qkv
        phi(a)     = elu(a) + 1                                 positive feature map
        S_t        = S_{t-1} + phi(k_t) v_t^T                   [d_k, d/H]
        z_t        = z_{t-1} + phi(k_t)                         [d_k]
        a_t        = S_t^T phi(q_t) / (z_t . phi(q_t) + eps)
        y'_t       = e_t + W_o [a_t of all heads] + b_o
        y_t        = y'_t + FF(LayerNorm(y'_t))                 FF: d -> 4d -> d, GELU
        logits     = MLPReadout(LayerNorm(y_t))

    So ``a_t = sum_{s<=t} (phi(q_t) . phi(k_s)) v_s / sum_{s<=t} phi(q_t) . phi(k_s)``: causal
    attention with the kernel ``phi(q) . phi(k)`` instead of ``exp(q . k)``, and a state of
    fixed size ``d x d_k`` instead of a growing cache. No positional encoding (as
    `agents.architectures.CausalTransformer`). ``eps = 1e-6`` (the reference implementation's)
    only guards the division; the kernel is positive, so the sum is positive from the first step.
    ``S`` and ``z`` only grow (no forgetting), so an anchor's speed never vanishes, and an old
    frame's share of the average shrinks like ``1/t``.

    `forward` runs chunks of ``chunk_size`` steps at once (attention inside the chunk, the
    state ``S, z`` between chunks), which gives the same values as the step-by-step recurrence
    `transition` runs.

    Args:
        obs_dim: D.
        hidden_size: d, the model width.
        n_heads: H (must divide d). One by default, so that every width d is valid (the
            bench may search d to match a parameter count).
        key_dim: d_k per head.
        chunk_size: Steps computed at once in `forward`.
        readout_hidden: Width of the MLP readout (default d).

    State: ``(y [B, d], S [B, H, d_k, d/H], z [B, H, d_k])``: ``y`` is the last step's output
    (what `readout` reads: it holds the current frame through the residual path), ``S`` and
    ``z`` the attention memory.
    """

    eps = 1e-6

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        n_heads: int = 1,
        key_dim: int = 16,
        chunk_size: int = 64,
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        self.n_heads = _positive_int("n_heads", n_heads)
        self.key_dim = _positive_int("key_dim", key_dim)
        self.chunk_size = _positive_int("chunk_size", chunk_size)
        if hidden_size % self.n_heads:
            raise UsageError(
                f"n_heads must divide hidden_size, got n_heads={n_heads}, hidden_size={hidden_size}"
            )
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        d = self.hidden_size
        self.value_dim = d // self.n_heads
        self.embed = nn.Linear(self.obs_dim, d)
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 2 * self.n_heads * self.key_dim + d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.final_norm = nn.LayerNorm(d)
        self.head = MLPReadout(d, readout_hidden or d)

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        p = self.embed.weight
        h, dk, dv = self.n_heads, self.key_dim, self.value_dim
        y = torch.zeros(batch_size, self.hidden_size, dtype=p.dtype, device=p.device)
        memory = torch.zeros(batch_size, h, dk, dv, dtype=p.dtype, device=p.device)
        normaliser = torch.zeros(batch_size, h, dk, dtype=p.dtype, device=p.device)
        return (y, memory, normaliser)

    def features(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings ``e [B, T, d]`` -> ``(phi(q), phi(k) [B, T, H, d_k], v [B, T, H, d/H])``."""
        b, t, _ = e.shape
        hk = self.n_heads * self.key_dim
        q, k, v = self.qkv(self.norm1(e)).split([hk, hk, self.hidden_size], dim=-1)
        shape = (b, t, self.n_heads, -1)
        phi_q = functional.elu(q) + 1
        phi_k = functional.elu(k) + 1
        return phi_q.view(shape), phi_k.view(shape), v.reshape(shape)

    def forward(
        self, obs: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], (y, S, z))``."""
        _, memory, normaliser = self.initial_state(obs.shape[0]) if state is None else state
        e = self.embed(obs)
        phi_q, phi_k, v = self.features(e)
        attended = []
        for start in range(0, obs.shape[1], self.chunk_size):
            q = phi_q[:, start : start + self.chunk_size]
            k = phi_k[:, start : start + self.chunk_size]
            vc = v[:, start : start + self.chunk_size]
            w = q.shape[1]
            # kernel of query step i with key step j of this chunk, kept for j <= i
            causal = torch.ones(w, w, dtype=torch.bool, device=obs.device).tril()
            kernel = torch.einsum("bihk,bjhk->bhij", q, k) * causal
            numerator = torch.einsum("bihk,bhkv->bihv", q, memory)
            numerator = numerator + torch.einsum("bhij,bjhv->bihv", kernel, vc)
            denominator = torch.einsum("bihk,bhk->bih", q, normaliser)
            denominator = denominator + kernel.sum(dim=-1).transpose(1, 2)
            attended.append(numerator / (denominator[..., None] + self.eps))
            memory = memory + torch.einsum("bjhk,bjhv->bhkv", k, vc)
            normaliser = normaliser + k.sum(dim=1)
        a = torch.cat(attended, dim=1).flatten(2)
        y = e + self.proj(a)
        y = y + self.ff(self.norm2(y))
        return self.head(self.final_norm(y)), (y[:, -1], memory, normaliser)

    def transition(self, state: tuple[torch.Tensor, ...], x: torch.Tensor):
        return self.forward(x[:, None], state)[1]

    def readout(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.head(self.final_norm(state[0]))


class FrameStackModel(nn.Module):
    """Frame stacking (Mnih et al., "Human-level control through deep reinforcement learning",
    Nature 2015; the frame-stack baseline of POPGym, Morad et al., ICLR 2023): an MLP of the last
    ``K`` observations. Follows `RecurrentAgent`. A lower anchor for the benchmark: it
    remembers exactly ``K`` steps (the image is gone ``K`` steps after it was shown) and nothing
    of what came before.

    ::

        s_t    = [x_{t-K+1}, ..., x_t]                  (zero frames before the first step)
        logits = MLPReadout(flatten(s_t))               = W2 gelu(W1 s_t + b1) + b2

    The stack includes the current frame ``x_t``, so that `readout` computes the logits from
    the state alone, as the protocol asks. `transition` drops the oldest frame and appends
    ``x``; it has no parameters.

    Args:
        obs_dim: D.
        hidden_size: N, the MLP's hidden width.
        n_frames: K.

    State: float ``[B, K, D]``, oldest frame first.
    """

    def __init__(
        self, obs_dim: int = MNIST_OBS_DIM, hidden_size: int = 128, n_frames: int = 4
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        self.n_frames = _positive_int("n_frames", n_frames)
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        self.head = MLPReadout(self.n_frames * self.obs_dim, self.hidden_size)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = self.head.out.weight
        shape = (batch_size, self.n_frames, self.obs_dim)
        return torch.zeros(shape, dtype=p.dtype, device=p.device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], state [B, K, D])``."""
        b, t, _ = obs.shape
        state = self.initial_state(b) if state is None else state
        frames = torch.cat([state, obs], dim=1)  # [B, K + T, D]
        # step i's stack is frames[i + 1 : i + 1 + K]; unfold puts the K frames last
        stacks = frames[:, 1:].unfold(1, self.n_frames, 1).transpose(2, 3)  # [B, T, K, D]
        return self.head(stacks.reshape(b, t, -1)), frames[:, -self.n_frames :]

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([state[:, 1:], x[:, None]], dim=1)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state.flatten(1))


class MemorylessModel(nn.Module):
    """A memoryless MLP (the MLP baseline of POPGym, Morad et al., ICLR 2023): the answer is a
    function of the current frame only. Follows `RecurrentAgent`. Its accuracy is the floor
    of the benchmark: it can answer "null" or guess, never recall.

    ::

        s_t    = x_t
        logits = MLPReadout(s_t)                         = W2 gelu(W1 x_t + b1) + b2

    The protocol's `readout` sees only the state, so the state is the current frame; the model
    is still memoryless, because `transition` ignores the old state (``F(s, x) = x``).

    Args:
        obs_dim: D.
        hidden_size: N, the MLP's hidden width.

    State: float ``[B, D]``, the last frame (zeros before the first step).
    """

    def __init__(self, obs_dim: int = MNIST_OBS_DIM, hidden_size: int = 128) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        self.head = MLPReadout(self.obs_dim, self.hidden_size)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = self.head.out.weight
        return torch.zeros(batch_size, self.obs_dim, dtype=p.dtype, device=p.device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], state [B, D])``."""
        return self.head(obs), obs[:, -1]

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "indrnn": IndRNNModel,
    "slstm": SLSTMModel,
    "linear-attention": LinearAttentionModel,
    "framestack": FrameStackModel,
    "memoryless": MemorylessModel,
}
"""Bench name -> class; each class is a ``factory(hidden_size=..., obs_dim=...)``."""

__all__ = [
    "ARCHITECTURES",
    "FORGET_GATES",
    "FrameStackModel",
    "IndRNNModel",
    "LinearAttentionModel",
    "MemorylessModel",
    "SLSTMModel",
]
