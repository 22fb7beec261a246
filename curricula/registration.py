"""The curriculum environment ids: registered by `memenv.registration`, re-exported here."""

from __future__ import annotations

from memenv.registration import CURRICULUM_ENV_IDS, register_envs

__all__ = ["CURRICULUM_ENV_IDS", "register_curriculum_envs"]


def register_curriculum_envs() -> None:
    """Registers the curriculum ids (and the base ids) not yet registered."""
    register_envs()
