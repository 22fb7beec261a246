"""K independent networks trained as one batched computation.

`EnsembleModel` stacks the parameters of K `RecurrentModel` s of one architecture
(``weight_ih [K, G*N, I]``, ...) and runs them together: the input projection of all steps is
one batched matmul, each recurrent step one batched matmul plus the cell's elementwise
equations (`agents.cells`), the readout one batched matmul. The members share no parameters and
no optimiser statistics (Adam is elementwise), so training the stack with the sum of the members'
losses trains each member exactly as if alone (up to floating-point summation order).

Why explicit stacking rather than ``torch.func.vmap`` over a per-member module: both compute the
same batched matmuls, but vmap adds per-operator dispatch overhead inside the time loop, and
cuDNN's fused RNN kernels cannot take per-row weights at all (see docs/agents.md for the
measurements). The CIFAR-10 CNN front-end, whose layers are not a simple matmul, is run through
``torch.func.vmap(functional_call)`` over its stacked parameters.

The authors' family has its own stacked class, `agents.authors.AuthorsEnsemble`, built on the
same plan; `is_ensemble`, `stack_members` and `build_ensemble` serve both families.

Shapes: K members, B trials per member, T steps, D observation size, N hidden units.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from agents.authors import AuthorsEnsemble, AuthorsModel
from agents.cells import GATES, cell_update
from agents.models import RecurrentModel, build_model, model_from_spec
from agents.protocol import State, check_model_family, hidden
from memenv.errors import UsageError

_SEP = "__"  # parameter names may not contain "." inside a ParameterDict


class EnsembleModel(nn.Module):
    """K stacked `RecurrentModel` s of one architecture.

    Observations may be per member, ``[K, B, T, D]`` (training: each member its own trials), or
    shared, ``[B, T, D]`` (evaluation: every member sees the same trials; the input projection is
    then one ``[B*T, D] x [D, K*G*N]`` matmul). Outputs and states always carry the member axis
    first: logits ``[K, B, T, 11]``, state ``[K, B, N]`` or ``(h, c)``.

    Args:
        members: The K models (same `RecurrentModel.spec`); their current weights are copied.

    Attributes:
        family: ``"torch"`` (`agents.loss.model_family`).
    """

    family = "torch"

    def __init__(self, members: Sequence[RecurrentModel]) -> None:
        super().__init__()
        if not members:
            raise UsageError("an ensemble needs at least one member")
        spec = members[0].spec()
        for i, m in enumerate(members):
            if m.spec() != spec:
                raise UsageError(f"member {i} has spec {m.spec()}, member 0 has {spec}")
        self.model_spec = spec
        self.cell = spec["cell"]
        self.n_members = len(members)
        self.hidden_size = members[0].hidden_size
        self.obs_dim = members[0].obs_dim
        self.n_outputs = members[0].n_outputs

        def stack(get) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach().clone() for m in members]))

        self.weight_ih = stack(lambda m: m.rnn.weight_ih_l0)
        self.weight_hh = stack(lambda m: m.rnn.weight_hh_l0)
        self.bias_ih = stack(lambda m: m.rnn.bias_ih_l0)
        self.bias_hh = stack(lambda m: m.rnn.bias_hh_l0)
        self.head_weight = stack(lambda m: m.head.weight)
        self.head_bias = stack(lambda m: m.head.bias)
        self.frontend_params: nn.ParameterDict | None = None
        self._frontend_template: list[nn.Module] = []  # a list hides it from nn.Module
        if members[0].frontend is not None:
            names = [n for n, _ in members[0].frontend.named_parameters()]
            self.frontend_params = nn.ParameterDict(
                {
                    n.replace(".", _SEP): stack(lambda m, n=n: m.frontend.get_parameter(n))
                    for n in names
                }
            )
            self._frontend_template.append(copy.deepcopy(members[0].frontend).to("meta"))

    # ------------------------------------------------------------------------ construction
    @classmethod
    def build(cls, seeds: Sequence[int], **model_kwargs: Any) -> EnsembleModel:
        """K fresh members; member k is initialised exactly like ``build_model(**model_kwargs)``
        after ``torch.manual_seed(seeds[k])``."""
        members = []
        for seed in seeds:
            torch.manual_seed(int(seed))
            members.append(build_model(**model_kwargs))
        return cls(members)

    def member(self, k: int) -> RecurrentModel:
        """Member ``k`` as an ordinary, independent `RecurrentModel` (a copy of its weights)."""
        if not 0 <= k < self.n_members:
            raise UsageError(
                f"member {k} does not exist: this ensemble has {self.n_members} members, "
                f"0..{self.n_members - 1}"
            )
        p = self.weight_ih
        model = model_from_spec(self.model_spec).to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            model.rnn.weight_ih_l0.copy_(self.weight_ih[k])
            model.rnn.weight_hh_l0.copy_(self.weight_hh[k])
            model.rnn.bias_ih_l0.copy_(self.bias_ih[k])
            model.rnn.bias_hh_l0.copy_(self.bias_hh[k])
            model.head.weight.copy_(self.head_weight[k])
            model.head.bias.copy_(self.head_bias[k])
            if self.frontend_params is not None:
                for name, stacked in self.frontend_params.items():
                    model.frontend.get_parameter(name.replace(_SEP, ".")).copy_(stacked[k])
        return model

    def members(self) -> list[RecurrentModel]:
        """All members, exported (`member`)."""
        return [self.member(k) for k in range(self.n_members)]

    # ---------------------------------------------------------------------------- protocol
    def initial_state(self, batch_size: int) -> State:
        """Zeros ``[K, B, N]`` (or ``(h, c)``)."""
        p = self.head_weight
        h = torch.zeros(
            self.n_members, batch_size, self.hidden_size, dtype=p.dtype, device=p.device
        )
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def forward(self, obs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Runs all members over ``T`` steps.

        Args:
            obs: ``[K, B, T, D]`` (per member) or ``[B, T, D]`` (shared).
            state: ``[K, B, N]`` / ``(h, c)`` or None for zeros.

        Returns:
            ``(logits [K, B, T, 11], state after the last step)``.
        """
        gi = self._input_projection(obs)  # [K, B, T, G*N]
        k, b, t, _ = gi.shape
        if state is None:
            state = self.initial_state(b)
        w_hh_t = self.weight_hh.transpose(1, 2)
        b_hh = self.bias_hh[:, None, :]
        outputs = []
        for step in range(t):
            gh = torch.baddbmm(b_hh, hidden(state), w_hh_t)
            state = cell_update(self.cell, gi[:, :, step], gh, state)
            outputs.append(hidden(state))
        hs = torch.stack(outputs, dim=2).reshape(k, b * t, self.hidden_size)
        logits = torch.baddbmm(self.head_bias[:, None, :], hs, self.head_weight.transpose(1, 2))
        return logits.reshape(k, b, t, self.n_outputs), state

    def transition(self, state: State, x: torch.Tensor) -> State:
        """One step for every member: ``x`` is ``[K, B, D]`` or shared ``[B, D]``."""
        gi = self._input_projection(x.unsqueeze(-2))[:, :, 0]
        gh = torch.baddbmm(self.bias_hh[:, None, :], hidden(state), self.weight_hh.transpose(1, 2))
        return cell_update(self.cell, gi, gh, state)

    def readout(self, state: State) -> torch.Tensor:
        """``[K, B, 11]`` unmasked logits."""
        return torch.baddbmm(
            self.head_bias[:, None, :], hidden(state), self.head_weight.transpose(1, 2)
        )

    # ----------------------------------------------------------------------------- helpers
    def _input_projection(self, obs: torch.Tensor) -> torch.Tensor:
        """``W_ih u + b_ih`` for every member: ``[K, B, T, G*N]``."""
        u = self._encode(obs)
        k = self.n_members
        gn = GATES[self.cell] * self.hidden_size
        if u.dim() == 3:  # shared input: one matmul against all members' weights
            b, t, i = u.shape
            gi = u.reshape(b * t, i) @ self.weight_ih.reshape(k * gn, i).t()
            gi = gi.reshape(b, t, k, gn).permute(2, 0, 1, 3)
            return gi + self.bias_ih[:, None, None, :]
        if u.dim() != 4 or u.shape[0] != k:
            raise UsageError(f"obs must be [K={k}, B, T, D] or [B, T, D], got {tuple(u.shape)}")
        _, b, t, i = u.shape
        gi = torch.baddbmm(
            self.bias_ih[:, None, :], u.reshape(k, b * t, i), self.weight_ih.transpose(1, 2)
        )
        return gi.reshape(k, b, t, gn)

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        if self.frontend_params is None:
            return obs
        from torch.func import functional_call, vmap

        template = self._frontend_template[0]
        params = {n.replace(_SEP, "."): p for n, p in self.frontend_params.items()}

        def run(p: dict[str, torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
            return functional_call(template, p, (pixels,))

        pixels = obs[..., :-1]
        shared = obs.dim() == 3
        features = vmap(run, in_dims=(0, None if shared else 0))(params, pixels)
        trigger = obs[..., -1:]
        if shared:
            trigger = trigger.expand(self.n_members, *trigger.shape)
        return torch.cat([features, trigger], dim=-1)


ENSEMBLE_CLASSES = (EnsembleModel, AuthorsEnsemble)
"""The stacked-ensemble classes of the two model families."""


def is_ensemble(model: object) -> bool:
    """Whether ``model`` is K stacked reference networks (either family)."""
    return isinstance(model, ENSEMBLE_CLASSES)


def stack_members(members: Sequence[nn.Module]) -> EnsembleModel | AuthorsEnsemble:
    """The ensemble of ``members`` (all `RecurrentModel` or all `AuthorsModel`)."""
    if members and all(isinstance(m, AuthorsModel) for m in members):
        return AuthorsEnsemble(members)
    return EnsembleModel(members)


def build_ensemble(
    family: str, seeds: Sequence[int], **model_kwargs: Any
) -> EnsembleModel | AuthorsEnsemble:
    """`EnsembleModel.build` (``family="torch"``) or `AuthorsEnsemble.build` (``"authors"``)."""
    check_model_family(family)
    cls = AuthorsEnsemble if family == "authors" else EnsembleModel
    return cls.build(seeds, **model_kwargs)
