"""Reference recurrent models: GRU, LSTM and vanilla tanh RNN, with an optional CNN front-end.

`RecurrentModel.forward` runs PyTorch's fused recurrent kernels (cuDNN on CUDA);
`RecurrentModel.transition` computes one step with the same parameters through the explicit
equations of `agents.cells` (differentiable twice, ``torch.func``-friendly), and the tests check
that the two agree.

The readout is a plain linear layer ``W h + b`` giving 11 logits (0 = null, k = class k - 1).
Classes outside the active vocabulary are masked out where logits are used (`agents.loss`),
not inside the model. These are model family ``torch``; the authors' own networks (their GRU
equations, initialisation and ``softmax(mask * sigmoid(W h + b))`` readout) are family
``authors`` (`agents.authors`). `model_from_spec` and `build_family_model` build either.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from agents.authors import authors_model_from_spec, build_authors_model
from agents.cells import GATES, cell_update, check_cell
from agents.frontend import ConvFrontend
from agents.protocol import N_OUTPUTS, State, check_model_family, check_sizes, hidden
from memenv.errors import ArgumentTypeError, UsageError

_RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class RecurrentModel(nn.Module):
    """A one-layer recurrent network with a linear readout (follows `RecurrentAgent`).

    Args:
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"`` (tanh).
        obs_dim: D, the observation size (pixels + trigger).
        hidden_size: N, units of the cell.
        frontend: Optional module mapping the pixels ``[..., D - 1]`` to features
            ``[..., F]`` (with an ``out_features`` attribute); the trigger bypasses it and the
            cell sees ``F + 1`` inputs.
        n_outputs: Readout size (11).

    Attributes:
        input_size: What the cell sees per step: D, or F + 1 with a front-end.
        family: ``"torch"`` (`agents.loss.model_family`).
    """

    family = "torch"

    def __init__(
        self,
        cell: str,
        obs_dim: int,
        hidden_size: int,
        frontend: nn.Module | None = None,
        n_outputs: int = N_OUTPUTS,
    ) -> None:
        super().__init__()
        check_cell(cell)
        check_sizes(obs_dim, hidden_size)
        self.cell = cell
        self.obs_dim = int(obs_dim)
        self.hidden_size = int(hidden_size)
        self.n_outputs = int(n_outputs)
        self.frontend = frontend
        if frontend is not None:
            if getattr(frontend, "in_features", obs_dim - 1) != obs_dim - 1:
                raise UsageError(
                    f"frontend takes {frontend.in_features} pixels but obs_dim - 1 = {obs_dim - 1}"
                )
            self.input_size = int(frontend.out_features) + 1
        else:
            self.input_size = self.obs_dim
        self.rnn = _RNN_CLASSES[cell](self.input_size, self.hidden_size, batch_first=True)
        self.head = nn.Linear(self.hidden_size, self.n_outputs)

    # --------------------------------------------------------------------------- protocol
    def initial_state(self, batch_size: int) -> State:
        """Zeros: ``h [B, N]`` or ``(h, c)`` for the LSTM, on the model's device."""
        p = self.head.weight
        h = torch.zeros(batch_size, self.hidden_size, dtype=p.dtype, device=p.device)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def forward(self, obs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Runs the fused kernel over ``T`` steps.

        Args:
            obs: float32 ``[B, T, D]``.
            state: ``h [B, N]`` / ``(h, c)``, or None for zeros.

        Returns:
            ``(logits [B, T, 11], state after the last step)``.
        """
        u = self.encode(obs)
        if state is None:
            h0 = None
        elif self.cell == "lstm":
            h0 = (state[0].unsqueeze(0).contiguous(), state[1].unsqueeze(0).contiguous())
        else:
            h0 = state.unsqueeze(0).contiguous()
        out, h_n = self.rnn(u, h0)
        final = (h_n[0][0], h_n[1][0]) if self.cell == "lstm" else h_n[0]
        return self.head(out), final

    def transition(self, state: State, x: torch.Tensor) -> State:
        """One step ``F(state, x)`` for an observation ``x [B, D]`` (front-end applied)."""
        return self.cell_step(state, self.encode(x))

    def readout(self, state: State) -> torch.Tensor:
        """``[B, 11]`` unmasked logits of ``hidden(state)``."""
        return self.head(hidden(state))

    # ----------------------------------------------------------------------------- extras
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """What the cell sees: ``obs [..., D]`` itself, or ``[front-end(pixels), trigger]``."""
        if self.frontend is None:
            return obs
        return torch.cat([self.frontend(obs[..., :-1]), obs[..., -1:]], dim=-1)

    def cell_step(self, state: State, u: torch.Tensor) -> State:
        """One step of the cell on an already-encoded input ``u [B, input_size]``.

        For CIFAR-10 models this is the analysis' F with a fixed *feature* input (docs/paper.md: the
        mean of the CNN features over noise frames).
        """
        rnn = self.rnn
        gi = torch.nn.functional.linear(u, rnn.weight_ih_l0, rnn.bias_ih_l0)
        gh = torch.nn.functional.linear(hidden(state), rnn.weight_hh_l0, rnn.bias_hh_l0)
        return cell_update(self.cell, gi, gh, state)

    @property
    def n_gates(self) -> int:
        return GATES[self.cell]

    def spec(self) -> dict[str, Any]:
        """JSON-able arguments of `model_from_spec` that rebuild this architecture."""
        frontend = None
        if self.frontend is not None:
            if not isinstance(self.frontend, ConvFrontend):
                raise ArgumentTypeError(
                    "spec() only describes models whose front-end is ConvFrontend"
                )
            frontend = self.frontend.spec()
        return {
            "family": "torch",
            "cell": self.cell,
            "obs_dim": self.obs_dim,
            "hidden_size": self.hidden_size,
            "frontend": frontend,
            "n_outputs": self.n_outputs,
        }


def model_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuilds an (untrained) model from its ``spec()``: a `RecurrentModel`, or an
    `agents.authors.AuthorsModel` when ``spec["family"] == "authors"`` (a spec without
    ``family``, as written before families existed, is ``torch``)."""
    family = spec.get("family", "torch")
    check_model_family(family)
    if family == "authors":
        return authors_model_from_spec(spec)
    frontend = spec.get("frontend")
    return RecurrentModel(
        cell=spec["cell"],
        obs_dim=int(spec["obs_dim"]),
        hidden_size=int(spec["hidden_size"]),
        frontend=None if frontend is None else ConvFrontend(**_frontend_args(frontend)),
        n_outputs=int(spec.get("n_outputs", N_OUTPUTS)),
    )


def _frontend_args(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "frame_shape": tuple(spec["frame_shape"]),
        "channels": int(spec["channels"]),
        "fc_sizes": tuple(spec["fc_sizes"]),
        "negative_slope": float(spec["negative_slope"]),
    }


def build_model(
    cell: str = "gru",
    hidden_size: int = 200,
    dataset: str | None = "mnist",
    obs_dim: int | None = None,
    frontend: str = "auto",
    negative_slope: float = 0.2,
) -> RecurrentModel:
    """The reference model for a data set (the authors' architectures, docs/paper.md).

    Args:
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        hidden_size: Units (paper: 200 for MNIST, 512 for CIFAR-10).
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``; sets ``obs_dim`` and the
            frame shape. May be None when ``obs_dim`` is given (no front-end then).
        obs_dim: Observation size; must match the data set when both are given.
        frontend: ``"auto"`` (the CNN for CIFAR-10, none otherwise), ``"cnn"`` or ``"none"``.
        negative_slope: Leaky-ReLU slope of the CNN.

    Returns:
        A freshly initialised `RecurrentModel` (PyTorch's default initialisation;
        ``h0 = c0 = 0``).
    """
    from memenv.data import FRAME_SHAPES

    check_cell(cell)
    if frontend not in ("auto", "cnn", "none"):
        raise UsageError(f"frontend must be 'auto', 'cnn' or 'none', got {frontend!r}")
    frame_shape = None
    if dataset is not None:
        if dataset not in FRAME_SHAPES:
            raise UsageError(f"dataset must be one of {tuple(FRAME_SHAPES)}, got {dataset!r}")
        frame_shape = FRAME_SHAPES[dataset]
        pixels = frame_shape[0] * frame_shape[1] * frame_shape[2]
        if obs_dim is not None and obs_dim != pixels + 1:
            raise UsageError(f"obs_dim={obs_dim} does not match {dataset} ({pixels + 1})")
        obs_dim = pixels + 1
    elif obs_dim is None:
        raise UsageError("give dataset or obs_dim")
    use_cnn = frontend == "cnn" or (frontend == "auto" and dataset == "cifar10")
    if use_cnn and frame_shape is None:
        raise UsageError("frontend='cnn' needs a dataset (for the frame shape)")
    module = ConvFrontend(frame_shape, negative_slope=negative_slope) if use_cnn else None
    return RecurrentModel(cell, obs_dim, hidden_size, frontend=module)


def build_family_model(family: str = "torch", **kwargs: Any) -> nn.Module:
    """`build_model` (``family="torch"``) or `agents.authors.build_authors_model`
    (``"authors"``: GRU / LSTM on 28 x 28 data only) with the same keyword arguments."""
    check_model_family(family)
    if family == "authors":
        return build_authors_model(**kwargs)
    return build_model(**kwargs)
