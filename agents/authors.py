"""Model family ``authors``: the networks of Haviv, Rivkind & Barak (2019) as they wrote them.

The authors' TensorFlow code (``TriggerMNISTCloud.py``, functions ``GRURNN`` / ``LSTMRNN``)
writes its cells by hand. These differ from PyTorch's ``nn.GRU`` / ``nn.LSTM`` (model family
``torch``, `agents.models`) in the GRU's equations, in the biases, in the initialisation and in
the readout; docs/agents.md ("Model families") puts the two side by side. Here, with ``x`` the
observation ``[B, D]`` and ``h`` the state ``[B, N]`` (row vectors, ``x @ W``):

* GRU, state ``h``::

      z  = sigmoid(x Wz + h Uz + bz)
      r  = sigmoid(x Wr + h Ur + br)
      h' = (1 - z) * h + z * tanh(x Wh + (r * h) Uh + bh)

  (the reset gate acts on ``h`` before the recurrent matrix; ``z`` weighs the new candidate).

* LSTM without peepholes, state ``(h, c)``::

      f, i, o = sigmoid(x W* + h U* + b*)
      c' = f * c + i * tanh(x Wc + h Uc + bc)
      h' = o * tanh(c')

* One bias per gate; ``h0 = c0 = 0`` (the authors' first step is these equations at zero state).
* Initialisation: input matrices ``N(0, 1) / sqrt(D)``, recurrent matrices ``N(0, 1) / sqrt(N)``,
  gate biases ``0.01 N(0, 1)``, readout matrix ``N(0, 1) / sqrt(N)``, readout bias
  ``0.01 N(0, 1)``; drawn from torch's global generator (seed it with ``torch.manual_seed``).
* Readout: ``s = sigmoid(h Wo + bo)``, 11 outputs in [0, 1] (0 = null, k = class k - 1).
  `readout` and `forward` return ``s``; the probabilities ``softmax(M * s)`` (``M`` = 1 on active
  outputs, -1000 on classes outside the vocabulary) are formed by the loss
  (`agents.loss.authors_loss`). An argmax over the active outputs of ``s`` is the argmax of those
  probabilities (softmax is monotone), so predictions and accuracy use ``s`` like logits.

Storage: the gate blocks of each kind of matrix are concatenated along the output axis, in
PyTorch's gate order (GRU: r, z, h; LSTM: i, f, c, o), as row-vector maps:
``weight_x [D, G*N]``, ``weight_h [N, G*N]``, ``bias [G*N]``, ``readout_weight [N, 11]``,
``readout_bias [11]``. `AuthorsEnsemble` stacks K networks: the same names with a leading
member axis ``[K, ...]``; one set of equations (`authors_step`) serves both through batched
``matmul``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from agents.protocol import N_OUTPUTS, State, check_sizes, hidden
from memenv.errors import UsageError

FAMILY = "authors"
AUTHORS_CELLS = ("gru", "lstm")
GATE_ORDER = {"gru": ("r", "z", "h"), "lstm": ("i", "f", "c", "o")}
"""Column blocks of ``weight_x``, ``weight_h`` and ``bias`` (PyTorch's gate order)."""
BIAS_SCALE = 0.01
"""Standard deviation of the initial gate and readout biases."""


def check_authors_cell(cell: str) -> None:
    if cell not in AUTHORS_CELLS:
        raise UsageError(
            f"the authors' networks are {AUTHORS_CELLS}, got cell {cell!r} (the tanh RNN exists "
            "only in model family 'torch')"
        )


def authors_step(cell: str, xw: torch.Tensor, state: State, weight_h: torch.Tensor) -> State:
    """One step of the authors' cell, for one network or K stacked ones.

    Args:
        cell: ``"gru"`` or ``"lstm"``.
        xw: ``x Wx + b``, the input projection with the biases: ``[..., B, G*N]``.
        state: ``h [..., B, N]`` (GRU) or ``(h, c)`` (LSTM).
        weight_h: ``[..., N, G*N]`` (leading member axis for an ensemble).

    Returns:
        The next state, with the structure of ``state``.
    """
    h = hidden(state)
    n = h.shape[-1]
    if cell == "gru":
        x_r, x_z, x_h = xw.split(n, dim=-1)
        h_r, h_z = torch.matmul(h, weight_h[..., : 2 * n]).split(n, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_h + torch.matmul(r * h, weight_h[..., 2 * n :]))
        return (1 - z) * h + z * candidate
    if cell == "lstm":
        c = state[1]
        i, f, g, o = (xw + torch.matmul(h, weight_h)).split(n, dim=-1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next
    check_authors_cell(cell)
    raise AssertionError("unreachable")


class _AuthorsNetworks(nn.Module):
    """Parameters and equations shared by `AuthorsModel` (``members = ()``) and
    `AuthorsEnsemble` (``members = (K,)``): every tensor carries ``members`` as leading axes."""

    family = FAMILY

    def __init__(
        self, cell: str, obs_dim: int, hidden_size: int, n_outputs: int, members: tuple[int, ...]
    ) -> None:
        super().__init__()
        check_authors_cell(cell)
        check_sizes(obs_dim, hidden_size)
        self.cell = cell
        self.obs_dim = int(obs_dim)
        self.hidden_size = int(hidden_size)
        self.n_outputs = int(n_outputs)
        self._members = members
        gn = len(GATE_ORDER[cell]) * self.hidden_size

        def empty(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*members, *shape))

        self.weight_x = empty(self.obs_dim, gn)
        self.weight_h = empty(self.hidden_size, gn)
        self.bias = empty(gn)
        self.readout_weight = empty(self.hidden_size, self.n_outputs)
        self.readout_bias = empty(self.n_outputs)

    def spec(self) -> dict[str, Any]:
        """JSON-able arguments of `agents.models.model_from_spec` (one network's architecture)."""
        return {
            "family": FAMILY,
            "cell": self.cell,
            "obs_dim": self.obs_dim,
            "hidden_size": self.hidden_size,
            "n_outputs": self.n_outputs,
        }

    # ---------------------------------------------------------------------------- protocol
    def initial_state(self, batch_size: int) -> State:
        """Zeros ``[*members, B, N]`` (or ``(h, c)``), in the parameters' dtype and device."""
        p = self.readout_weight
        h = torch.zeros(
            *self._members, batch_size, self.hidden_size, dtype=p.dtype, device=p.device
        )
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def forward(self, obs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Runs ``T`` steps: ``obs [..., B, T, D]`` -> ``(outputs s [*members, B, T, 11], state
        after the last step)``; ``outputs[..., t, :] == readout(state after step t)``."""
        xw = self._input_projection(obs)  # [*members, B, T, G*N]
        if state is None:
            state = self.initial_state(xw.shape[-3])
        hs = []
        for t in range(xw.shape[-2]):
            state = authors_step(self.cell, xw[..., t, :], state, self.weight_h)
            hs.append(hidden(state))
        return self._outputs(torch.stack(hs, dim=-2)), state

    def transition(self, state: State, x: torch.Tensor) -> State:
        """One step for an observation ``x [..., B, D]``."""
        xw = self._input_projection(x.unsqueeze(-2))[..., 0, :]
        return authors_step(self.cell, xw, state, self.weight_h)

    def readout(self, state: State) -> torch.Tensor:
        """``s = sigmoid(h Wo + bo)``: ``[*members, B, 11]`` in [0, 1]."""
        return self._outputs(hidden(state))

    # ----------------------------------------------------------------------------- helpers
    def _check_obs(self, obs: torch.Tensor) -> None:
        """Single network: ``[B, T, D]``."""
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise UsageError(f"obs must be [B, T, D={self.obs_dim}], got {tuple(obs.shape)}")

    def _input_projection(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs Wx + b`` for all steps: ``[..., B, T, D]`` -> ``[*members, B, T, G*N]``, as one
        matmul over all ``B*T`` rows (per member)."""
        self._check_obs(obs)
        b, t = obs.shape[-3], obs.shape[-2]
        rows = obs.reshape(*obs.shape[:-3], b * t, self.obs_dim)
        xw = torch.matmul(rows, self.weight_x) + self.bias.unsqueeze(-2)
        return xw.reshape(*xw.shape[:-2], b, t, xw.shape[-1])

    def _outputs(self, h: torch.Tensor) -> torch.Tensor:
        """``sigmoid(h Wo + bo)`` for ``h [*members, ..., N]`` (rows flattened per member)."""
        lead = len(self._members)
        rows = h.reshape(*h.shape[:lead], -1, self.hidden_size)
        s = torch.sigmoid(torch.matmul(rows, self.readout_weight) + self.readout_bias.unsqueeze(-2))
        return s.reshape(*h.shape[:-1], self.n_outputs)


class AuthorsModel(_AuthorsNetworks):
    """One authors' GRU or LSTM with its sigmoid readout (follows `RecurrentAgent`).

    Args:
        cell: ``"gru"`` or ``"lstm"``.
        obs_dim: D, the observation size (785 for MNIST: 784 pixels + trigger).
        hidden_size: N (the paper: 200).
        n_outputs: Readout size (11).

    Attributes:
        family: ``"authors"`` (`agents.loss.model_family`: the trainer uses the authors' loss).

    States: ``h [B, N]`` (GRU) or ``(h [B, N], c [B, N])`` (LSTM); outputs ``s [B, T, 11]``.
    Parameters are drawn at construction with the authors' initialisation (module docstring)
    from torch's global generator.
    """

    def __init__(
        self, cell: str, obs_dim: int, hidden_size: int, n_outputs: int = N_OUTPUTS
    ) -> None:
        super().__init__(cell, obs_dim, hidden_size, n_outputs, members=())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation (module docstring), from torch's global generator."""
        with torch.no_grad():
            self.weight_x.normal_(0.0, 1.0 / math.sqrt(self.obs_dim))
            self.weight_h.normal_(0.0, 1.0 / math.sqrt(self.hidden_size))
            self.bias.normal_(0.0, BIAS_SCALE)
            self.readout_weight.normal_(0.0, 1.0 / math.sqrt(self.hidden_size))
            self.readout_bias.normal_(0.0, BIAS_SCALE)


class AuthorsEnsemble(_AuthorsNetworks):
    """K authors' networks of one architecture, trained as one batched computation.

    The counterpart of `agents.ensemble.EnsembleModel` for this family: parameters carry a
    leading member axis (``weight_x [K, D, G*N]``, ``weight_h [K, N, G*N]``, ...), each step is
    one batched matmul per matrix for all members. Observations are per member
    ``[K, B, T, D]`` (training) or shared ``[B, T, D]`` (evaluation); outputs ``[K, B, T, 11]``,
    states ``[K, B, N]`` or ``(h, c)``.

    Args:
        members: The K `AuthorsModel` s (same `spec`); their current weights are copied.
    """

    def __init__(self, members: Sequence[AuthorsModel]) -> None:
        if not members:
            raise UsageError("an ensemble needs at least one member")
        spec = members[0].spec()
        for i, m in enumerate(members):
            if not isinstance(m, AuthorsModel) or m.spec() != spec:
                got = m.spec() if isinstance(m, AuthorsModel) else type(m).__name__
                raise UsageError(f"member {i} is {got}, member 0 has {spec}")
        super().__init__(
            spec["cell"], spec["obs_dim"], spec["hidden_size"], spec["n_outputs"], (len(members),)
        )
        self.model_spec = spec
        self.n_members = len(members)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.stack([m.get_parameter(name).detach() for m in members]))

    @classmethod
    def build(cls, seeds: Sequence[int], **model_kwargs: Any) -> AuthorsEnsemble:
        """K fresh members; member k is initialised exactly like
        ``build_authors_model(**model_kwargs)`` after ``torch.manual_seed(seeds[k])``."""
        members = []
        for seed in seeds:
            torch.manual_seed(int(seed))
            members.append(build_authors_model(**model_kwargs))
        return cls(members)

    def member(self, k: int) -> AuthorsModel:
        """Member ``k`` as an independent `AuthorsModel` (a copy of its weights)."""
        if not 0 <= k < self.n_members:
            raise UsageError(
                f"member {k} does not exist: this ensemble has {self.n_members} members, "
                f"0..{self.n_members - 1}"
            )
        p = self.weight_x
        model = authors_model_from_spec(self.model_spec).to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            for name, stacked in self.named_parameters():
                model.get_parameter(name).copy_(stacked[k])
        return model

    def members(self) -> list[AuthorsModel]:
        """All members, exported (`member`)."""
        return [self.member(k) for k in range(self.n_members)]

    def _check_obs(self, obs: torch.Tensor) -> None:
        """``[K, B, T, D]`` (per member) or ``[B, T, D]`` (shared)."""
        k = self.n_members
        per_member = obs.dim() == 4 and obs.shape[0] == k
        if not (per_member or obs.dim() == 3) or obs.shape[-1] != self.obs_dim:
            raise UsageError(
                f"obs must be [K={k}, B, T, D={self.obs_dim}] or [B, T, D], got {tuple(obs.shape)}"
            )


def authors_model_from_spec(spec: dict[str, Any]) -> AuthorsModel:
    """Rebuilds an (untrained) `AuthorsModel` from `AuthorsModel.spec`."""
    return AuthorsModel(
        cell=spec["cell"],
        obs_dim=int(spec["obs_dim"]),
        hidden_size=int(spec["hidden_size"]),
        n_outputs=int(spec.get("n_outputs", N_OUTPUTS)),
    )


def build_authors_model(
    cell: str = "gru",
    hidden_size: int = 200,
    dataset: str | None = "mnist",
    obs_dim: int | None = None,
    frontend: str = "auto",
) -> AuthorsModel:
    """The authors' network for a 28 x 28 data set (arguments as `agents.models.build_model`).

    Raises:
        UsageError: ``cell="rnn"``, ``dataset="cifar10"`` or ``frontend="cnn"`` (the authors'
            CNN front-end is not part of this family: train CIFAR-10 with model family
            ``torch``), or sizes that do not fit.
    """
    from memenv.data import FRAME_SHAPES

    check_authors_cell(cell)
    if frontend not in ("auto", "none"):
        raise UsageError(
            f"model family 'authors' has no CNN front-end (frontend={frontend!r}); use "
            "frontend='auto' or 'none', or model family 'torch'"
        )
    if dataset == "cifar10":
        raise UsageError(
            "model family 'authors' covers MNIST and Fashion-MNIST only, not dataset='cifar10' "
            "(no CNN front-end); train CIFAR-10 with model family 'torch'"
        )
    if dataset is not None:
        if dataset not in FRAME_SHAPES:
            raise UsageError(f"dataset must be one of {tuple(FRAME_SHAPES)}, got {dataset!r}")
        pixels = math.prod(FRAME_SHAPES[dataset])
        if obs_dim is not None and obs_dim != pixels + 1:
            raise UsageError(f"obs_dim={obs_dim} does not match {dataset} ({pixels + 1})")
        obs_dim = pixels + 1
    elif obs_dim is None:
        raise UsageError("give dataset or obs_dim")
    return AuthorsModel(cell, obs_dim, hidden_size)
