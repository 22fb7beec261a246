"""ReCu, the authors' loss curriculum: the null steps' loss weight grows from 0 to 1.

The boundaries are those of ``ZeroWeight`` in the authors' ``TriggerMNISTCloud.py`` (lines
148-154) and ``TriggerCIFARCloud.py`` (lines 154-160), transcribed below as data.
"""

from __future__ import annotations

import json
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

import curricula
from agents.batches import BatchSource
from agents.config import TrainConfig
from agents.schedule import resolve_schedule
from agents.trainer import train
from curricula import CurriculumWrapper, Schedule, VectorCurriculumWrapper, get_schedule
from memenv.config import TaskConfig
from memenv.env import DelayedRecallEnv
from memenv.task import DelayedRecallTask
from memenv.vector_env import DelayedRecallVectorEnv

# The authors' slices ZeroWeight[a:b] = w, for their 1-based step s reading ZeroWeight[s - 1]:
# so index i is our 0-based step i.
AUTHORS_SLICES = [
    (0, 20_000, 0.0),
    (20_000, 30_000, 0.25),
    (30_000, 40_000, 0.5),
    (40_000, 50_000, 0.75),
    (50_000, 60_000, 0.75),
    (60_000, None, 1.0),
]
BOUNDARY_PROBES = {
    0: 0.0,
    19_999: 0.0,
    20_000: 0.25,
    29_999: 0.25,
    30_000: 0.5,
    39_999: 0.5,
    40_000: 0.75,
    49_999: 0.75,
    50_000: 0.75,
    59_999: 0.75,
    60_000: 1.0,
    139_999: 1.0,
    10**9: 1.0,
}
# scale 1e-4: boundaries 0, 2, 3, 4, 6 (of 14 steps)
SMALL = 1e-4
SMALL_NULL_WEIGHTS = [0.0, 0.0, 0.25, 0.5, 0.75, 0.75, 1.0, 1.0]


def authors_zero_weight(training_steps: int) -> np.ndarray:
    weights = np.ones(training_steps)
    for start, stop, value in AUTHORS_SLICES:
        weights[start : training_steps if stop is None else stop] = value
    return weights


@pytest.fixture(autouse=True)
def _tiny_mnist(mnist_root, monkeypatch):
    """Every env of these tests reads the tiny IDX MNIST of tests/conftest.py (fast)."""
    monkeypatch.setenv("MEMENV_DATA", str(mnist_root))


def null_weight_at(info) -> float:
    """The null-step weight an info reports (the response weighs 19 more)."""
    weight = float(np.asarray(info["loss_weight"]).flat[0])
    return weight - 19.0 if bool(np.asarray(info["is_response"]).flat[0]) else weight


# ------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("step", sorted(BOUNDARY_PROBES))
def test_recu_boundaries(step):
    schedule = get_schedule("recu")
    assert schedule.at(step) == {"null_weight": BOUNDARY_PROBES[step], "n_classes": 10, "t_max": 20}


@pytest.mark.parametrize(("dataset", "total"), [("mnist", 140_000), ("cifar10", 300_000)])
def test_recu_equals_the_authors_zero_weight_at_every_step(dataset, total):
    schedule = curricula.recu(dataset)
    assert schedule.name == "recu" and schedule.total_steps == total
    assert schedule.starts == [0, 20_000, 30_000, 40_000, 60_000]
    per_stage = np.array([s["null_weight"] for s in schedule.stage_settings()])
    ours = per_stage[[schedule.stage_index(step) for step in range(total)]]
    np.testing.assert_array_equal(ours, authors_zero_weight(total))
    assert curricula.recu("fashion-mnist").stages == curricula.recu("mnist").stages


def test_resolve_schedule_recu_with_a_scale():
    schedule = resolve_schedule("recu", "mnist", 0.01)
    assert schedule == get_schedule("ReCu", "mnist", scale=0.01)
    assert schedule.starts == [0, 200, 300, 400, 600] and schedule.total_steps == 1_400
    assert [schedule.at(s)["null_weight"] for s in (199, 200, 599, 600)] == [0.0, 0.25, 0.75, 1.0]
    cifar = resolve_schedule("recu", "cifar10", SMALL)
    assert cifar.starts == [0, 2, 3, 4, 6] and cifar.total_steps == 30
    with pytest.raises(ValueError, match="too small"):
        resolve_schedule("recu", "mnist", 1e-5)  # 0.25 and 0.5 would start at the same step


def test_schedules_refuse_a_null_weight_the_task_refuses():
    with pytest.raises(ValueError, match="null_weight"):
        Schedule([(0, {"null_weight": 1.5})], name="bad")
    with pytest.raises(ValueError, match="null_weight"):
        curricula.AdaptiveSchedule([{"null_weight": 0.5}, {"null_weight": -1}])


def test_recu_state_round_trips_through_json_and_protocol():
    schedule = curricula.recu(scale=0.5)
    rebuilt = curricula.schedule_from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert rebuilt == schedule and rebuilt.stage_settings() == schedule.stage_settings()
    assert not schedule.is_adaptive and schedule.state_dict() == {}
    assert pickle.loads(pickle.dumps(schedule)) == schedule


# ------------------------------------------------------------------------------ training
def test_batch_source_carries_the_schedules_null_weight_into_loss_weight(mnist_root):
    task = DelayedRecallTask(TaskConfig(), root=mnist_root)
    source = BatchSource(task, n_members=2, batch_size=4, device=torch.device("cpu"))
    schedule = curricula.recu()
    for step, alpha in ((0, 0.0), (25_000, 0.25), (45_000, 0.75), (70_000, 1.0)):
        batch = source.draw([schedule.at(step)] * 2, torch.Generator().manual_seed(step))
        is_resp = batch.target != 0
        assert (batch.loss_weight[~is_resp] == alpha).all()
        assert (batch.loss_weight[is_resp] == 19.0 + alpha).all() and is_resp.sum() == 8
        assert batch.task_configs[0].null_weight == alpha


def test_train_with_curriculum_recu_weighs_the_null_steps_by_stage(
    mnist_root, tmp_path, monkeypatch
):
    """``memenv train --curriculum recu``: each step's batch carries that step's null weight."""
    seen = []
    real_draw = BatchSource.draw

    def draw(self, changes, rng):
        batch = real_draw(self, changes, rng)
        is_resp = batch.target != 0
        nulls = torch.unique(batch.loss_weight[~is_resp]).tolist()
        responses = torch.unique(batch.loss_weight[is_resp]).tolist()
        seen.append((nulls, responses))
        return batch

    monkeypatch.setattr(BatchSource, "draw", draw)
    config = TrainConfig(
        data_root=str(mnist_root),
        hidden_size=8,
        batch_size=8,
        total_steps=8,
        curriculum="recu",
        curriculum_scale=SMALL,
        checkpoint_every=8,
        log_every=4,
        device="cpu",
    )
    result = train(config, tmp_path / "run", progress=False)
    assert result.finished
    assert seen == [([alpha], [19.0 + alpha]) for alpha in SMALL_NULL_WEIGHTS]


# ------------------------------------------------------------------------------ Gymnasium
def run_episode(env, info):
    """Plays one episode answering right; returns the infos and rewards of every step."""
    infos, rewards = [info], []
    while True:
        _, reward, terminated, truncated, info = env.step(info["target"])
        infos.append(info)
        rewards.append(reward)
        if terminated or truncated:
            return infos, rewards


def test_single_wrapper_reports_the_growing_loss_weight_and_unchanged_rewards():
    env = CurriculumWrapper(
        DelayedRecallEnv("mnist"), curricula.recu(scale=SMALL), units_per_step=1
    )
    for episode, alpha in enumerate(SMALL_NULL_WEIGHTS):
        _, info = env.reset(seed=episode)
        assert info["curriculum_settings"]["null_weight"] == alpha
        assert env.unwrapped.config.null_weight == alpha
        infos, rewards = run_episode(env, info)
        weights = [i["loss_weight"] for i in infos]
        t_resp = info["t_resp"]
        expected = [alpha] * 20 + [0.0]  # t_max 20: every step but the terminal one counts
        expected[t_resp] = 19.0 + alpha
        assert weights == expected
        assert sum(rewards) == 1.0 and rewards[t_resp] == 1.0  # the reward ignores the weight


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_wrapper_reports_the_growing_loss_weight(mode):
    base = DelayedRecallVectorEnv(2, "mnist", autoreset_mode=mode)
    env = VectorCurriculumWrapper(base, curricula.recu(scale=SMALL), units_per_step=2)
    _, info = env.reset(seed=0)
    seen = []
    for _ in SMALL_NULL_WEIGHTS:
        weight, is_resp = info["loss_weight"], info["is_response"]
        alphas = set((weight - 19.0 * is_resp).tolist())
        assert info["curriculum_settings"]["null_weight"].tolist() == [base.config.null_weight] * 2
        seen.append((alphas, base.config.null_weight))
        while True:
            _, rewards, terminated, _, info = env.step(np.asarray(info["target"]))
            if terminated.all():
                break
        if mode == "next_step":
            info = env.step(np.zeros(2, dtype=np.int64))[-1]
    assert seen == [({alpha}, alpha) for alpha in SMALL_NULL_WEIGHTS]


def test_registered_recu_ids_make_step_and_round_trip_state():
    assert {k: v for k, v in curricula.CURRICULUM_ENV_IDS.items() if "ReCu" in k} == {
        "DelayedRecall-MNIST-ReCu-v0": {"dataset": "mnist", "curriculum": "recu"},
        "DelayedRecall-FashionMNIST-ReCu-v0": {"dataset": "fashion-mnist", "curriculum": "recu"},
        "DelayedRecall-CIFAR10-ReCu-v0": {"dataset": "cifar10", "curriculum": "recu"},
    }
    env = gym.make("DelayedRecall-MNIST-ReCu-v0", curriculum_scale=SMALL)
    progress = env.get_wrapper_attr("progress")
    assert progress.units_per_step == 128 and progress.schedule == curricula.recu(scale=SMALL)
    _, info = env.reset(seed=0)
    assert info["curriculum_settings"] == {"null_weight": 0.0, "n_classes": 10, "t_max": 20}
    assert null_weight_at(info) == 0.0
    infos, _ = run_episode(env, info)
    assert len(infos) == 21 and infos[-1]["loss_weight"] == 0.0
    # 2 paper steps of 128 episodes later the null steps weigh 0.25
    env.get_wrapper_attr("load_curriculum_state_dict")(
        {"count": 2 * 128, "unit": "episodes", "units_per_step": 128, "schedule": {}}
    )
    _, info = env.reset()
    assert info["curriculum_stage"] == 1 and null_weight_at(info) == 0.25
    state = env.get_wrapper_attr("curriculum_state_dict")()
    clone = pickle.loads(pickle.dumps(env))
    assert clone.get_wrapper_attr("curriculum_state_dict")() == state
    fresh = gym.make("DelayedRecall-MNIST-ReCu-v0", curriculum_scale=SMALL)
    fresh.get_wrapper_attr("load_curriculum_state_dict")(state)
    _, fresh_info = fresh.reset(seed=1)
    assert fresh_info["curriculum_stage"] == 1 and null_weight_at(fresh_info) == 0.25


def test_registered_recu_id_make_vec_advances_one_paper_step_per_lockstep_episode():
    env = gym.make_vec("DelayedRecall-MNIST-ReCu-v0", num_envs=128, curriculum_scale=SMALL)
    assert isinstance(env, VectorCurriculumWrapper)
    _, info = env.reset(seed=0)
    for episode in range(3):
        alphas = set((info["loss_weight"] - 19.0 * info["is_response"]).tolist())
        assert alphas == {SMALL_NULL_WEIGHTS[episode]}
        for _ in range(20):
            _, _, terminated, _, info = env.step(np.asarray(info["target"]))
        assert terminated.all()
        info = env.step(np.zeros(128, dtype=np.int64))[-1]
    assert env.unwrapped.config.null_weight == SMALL_NULL_WEIGHTS[3] == 0.5
    env.close()
