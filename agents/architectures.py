"""Memory architectures beyond the paper's cells, and the registry `memenv bench` builds from.

Every model here follows `agents.protocol.RecurrentAgent` (``forward``, ``initial_state``,
``transition``, ``readout``; batch-first states), so it trains with `agents.train`, evaluates
with `agents.evaluate_delays` at any delay, and, where its state has a fixed size, is analysed
like the reference cells.

* `LRUModel`: a diagonal linear recurrent unit (Orvieto et al., ICML 2023), state ``[B, 2N]``.
* `MinGRUModel`: minGRU (Feng et al., 2024), gates that see only the input, state ``[B, N]``.
* `CausalTransformer`: a small pre-LayerNorm causal Transformer without positional encoding;
  its state is the key/value cache, which grows by one entry per step.

More in their own modules, registered here: `agents.arch_more` (IndRNN, sLSTM, a
linear-attention Transformer in its recurrent form, frame stacking and a memoryless MLP, the
lower anchors) and `agents.arch_ssm` (LMU, S4D, a Mamba-style selective state space model).

`BUILTIN` also holds the paper's cells in both model families: ``gru``, ``lstm``, ``rnn``
(PyTorch's, `agents.models`) and ``authors-gru``, ``authors-lstm`` (the authors' own,
`agents.authors`; `agents.train` gives them the authors' loss).

The two linear recurrences and the Transformer read out through a small MLP
(`MLPReadout`): their state is a linear function of the inputs (LRU, minGRU) or a residual
stream, and such models are always used with nonlinear layers after the recurrence. The paper's
cells keep their linear readout (`agents.models`).

`BUILTIN` maps names to factories ``factory(hidden_size=..., obs_dim=...) -> nn.Module``; a
user's factory with the same keywords plugs in through ``"package.module:factory"``
(`load_factory`, `build_architecture`).
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from agents.arch_more import ARCHITECTURES as MORE
from agents.arch_parts import MNIST_OBS_DIM, MLPReadout, check_sizes
from agents.arch_ssm import ARCHITECTURES as SSM
from agents.protocol import N_OUTPUTS, check_agent
from memenv.errors import UsageError


class LRUModel(nn.Module):
    """Linear Recurrent Unit (Orvieto et al., "Resurrecting Recurrent Neural Networks for Long
    Sequences", ICML 2023), one layer, with an MLP readout. Follows `RecurrentAgent`.

    Complex diagonal recurrence, written in real arithmetic::

        lambda = exp(-exp(nu_log) + i exp(theta_log))        per unit, |lambda| < 1
        gamma  = sqrt(1 - |lambda|^2)                         input normalisation
        h_t    = lambda * h_{t-1} + gamma * (B_re + i B_im) x_t
        logits = MLPReadout([Re h_t, Im h_t])

    The recurrence is linear and time-invariant: under a fixed input it has exactly one fixed
    point, and memory lasts as long as ``|lambda|`` stays close to 1.

    Args:
        obs_dim: D, the observation size.
        hidden_size: N, complex units (the state has 2N real numbers).
        r_min, r_max: Initial ``|lambda|`` is drawn so that ``|lambda|^2`` is uniform in
            ``[r_min^2, r_max^2]`` (the paper's ring initialisation).
        max_phase: Initial phases are uniform in ``[0, max_phase]``.
        readout_hidden: Width of the MLP readout (default N).

    State: float ``[B, 2N]``, real parts then imaginary parts.
    """

    TUNABLE = {"r_min": (0.5, 0.99, "linear")}
    """The inner radius of the ring initialisation, tuned with ``memenv bench --tune``."""

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = math.pi / 10,
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        if not 0 <= r_min < r_max < 1:
            raise UsageError(f"need 0 <= r_min < r_max < 1, got {r_min}, {r_max}")
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        n = self.hidden_size
        u1, u2 = torch.rand(n), torch.rand(n)
        radius_sq = u1 * (r_max**2 - r_min**2) + r_min**2
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(radius_sq)))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2 + 1e-4))
        scale = 1.0 / math.sqrt(2 * self.obs_dim)
        self.input_re = nn.Linear(self.obs_dim, n, bias=False)
        self.input_im = nn.Linear(self.obs_dim, n, bias=False)
        nn.init.normal_(self.input_re.weight, std=scale)
        nn.init.normal_(self.input_im.weight, std=scale)
        self.head = MLPReadout(2 * n, readout_hidden or n)

    def _coefficients(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Re lambda, Im lambda, gamma)``, each ``[N]``."""
        modulus = torch.exp(-torch.exp(self.nu_log))
        phase = torch.exp(self.theta_log)
        gamma = torch.sqrt(1 - modulus.square())
        return modulus * torch.cos(phase), modulus * torch.sin(phase), gamma

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = self.input_re.weight
        return torch.zeros(batch_size, 2 * self.hidden_size, dtype=p.dtype, device=p.device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], state [B, 2N])``."""
        h = self.initial_state(obs.shape[0]) if state is None else state
        lam_re, lam_im, gamma = self._coefficients()
        u_re = gamma * self.input_re(obs)  # [B, T, N]: the input projection of all steps at once
        u_im = gamma * self.input_im(obs)
        a, b = h.chunk(2, dim=-1)
        states = []
        # unbind, not [:, t]: the backward of T index ops writes T zero-filled [B, T, N] tensors
        for re_t, im_t in zip(u_re.unbind(1), u_im.unbind(1), strict=True):
            a, b = lam_re * a - lam_im * b + re_t, lam_re * b + lam_im * a + im_t
            states.append(torch.cat([a, b], dim=-1))
        h_btx = torch.stack(states, dim=1)
        return self.head(h_btx), h_btx[:, -1]

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        lam_re, lam_im, gamma = self._coefficients()
        a, b = state.chunk(2, dim=-1)
        u_re, u_im = gamma * self.input_re(x), gamma * self.input_im(x)
        return torch.cat([lam_re * a - lam_im * b + u_re, lam_re * b + lam_im * a + u_im], dim=-1)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state)


class MinGRUModel(nn.Module):
    """minGRU (Feng et al., "Were RNNs All We Needed?", 2024), one layer, with an MLP readout.
    Follows `RecurrentAgent`.

    The gate and the candidate see only the input, so the recurrence is linear in ``h``::

        z_t    = sigmoid(W_z x_t + b_z)
        h~_t   = W_h x_t + b_h
        h_t    = (1 - z_t) * h_{t-1} + z_t * h~_t
        logits = MLPReadout(h_t)

    (The paper's sequential form; its log-space parallel scan computes the same values.) Under a
    fixed input there is one fixed point, ``h = h~(x)``; memory lasts while ``z`` stays near 0.

    Args:
        obs_dim: D.
        hidden_size: N.
        readout_hidden: Width of the MLP readout (default N).

    State: float ``[B, N]``.
    """

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        self.gates = nn.Linear(self.obs_dim, 2 * self.hidden_size)  # z and h~ in one matmul
        self.head = MLPReadout(self.hidden_size, readout_hidden or self.hidden_size)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = self.gates.weight
        return torch.zeros(batch_size, self.hidden_size, dtype=p.dtype, device=p.device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, T, D]`` -> ``(logits [B, T, 11], state [B, N])``."""
        h = self.initial_state(obs.shape[0]) if state is None else state
        z_pre, candidate = self.gates(obs).chunk(2, dim=-1)
        z = torch.sigmoid(z_pre)
        states = []
        for z_t, candidate_t in zip(z.unbind(1), candidate.unbind(1), strict=True):  # as the LRU
            h = h + z_t * (candidate_t - h)
            states.append(h)
        h_btn = torch.stack(states, dim=1)
        return self.head(h_btn), h_btn[:, -1]

    def transition(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z_pre, candidate = self.gates(x).chunk(2, dim=-1)
        return state + torch.sigmoid(z_pre) * (candidate - state)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state)


class CausalTransformer(nn.Module):
    """A small causal Transformer (pre-LayerNorm; Vaswani et al. 2017, Xiong et al. 2020)
    without positional encoding. Follows `RecurrentAgent`, with a growing state.

    Each step's observation is embedded (``Linear(D, d)``), passes ``n_layers`` blocks of causal
    multi-head self-attention and a GELU feed-forward layer (width ``4 d``), each with a
    residual connection, then a final LayerNorm and an MLP readout.

    No positional encoding ("NoPE"): this task needs no order information (the answer is the
    class of the one image in the stream, asked for by the trigger on the current frame), and
    without positions no step beyond the trained length is out of distribution by construction.
    What changes with the delay is that attention spreads over more noise frames.

    State: the tuple ``(y [B, d], k_1 [B, t, d], v_1 [B, t, d], ..., k_L, v_L)``: ``y`` is the
    last step's output (what `readout` reads), the ``k``/``v`` are each layer's keys and values
    of the ``t`` steps seen so far (``t = 0`` initially). It grows by one step per step, so
    `forward` in windows with the carried state gives exactly the logits of one long pass;
    memory and time grow with the trial length (quadratically in time over a trial).

    Args:
        obs_dim: D.
        hidden_size: d, the model width.
        n_layers: Blocks.
        n_heads: Attention heads (must divide d).
        readout_hidden: Width of the MLP readout (default d).
    """

    def __init__(
        self,
        obs_dim: int = MNIST_OBS_DIM,
        hidden_size: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        readout_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim, hidden_size)
        if n_layers < 1 or n_heads < 1 or hidden_size % n_heads:
            raise UsageError(
                f"need n_layers >= 1 and n_heads dividing hidden_size, got n_layers={n_layers}, "
                f"n_heads={n_heads}, hidden_size={hidden_size}"
            )
        self.obs_dim, self.hidden_size = int(obs_dim), int(hidden_size)
        self.n_layers, self.n_heads = int(n_layers), int(n_heads)
        d = self.hidden_size
        self.embed = nn.Linear(self.obs_dim, d)
        self.blocks = nn.ModuleList(_Block(d, self.n_heads) for _ in range(self.n_layers))
        self.final_norm = nn.LayerNorm(d)
        self.head = MLPReadout(d, readout_hidden or d)

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        p = self.embed.weight
        y = torch.zeros(batch_size, self.hidden_size, dtype=p.dtype, device=p.device)
        empty = torch.zeros(batch_size, 0, self.hidden_size, dtype=p.dtype, device=p.device)
        return (y,) + (empty,) * (2 * self.n_layers)

    def forward(
        self, obs: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``obs [B, W, D]`` after the ``t`` cached steps of ``state`` -> ``(logits [B, W, 11],
        state with t + W cached steps)``."""
        if state is None:
            state = self.initial_state(obs.shape[0])
        x = self.embed(obs)
        caches = []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, state[1 + 2 * i], state[2 + 2 * i])
            caches += [k, v]
        return self.head(self.final_norm(x)), (x[:, -1], *caches)

    def transition(self, state: tuple[torch.Tensor, ...], x: torch.Tensor):
        return self.forward(x[:, None], state)[1]

    def readout(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.head(self.final_norm(state[0]))


class _Block(nn.Module):
    """Pre-LayerNorm block: causal attention over cached and new steps, then feed-forward."""

    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(
        self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, W, d]``, caches ``[B, t, d]`` -> ``(x [B, W, d], k, v [B, t + W, d])``."""
        b, w, d = x.shape
        q, k_new, v_new = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        k = torch.cat([k_cache, k_new], dim=1)
        v = torch.cat([v_cache, v_new], dim=1)
        t = k_cache.shape[1]
        # query i sits at absolute step t + i and sees keys 0 .. t + i
        visible = torch.ones(w, t + w, dtype=torch.bool, device=x.device).tril(diagonal=t)

        def heads(m: torch.Tensor) -> torch.Tensor:
            return m.view(b, m.shape[1], self.n_heads, d // self.n_heads).transpose(1, 2)

        attended = functional.scaled_dot_product_attention(
            heads(q), heads(k), heads(v), attn_mask=visible
        )
        x = x + self.proj(attended.transpose(1, 2).reshape(b, w, d))
        return x + self.ff(self.norm2(x)), k, v


# ------------------------------------------------------------------------------ registry
def _reference(cell: str) -> Callable[..., nn.Module]:
    def factory(hidden_size: int = 128, obs_dim: int = MNIST_OBS_DIM) -> nn.Module:
        from agents.models import build_model

        return build_model(cell, hidden_size, dataset=None, obs_dim=obs_dim)

    factory.__name__ = cell
    factory.__doc__ = f"The paper's {cell.upper()} (agents.models.RecurrentModel, no front-end)."
    return factory


def _authors(cell: str) -> Callable[..., nn.Module]:
    def factory(hidden_size: int = 128, obs_dim: int = MNIST_OBS_DIM) -> nn.Module:
        from agents.authors import AuthorsModel

        return AuthorsModel(cell, obs_dim, hidden_size)

    factory.__name__ = f"authors-{cell}"
    factory.__doc__ = (
        f"The authors' own {cell.upper()} (agents.authors.AuthorsModel: their equations, "
        "initialisation, sigmoid readout; trained with their loss)."
    )
    return factory


BUILTIN: dict[str, Callable[..., nn.Module]] = {
    "rnn": _reference("rnn"),
    "gru": _reference("gru"),
    "lstm": _reference("lstm"),
    "authors-gru": _authors("gru"),
    "authors-lstm": _authors("lstm"),
    "lru": LRUModel,
    "mingru": MinGRUModel,
    "transformer": CausalTransformer,
    **MORE,
    **SSM,
}
"""Built-in architectures: name -> ``factory(hidden_size=..., obs_dim=...)``."""


def load_factory(spec: str) -> tuple[str, Callable[..., nn.Module]]:
    """Resolves a plug-in spec ``"package.module:factory"`` or ``"name=package.module:factory"``.

    Returns:
        ``(name, factory)``; the name is the given one, else the factory's ``__name__``.

    Raises:
        ValueError: naming the spec, when it is malformed, the module cannot be imported or the
            attribute is missing or not callable.
    """
    if not isinstance(spec, str):
        raise UsageError(f"model spec must be a string 'package.module:factory', got {spec!r}")
    name, _, target = spec.rpartition("=") if "=" in spec else ("", "", spec)
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise UsageError(
            f"model spec {spec!r} must look like 'package.module:factory' "
            "(optionally 'name=package.module:factory')"
        )
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as error:
        raise UsageError(f"model spec {spec!r}: cannot import {module_name!r} ({error})") from error
    factory = module
    for part in attribute.strip().split("."):
        if not hasattr(factory, part):
            raise UsageError(f"model spec {spec!r}: {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise UsageError(f"model spec {spec!r}: {attribute!r} is not callable")
    name = name.strip() or getattr(factory, "__name__", attribute.split(".")[-1])
    return name, factory


def build_architecture(
    spec: str,
    hidden_size: int = 128,
    obs_dim: int = MNIST_OBS_DIM,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """A fresh model from a built-in name (`BUILTIN`) or a plug-in spec (`load_factory`).

    The factory is called as ``factory(hidden_size=hidden_size, obs_dim=obs_dim, **options)``,
    after ``torch.manual_seed(seed)`` when a seed is given (so a resumed run rebuilds the same
    model). ``options`` are the architecture's own settings (e.g. those it declares in
    `tunable`); the model records them, so that a saved run is rebuilt with them.

    Raises:
        ValueError: naming ``spec``, when it is unknown or malformed, or when the factory's result
            does not follow `RecurrentAgent` (missing methods, or ``forward`` on one step does not
            give ``[B, 1, 11]`` logits).
    """
    if ":" in spec:
        _, factory = load_factory(spec)
    elif spec in BUILTIN:
        factory = BUILTIN[spec]
    else:
        raise UsageError(
            f"unknown architecture {spec!r}: use one of {tuple(BUILTIN)} or "
            "'package.module:factory'"
        )
    if seed is not None:
        torch.manual_seed(int(seed))
    options = dict(options or {})
    try:
        model = factory(hidden_size=int(hidden_size), obs_dim=int(obs_dim), **options)
    except TypeError as error:  # most often a factory with another signature
        raise UsageError(
            f"{spec!r}: calling it as factory(hidden_size={int(hidden_size)}, "
            f"obs_dim={int(obs_dim)}) failed ({error}); a model factory takes these two keyword "
            "arguments and returns an nn.Module that follows agents.RecurrentAgent"
        ) from error
    check_protocol(model, obs_dim, what=spec)
    # what `agents.checkpoint.weights_record` stores, so that eval / analyze / regularize
    # rebuild the model from its run (`load_model`) as bench built it
    model.memenv_architecture = {
        "spec": spec, "hidden_size": int(hidden_size), "obs_dim": int(obs_dim),
        **({"options": options} if options else {}),
    }  # fmt: skip
    return model


def tunable(spec: str) -> dict[str, tuple[float, float, str]]:
    """What an architecture declares as worth tuning besides the learning rate: its factory's
    ``TUNABLE`` attribute, ``{option: (low, high, "log" | "linear")}`` (empty when it declares
    nothing; e.g. the LRU's ring radius ``r_min``)."""
    factory = load_factory(spec)[1] if ":" in spec else BUILTIN.get(spec)
    return dict(getattr(factory, "TUNABLE", {}) or {})


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def match_hidden_size(spec: str, n_params: int, obs_dim: int = MNIST_OBS_DIM) -> int:
    """The hidden size whose model has the parameter count closest to ``n_params`` (the
    counts grow with the size; a binary search, then the nearer neighbour). Sizes come in
    steps of the smallest one the architecture accepts (the Transformer's: its head count)."""
    if isinstance(n_params, bool) or not isinstance(n_params, int) or n_params < 1:
        raise UsageError(f"n_params must be a positive integer, got {n_params!r}")

    def count(size: int) -> int:
        return n_parameters(build_architecture(spec, size, obs_dim, seed=0))

    step = next((s for s in range(1, 65) if _builds(spec, s, obs_dim)), None)
    if step is None:
        raise UsageError(f"{spec!r} builds with no hidden size from 1 to 64")
    low, high = 1, 1  # multiples of step
    while count(high * step) < n_params and high < 8192:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle * step) < n_params else (low, middle)
    return step * min((low, high), key=lambda m: (abs(count(m * step) - n_params), m))


def _builds(spec: str, hidden_size: int, obs_dim: int) -> bool:
    try:
        build_architecture(spec, hidden_size, obs_dim, seed=0)
    except UsageError:
        return False
    return True


def check_protocol(model: object, obs_dim: int, what: str = "model") -> None:
    """Raises ValueError naming ``what`` unless ``model`` is an ``nn.Module`` following
    `RecurrentAgent` whose ``forward`` maps ``[2, 1, obs_dim]`` to ``[2, 1, 11]`` logits and
    whose ``initial_state`` follows the parameters' dtype (the analysis runs a float64 copy)."""
    if not isinstance(model, nn.Module):
        raise UsageError(f"{what!r} returned a {type(model).__name__}, not a torch.nn.Module")
    try:
        check_agent(model)
    except TypeError as error:
        raise UsageError(f"{what!r}: {error}") from error
    p = next(iter(model.parameters()), None)
    obs = torch.zeros(2, 1, int(obs_dim), device=None if p is None else p.device)
    with torch.no_grad():
        out = model(obs, model.initial_state(2))
    logits = out[0] if isinstance(out, tuple) and len(out) == 2 else None
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, 1, N_OUTPUTS):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(out).__name__
        raise UsageError(
            f"{what!r}: forward(obs [2, 1, {obs_dim}]) must return (logits [2, 1, {N_OUTPUTS}], "
            f"state), got {shape}"
        )
    if p is not None and p.is_floating_point():
        # caught here, before training, rather than when the anchor speed is measured
        with torch.no_grad():
            state = copy.deepcopy(model).double().initial_state(2)
        parts = list(state) if isinstance(state, tuple | list) else [state]
        dtypes = sorted({str(part.dtype) for part in parts})
        if dtypes != ["torch.float64"]:
            raise UsageError(
                f"{what!r}: initial_state must use the parameters' dtype (the slow-point analysis "
                f"runs a float64 copy); after .double() it gave {dtypes}"
            )
