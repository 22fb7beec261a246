"""Registers the delayed-recall environments with Gymnasium (called by ``import memenv``)."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "DelayedRecall-MNIST-v0": "mnist",
    "DelayedRecall-FashionMNIST-v0": "fashion-mnist",
    "DelayedRecall-CIFAR10-v0": "cifar10",
}


def register_envs() -> None:
    """Registers every id in `ENV_IDS` once (a second call is a no-op)."""
    for env_id, dataset in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="memenv.env:DelayedRecallEnv",
            vector_entry_point="memenv.vector_env:DelayedRecallVectorEnv",
            kwargs={"dataset": dataset},
        )
