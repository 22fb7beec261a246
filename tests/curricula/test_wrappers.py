"""The wrappers switch stages at the right episode, and the env then samples the new setting."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import curricula
from curricula import AdaptiveSchedule, CurriculumWrapper, Schedule, VectorCurriculumWrapper
from memenv.env import DelayedRecallEnv
from memenv.vector_env import DelayedRecallVectorEnv

# Stage 0: 2 classes, responses before step 6. Stage 1 (from schedule step 3): 10 classes, T_max 20.
TWO_STAGES = Schedule([(0, {"n_classes": 2, "t_max": 6}), (3, {"n_classes": 10, "t_max": 20})])


@pytest.fixture(autouse=True)
def _tiny_mnist(mnist_root, monkeypatch):
    """Every env of these tests reads the tiny IDX MNIST of tests/conftest.py (fast)."""
    monkeypatch.setenv("MEMENV_DATA", str(mnist_root))


def run_episode(env, first_info, policy="target"):
    """Plays one episode; returns the infos of reset and every step."""
    infos = [first_info]
    info = first_info
    while True:
        action = info["target"] if policy == "target" else 0
        _, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            return infos


def single(schedule=TWO_STAGES, **kwargs):
    return CurriculumWrapper(DelayedRecallEnv("mnist"), schedule, **kwargs)


# ------------------------------------------------------------------------------ single env
def test_single_env_switches_at_the_right_episode_and_samples_the_new_setting():
    env = single(units_per_step=2)  # stage 1 from episode 6 on
    stages, t_resp, labels = [], [], []
    for episode in range(30):
        _, info = env.reset(seed=episode)
        assert env.unwrapped.config.n_classes == (2 if episode < 6 else 10)
        infos = run_episode(env, info)
        assert {i["curriculum_stage"] for i in infos} == {info["curriculum_stage"]}
        stages.append(info["curriculum_stage"])
        t_resp.append(info["t_resp"])
        labels.append(info["label"])
        assert info["curriculum_step"] == episode // 2
        assert info["curriculum_settings"] == TWO_STAGES.at(episode // 2)
    assert stages == [0] * 6 + [1] * 24
    assert max(t_resp[:6]) <= 5 and max(labels[:6]) <= 1
    assert max(t_resp[6:]) >= 10 and max(labels[6:]) >= 5


def test_single_env_counting_steps():
    env = single(unit="steps", units_per_step=50)  # 20-step episodes: stage 1 at step 150
    starts = []
    for _ in range(10):
        _, info = env.reset()
        starts.append((env.progress.count, info["curriculum_stage"]))
        run_episode(env, info)
    # the change waits for the episode boundary after step 150: episode 8 starts at step 160
    assert starts[7] == (140, 0) and starts[8] == (160, 1)


def test_single_env_reset_options_override_for_one_episode():
    env = single()
    _, info = env.reset(options={"t_max": 9, "noise_scale": 0.5})
    assert env.unwrapped.config.t_max == 9 and env.unwrapped.config.noise_scale == 0.5
    run_episode(env, info)
    env.reset()
    assert env.unwrapped.config.t_max == 6  # the schedule's setting is back
    assert env.unwrapped.config.noise_scale == 0.5  # not the schedule's: persists (env rule)


def test_single_env_fills_settings_a_stage_has_not_set_yet_from_the_base():
    schedule = Schedule([(0, {}), (1, {"noise_scale": 0.0})])
    env = CurriculumWrapper(DelayedRecallEnv("mnist", noise_scale=0.7), schedule, units_per_step=1)
    _, info = env.reset()
    assert info["curriculum_settings"] == {"noise_scale": 0.7}
    run_episode(env, info)
    _, info = env.reset()
    assert info["curriculum_settings"] == {"noise_scale": 0.0}
    env.load_curriculum_state_dict({**env.curriculum_state_dict(), "count": 0})
    env.reset()
    assert env.unwrapped.config.noise_scale == 0.7


def test_single_env_adaptive_advances_with_a_perfect_policy_only():
    def make(policy):
        schedule = AdaptiveSchedule([{"n_classes": 2}, {"n_classes": 10}], window=4)
        env = single(schedule, units_per_step=1)
        for _ in range(6):
            _, info = env.reset(seed=1)
            run_episode(env, info, policy)
        return env

    assert make("target").schedule.history == [(0, 0), (1, 4)]  # 4 correct responses
    assert make("null").schedule.stage == 0


def test_single_env_state_dict_round_trip_and_pickle():
    env = single(curricula.adaptive_decu(scale=0.001), units_per_step=1)
    for _ in range(3):
        _, info = env.reset(seed=0)
        run_episode(env, info)
    state = env.curriculum_state_dict()
    assert state["count"] == 3 and state["schedule"]["kind"] == "adaptive"
    clone = pickle.loads(pickle.dumps(env))
    assert clone.curriculum_state_dict() == state
    fresh = single(curricula.adaptive_decu(scale=0.001), units_per_step=1)
    fresh.load_curriculum_state_dict(state)
    assert fresh.curriculum_state_dict() == state
    with pytest.raises(ValueError, match="counts"):
        single(units_per_step=7).load_curriculum_state_dict(state)


def test_single_env_rejects_schedules_the_env_cannot_run():
    with pytest.raises(ValueError, match="t_max"):
        CurriculumWrapper(DelayedRecallEnv("mnist", n_steps=10, t_max=10), "vocu")
    with pytest.raises(ValueError, match="unit"):
        single(unit="trials")
    with pytest.raises(ValueError, match="units_per_step"):
        single(units_per_step=0)


def test_single_env_default_mapping_is_one_paper_batch_per_step():
    env = single("decu")
    assert env.progress.units_per_step == 128
    assert single("decu", unit="steps").progress.units_per_step == 128 * 20


# ------------------------------------------------------------------------------ vector env
def run_vector_episode(env, info):
    """Plays one lockstep episode with the perfect policy; returns the infos of every step."""
    infos = []
    while True:
        _, _, terminated, _, info = env.step(np.asarray(info["target"]))
        infos.append(info)
        if terminated.all():
            return infos


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_switches_at_the_right_episode(mode):
    base = DelayedRecallVectorEnv(4, "mnist", autoreset_mode=mode)
    env = VectorCurriculumWrapper(base, TWO_STAGES, units_per_step=4)  # 4 episodes = 1 step
    _, info = env.reset(seed=3)
    seen = []
    for _ in range(8):
        stage = int(info["curriculum_stage"][0])
        seen.append((stage, base.config.n_classes, base.config.t_max))
        assert info["_curriculum_stage"].all()
        assert info["curriculum_settings"]["n_classes"].tolist() == [base.config.n_classes] * 4
        t_resp, labels = info["t_resp"], info["label"]
        if stage == 0:
            assert t_resp.max() <= 5 and labels.max() <= 1
        infos = run_vector_episode(env, info)
        assert all(int(i["curriculum_stage"][0]) == stage for i in infos[:-1])
        if mode == "same_step":
            final = infos[-1]["final_info"]
            assert final["curriculum_stage"].tolist() == [stage] * 4
            info = infos[-1]
        else:
            assert infos[-1]["curriculum_stage"].tolist() == [stage] * 4
            _, _, _, _, info = env.step(np.zeros(4, dtype=np.int64))  # the autoreset step
    assert seen == [(0, 2, 6)] * 3 + [(1, 10, 20)] * 5
    assert env.progress.count == 32


def test_vector_env_samples_the_new_setting():
    env = VectorCurriculumWrapper(
        DelayedRecallVectorEnv(64, "mnist"), TWO_STAGES, units_per_step=64
    )
    _, info = env.reset(seed=0)
    for _ in range(3):
        assert info["t_resp"].max() <= 5 and set(info["label"].tolist()) == {0, 1}
        run_vector_episode(env, info)
        _, _, _, _, info = env.step(np.zeros(64, dtype=np.int64))
    assert info["curriculum_stage"][0] == 1
    assert info["t_resp"].max() >= 12 and len(set(info["label"].tolist())) >= 8


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_counting_steps(mode):
    base = DelayedRecallVectorEnv(2, "mnist", autoreset_mode=mode)
    env = VectorCurriculumWrapper(base, TWO_STAGES, unit="steps", units_per_step=30)
    _, info = env.reset(seed=0)
    stages = []
    for _ in range(4):  # 40 steps per lockstep episode: step 3 (count 90) ends in episode 3
        stages.append(int(info["curriculum_stage"][0]))
        infos = run_vector_episode(env, info)
        info = infos[-1] if mode == "same_step" else env.step(np.zeros(2, dtype=np.int64))[-1]
    assert stages == [0, 0, 0, 1]


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_adaptive(mode):
    schedule = AdaptiveSchedule([{"n_classes": 2}, {"n_classes": 10}], window=8)
    base = DelayedRecallVectorEnv(8, "mnist", autoreset_mode=mode)
    env = VectorCurriculumWrapper(base, schedule, units_per_step=8)
    _, info = env.reset(seed=0)
    classes = []
    for _ in range(4):
        classes.append(base.config.n_classes)
        infos = run_vector_episode(env, info)
        info = infos[-1] if mode == "same_step" else env.step(np.zeros(8, dtype=np.int64))[-1]
    assert schedule.history == [(0, 0), (1, 1)]  # 8 of 8 correct in the first episode
    # next_step applies the advance at the very next episode; same_step one episode later
    assert classes == ([2, 10, 10, 10] if mode == "next_step" else [2, 2, 10, 10])


def test_vector_env_make_vec_and_state():
    import gymnasium as gym

    env = gym.make_vec("DelayedRecall-MNIST-VoCu-v0", num_envs=128, curriculum_scale=0.001)
    assert isinstance(env, VectorCurriculumWrapper) and env.progress.units_per_step == 128
    _, info = env.reset(seed=0)
    assert info["curriculum_settings"]["n_classes"][0] == 2
    for _ in range(8):  # 8 lockstep episodes = 8 paper steps: VoCu x 0.001 has 3 classes at 8
        run_vector_episode(env, info)
        info = env.step(np.zeros(128, dtype=np.int64))[-1]
    assert env.unwrapped.config.n_classes == 3 and info["curriculum_step"][0] == 8
    state = env.curriculum_state_dict()
    assert state["count"] == 8 * 128
    env.close()


def test_vector_wrapper_needs_the_vector_native_env():
    import gymnasium as gym

    sync = gym.vector.SyncVectorEnv([lambda: DelayedRecallEnv("mnist")])
    with pytest.raises(ValueError, match="set_next_episode_options"):
        VectorCurriculumWrapper(sync, "decu")
