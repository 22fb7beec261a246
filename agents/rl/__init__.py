"""Reinforcement learning on the delayed-recall envs with stable-baselines3 (and sb3-contrib).

* `SB3VecEnv` / `make_sb3_vec_env`: SB3's `VecEnv` over the vector-native env (with `Monitor`'s
  episode statistics).
* `FrameTriggerExtractor`: a small CNN over the frame for SB3 policies (SB3's `CnnPolicy`
  refuses images under 36x36), the trigger passed around it.
* `agents.rl.policies.SequenceLstmPolicy`: sb3-contrib's ``MlpLstmPolicy`` with faster updates
  (imports sb3-contrib).
* `agents.rl.evaluate`: held-out accuracy of an SB3 model, overall and against delay (a
  `VecNormalize`'s statistics applied, frozen).
* `agents.rl.experiment`: `RLConfig` and `train_rl` (run directories, learning curves, the
  adaptive curriculum).

See docs/rl.md.
"""

from agents.rl.features import FrameTriggerExtractor
from agents.rl.vec_env import SB3VecEnv, make_sb3_vec_env

__all__ = ["FrameTriggerExtractor", "SB3VecEnv", "make_sb3_vec_env"]
