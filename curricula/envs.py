"""Factories behind the registered curriculum ids (``DelayedRecall-MNIST-DeCu-v0``...)."""

from __future__ import annotations

from typing import Any

from curricula.catalog import get_schedule
from curricula.schedule import Curriculum
from curricula.wrappers import CurriculumWrapper, VectorCurriculumWrapper
from memenv.env import DelayedRecallEnv
from memenv.vector_env import DelayedRecallVectorEnv


def make_curriculum_env(
    dataset: str = "mnist",
    curriculum: str | Curriculum = "decu",
    curriculum_scale: float = 1.0,
    curriculum_unit: str = "episodes",
    units_per_step: int | None = None,
    curriculum_options: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> CurriculumWrapper:
    """A `DelayedRecallEnv` wrapped in a `CurriculumWrapper` (the ``entry_point``).

    Args:
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        curriculum: A schedule name for `curricula.get_schedule` (``"decu"``, ``"vocu"``,
            ``"adaptive-decu"``...) or a schedule object.
        curriculum_scale: Multiplies the schedule's step axis (named schedules only).
        curriculum_unit: ``"episodes"`` or ``"steps"``.
        units_per_step: Counted units per schedule step (default: the paper's batch size in
            episodes; see `curricula.progress`).
        curriculum_options: Options of adaptive schedules (``threshold``, ``window``...).
        **env_kwargs: Passed to `DelayedRecallEnv` (``n_steps``, ``noise_scale``, ``root``...).
    """
    schedule = get_schedule(curriculum, dataset, curriculum_scale, **(curriculum_options or {}))
    env = DelayedRecallEnv(dataset, **env_kwargs)
    return CurriculumWrapper(env, schedule, curriculum_unit, units_per_step)


def make_curriculum_vector_env(
    num_envs: int = 1,
    dataset: str = "mnist",
    curriculum: str | Curriculum = "decu",
    curriculum_scale: float = 1.0,
    curriculum_unit: str = "episodes",
    units_per_step: int | None = None,
    curriculum_options: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> VectorCurriculumWrapper:
    """A `DelayedRecallVectorEnv` wrapped in a `VectorCurriculumWrapper` (``vector_entry_point``).

    Args: as `make_curriculum_env`, plus ``num_envs``; ``env_kwargs`` may hold
    ``autoreset_mode``.
    """
    schedule = get_schedule(curriculum, dataset, curriculum_scale, **(curriculum_options or {}))
    env = DelayedRecallVectorEnv(num_envs, dataset, **env_kwargs)
    return VectorCurriculumWrapper(env, schedule, curriculum_unit, units_per_step)
