"""Registers the delayed-recall environments with Gymnasium (called by ``import memenv``).

Entry points are strings, so registering imports neither torch nor the curricula: a
curriculum id builds its wrapper (in `curricula.envs`) only when it is made.
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "DelayedRecall-MNIST-v0": "mnist",
    "DelayedRecall-FashionMNIST-v0": "fashion-mnist",
    "DelayedRecall-CIFAR10-v0": "cifar10",
}

CURRICULUM_ENV_IDS = {
    f"DelayedRecall-{label}-{name}-v0": {"dataset": dataset, "curriculum": curriculum}
    for label, dataset in (
        ("MNIST", "mnist"),
        ("FashionMNIST", "fashion-mnist"),
        ("CIFAR10", "cifar10"),
    )
    for name, curriculum in (("VoCu", "vocu"), ("DeCu", "decu"), ("ReCu", "recu"))
}
"""Id -> registration kwargs, e.g. ``"DelayedRecall-MNIST-DeCu-v0": {"dataset": "mnist",
"curriculum": "decu"}``. ``-ReCu-v0`` ids raise the null steps' loss weight (``null_weight``,
reported as ``info["loss_weight"]``) over training; their rewards are those of the base env."""

# id -> (entry point, vector entry point, kwargs)
_REGISTRATIONS = {
    **{
        env_id: (
            "memenv.env:DelayedRecallEnv",
            "memenv.vector_env:DelayedRecallVectorEnv",
            {"dataset": dataset},
        )
        for env_id, dataset in ENV_IDS.items()
    },
    **{
        env_id: (
            "curricula.envs:make_curriculum_env",
            "curricula.envs:make_curriculum_vector_env",
            kwargs,
        )
        for env_id, kwargs in CURRICULUM_ENV_IDS.items()
    },
}


def register_envs() -> None:
    """Registers every id in `ENV_IDS` and `CURRICULUM_ENV_IDS` once (again: a no-op)."""
    for env_id, (entry_point, vector_entry_point, kwargs) in _REGISTRATIONS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=entry_point,
            vector_entry_point=vector_entry_point,
            kwargs=dict(kwargs),
        )
