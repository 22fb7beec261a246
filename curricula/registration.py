"""Registers the curriculum environment ids with Gymnasium.

The ids only name string entry points, so registering them imports nothing heavy;
`memenv.registration` may register the same ids from `CURRICULUM_ENV_IDS` (a second
registration of an id is skipped).
"""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "curricula.envs:make_curriculum_env"
VECTOR_ENTRY_POINT = "curricula.envs:make_curriculum_vector_env"

CURRICULUM_ENV_IDS = {
    f"DelayedRecall-{label}-{name}-v0": {"dataset": dataset, "curriculum": curriculum}
    for label, dataset in (
        ("MNIST", "mnist"),
        ("FashionMNIST", "fashion-mnist"),
        ("CIFAR10", "cifar10"),
    )
    for name, curriculum in (("VoCu", "vocu"), ("DeCu", "decu"))
}
"""Id -> registration kwargs, e.g. ``"DelayedRecall-MNIST-DeCu-v0": {"dataset": "mnist",
"curriculum": "decu"}``."""


def register_curriculum_envs() -> None:
    """Registers every id in `CURRICULUM_ENV_IDS` not yet registered."""
    for env_id, kwargs in CURRICULUM_ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
        )
