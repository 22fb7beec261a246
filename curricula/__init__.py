"""curricula: the training curricula of Haviv, Rivkind & Barak (2019) as data and as wrappers.

* Schedules: `Schedule` (fixed stages by step), `AdaptiveSchedule` (advance on accuracy);
  built-ins `none`, `vocu`, `decu`, `recu` (the authors' code's loss curriculum: null-step
  weight 0 -> 1), `adaptive_vocu`, `adaptive_decu`; `get_schedule` by name.
* `plot_schedule`: classes and T_max against training step.
* Wrappers: `CurriculumWrapper` (single env), `VectorCurriculumWrapper` (vector-native env);
  ``import curricula`` registers
  ``DelayedRecall-{MNIST,FashionMNIST,CIFAR10}-{VoCu,DeCu,ReCu}-v0``.

A trainer calls ``schedule.at(step)`` for the settings in force (apply them with
``config.with_episode_options(...)``) and, every step, ``schedule.observe(step, n_correct,
n_total)`` (a no-op for fixed schedules). See docs/curricula.md.
"""

from curricula.adaptive import AdaptiveSchedule, adaptive_decu, adaptive_vocu
from curricula.catalog import SCHEDULES, get_schedule, schedule_from_dict
from curricula.paper import PAPER_BATCH_SIZE, PAPER_TOTAL_STEPS, decu, none, recu, vocu
from curricula.plot import plot_paper_schedules, plot_schedule, schedule_steps
from curricula.progress import CurriculumProgress, EpisodeCurriculum
from curricula.registration import CURRICULUM_ENV_IDS, register_curriculum_envs
from curricula.schedule import Curriculum, Schedule, Stage
from curricula.wrappers import CurriculumWrapper, VectorCurriculumWrapper

register_curriculum_envs()

__all__ = [
    "PAPER_BATCH_SIZE",
    "PAPER_TOTAL_STEPS",
    "SCHEDULES",
    "AdaptiveSchedule",
    "CURRICULUM_ENV_IDS",
    "Curriculum",
    "CurriculumProgress",
    "CurriculumWrapper",
    "EpisodeCurriculum",
    "Schedule",
    "Stage",
    "VectorCurriculumWrapper",
    "adaptive_decu",
    "adaptive_vocu",
    "decu",
    "get_schedule",
    "none",
    "plot_paper_schedules",
    "plot_schedule",
    "recu",
    "register_curriculum_envs",
    "schedule_from_dict",
    "schedule_steps",
    "vocu",
]
