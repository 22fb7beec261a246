"""Registers the delayed-recall environments with Gymnasium (called by ``import memenv``)."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "DelayedRecall-MNIST-v0": "mnist",
    "DelayedRecall-FashionMNIST-v0": "fashion-mnist",
    "DelayedRecall-CIFAR10-v0": "cifar10",
}

# The curricula's ids: entry points are strings, so ``import memenv`` imports neither
# curricula nor torch; the wrapper is built when the id is made.
CURRICULUM_ENV_IDS = {
    f"DelayedRecall-{label}-{name}-v0": {"dataset": dataset, "curriculum": curriculum}
    for label, dataset in (
        ("MNIST", "mnist"),
        ("FashionMNIST", "fashion-mnist"),
        ("CIFAR10", "cifar10"),
    )
    for name, curriculum in (("VoCu", "vocu"), ("DeCu", "decu"))
}


def register_envs() -> None:
    """Registers every id in `ENV_IDS` and `CURRICULUM_ENV_IDS` once (again: a no-op)."""
    for env_id, dataset in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="memenv.env:DelayedRecallEnv",
            vector_entry_point="memenv.vector_env:DelayedRecallVectorEnv",
            kwargs={"dataset": dataset},
        )
    for env_id, kwargs in CURRICULUM_ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="curricula.envs:make_curriculum_env",
            vector_entry_point="curricula.envs:make_curriculum_vector_env",
            kwargs=dict(kwargs),
        )
