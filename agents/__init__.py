"""agents: supervised reference agents for the delayed-recall task.

* Models (`agents.models`): `RecurrentModel` (GRU, LSTM, tanh RNN; optional CIFAR-10 CNN
  front-end), `build_model`; any module following `RecurrentAgent` works everywhere. These are
  model family ``torch``; family ``authors`` (`agents.authors`: `AuthorsModel`,
  `AuthorsEnsemble`) is the authors' own GRU / LSTM, readout and loss.
* Loss (`agents.loss`): the paper's weighted cross-entropy with masked vocabulary (``torch``)
  and the authors' loss (``authors``), chosen by `model_family`.
* Training (`agents.trainer`): `TrainConfig`, `preset("paper" | "fast")`, `train`.
* Other memory architectures (`agents.architectures`): `LRUModel`, `MinGRUModel`,
  `CausalTransformer`, the `BUILTIN` registry and plug-in factories (`build_architecture`).
* Ensembles (`agents.ensemble`): `EnsembleModel`, K networks as one batched computation.
* Evaluation (`agents.evaluate`): `evaluate_delays`, `trained_accuracy`; figures in
  `agents.plots`; `RecurrentPolicy` acts in the Gymnasium envs (`agents.policy`).

The names below are imported lazily (PEP 562), so ``import agents.commands`` (which
``memenv --help`` does) does not import torch. See docs/agents.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "agents.architectures": (
        "BUILTIN",
        "CausalTransformer",
        "LRUModel",
        "MinGRUModel",
        "build_architecture",
        "load_factory",
    ),
    "agents.authors": ("AuthorsEnsemble", "AuthorsModel", "build_authors_model"),
    "agents.checkpoint": ("list_checkpoints", "load_model", "load_state"),
    "agents.config": ("TrainConfig", "preset"),
    "agents.ensemble": ("EnsembleModel",),
    "agents.evaluate": (
        "DEFAULT_DELAYS",
        "DelayAccuracy",
        "batch_correct",
        "evaluate_delays",
        "trained_accuracy",
        "wilson_interval",
    ),
    "agents.loss": (
        "LOSS_SCALE_VS_AUTHORS",
        "authors_loss",
        "mask_logits",
        "model_family",
        "predictions",
        "response_correct",
        "weighted_ce",
    ),
    "agents.models": ("RecurrentModel", "build_family_model", "build_model", "model_from_spec"),
    "agents.plots": ("plot_class_accuracy", "plot_delay_accuracy"),
    "agents.policy": ("RecurrentPolicy", "run_vector_episodes"),
    "agents.protocol": (
        "N_OUTPUTS",
        "RecurrentAgent",
        "State",
        "hidden",
        "state_from_tensor",
        "state_tensor",
    ),
    "agents.trainer": ("NonFiniteLossError", "TrainResult", "train"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
