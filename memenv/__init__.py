"""memenv: the delayed-recall memory task of Haviv, Rivkind & Barak (ICML 2019) for Gymnasium.

``import memenv`` registers the environments (see `memenv.registration`).
"""

from memenv.config import TaskConfig
from memenv.data import CorruptDataError, DataSetNotFoundError, ImageSet, load_images
from memenv.registration import ENV_IDS, register_envs
from memenv.task import DelayedRecallTask, TrialBatch, TrialSpec

register_envs()

__version__ = "0.1.0"

__all__ = [
    "CorruptDataError",
    "DataSetNotFoundError",
    "DelayedRecallTask",
    "ENV_IDS",
    "ImageSet",
    "TaskConfig",
    "TrialBatch",
    "TrialSpec",
    "load_images",
]
