"""`run_sb3_episodes` / `evaluate_sb3_delays` against stub agents whose accuracy is known.

The stubs see only what an SB3 model sees (observations, their own recurrent state and
``episode_start``). The oracle recognises the stimulus image exactly (it holds the test pool),
keeps its class in the recurrent state and answers at the trigger: it scores 100% only if the
evaluation passes the state back, marks episode starts where they are and grades the response
step; the other stubs pin the per-class bookkeeping and the step that is graded.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

from agents.evaluate import DelayAccuracy
from agents.rl import make_sb3_vec_env
from agents.rl.evaluate import evaluate_sb3_delays, run_sb3_episodes
from memenv.data import load_images


class Oracle:
    """Remembers the class of the image it saw (exact lookup); answers it at the trigger.

    ``when="trigger"``: the right answer at the response step, null elsewhere (perfect).
    ``when="not-trigger"``: the right answer at every step except the response step (0%).
    ``stimulus_first``: check that ``episode_start`` is true exactly on stimulus frames (true
    when the stimulus is shown at t = 0, as in `evaluate_sb3_delays`).
    """

    def __init__(
        self, root, split: str = "test", when: str = "trigger", stimulus_first: bool = True
    ) -> None:
        images = load_images("mnist", split, root=root)
        self.lookup = {
            row.tobytes(): index // images.n_per_class
            for index, row in enumerate(images.images_nxp)
        }
        self.when = when
        self.stimulus_first = stimulus_first
        self.starts_seen = 0

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        assert deterministic
        memory = np.full(len(obs), -1) if state is None else state.copy()
        memory[episode_start] = -1
        pixels = np.rint(np.clip(obs[:, :-1], 0, 1) * 255).astype(np.uint8)
        is_stimulus = np.zeros(len(obs), dtype=bool)
        for i, row in enumerate(pixels):
            label = self.lookup.get(row.tobytes())
            if label is not None:
                memory[i], is_stimulus[i] = label, True
        if self.stimulus_first:  # evaluate_sb3_delays: episode starts sit exactly there
            np.testing.assert_array_equal(is_stimulus, episode_start)
        self.starts_seen += int(episode_start.sum())
        trigger = obs[:, -1] > 0.5
        answer_now = trigger if self.when == "trigger" else ~trigger
        return np.where(answer_now & (memory >= 0), memory + 1, 0), memory


class Constant:
    """Always the same action (0 = null, k = class k - 1), no state."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return np.full(len(obs), self.action), None


def test_oracle_scores_every_trial_with_the_state_carried(mnist_root):
    oracle = Oracle(mnist_root)
    result = evaluate_sb3_delays(
        oracle, (1, 4, 9), n_trials=30, num_envs=8, n_classes=10, root=mnist_root
    )
    assert isinstance(result, DelayAccuracy)
    np.testing.assert_array_equal(result.delays, [1, 4, 9])
    np.testing.assert_array_equal(result.n_trials, [30, 30, 30])
    np.testing.assert_array_equal(result.accuracy, [[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(result.class_trials.sum(axis=1), [30, 30, 30])
    np.testing.assert_array_equal(result.class_correct[0], result.class_trials)
    assert (result.class_trials > 0).sum() > 5  # the labels really vary
    assert oracle.starts_seen >= 3 * 30
    assert result.meta["split"] == "test" and result.meta["agent"] == "Oracle"
    assert "| 9 | 1.000 |" in result.markdown()


def test_answers_off_the_response_step_score_nothing(mnist_root):
    result = evaluate_sb3_delays(
        Oracle(mnist_root, when="not-trigger"), (4, 6), n_trials=16, num_envs=8, root=mnist_root
    )
    np.testing.assert_array_equal(result.correct, [[0, 0]])


def test_null_and_constant_agents_per_class(mnist_root):
    null = evaluate_sb3_delays(Constant(0), (5,), n_trials=40, num_envs=16, root=mnist_root)
    assert null.correct.sum() == 0
    # "always class 2" is right exactly on the trials whose label is 2.
    fixed = evaluate_sb3_delays(
        Constant(3), (5,), n_trials=40, num_envs=16, n_classes=4, root=mnist_root
    )
    assert fixed.class_trials[0, 4:].sum() == 0  # vocabulary of 4 classes
    np.testing.assert_array_equal(fixed.class_correct[0, 0], np.eye(10)[2] * fixed.class_trials[0])
    assert fixed.correct[0, 0] == fixed.class_trials[0, 2] > 0


def test_run_sb3_episodes_returns_n_whole_episodes_reproducibly(mnist_root):
    envs = make_sb3_vec_env(num_envs=8, n_steps=10, t_max=10, root=mnist_root, split="test")
    result = run_sb3_episodes(Oracle(mnist_root, stimulus_first=False), envs, 13, seed=3)
    assert len(result["correct"]) == 13
    assert result["correct"].all()
    assert ((result["t_resp"] - result["t_stim"]) >= 4).all()
    again = run_sb3_episodes(Oracle(mnist_root, stimulus_first=False), envs, 13, seed=3)
    for key in result:
        np.testing.assert_array_equal(result[key], again[key])


def test_evaluation_refuses_a_null_penalty_and_bad_arguments(mnist_root):
    envs = make_sb3_vec_env(num_envs=2, null_penalty=0.1, root=mnist_root)
    with pytest.raises(ValueError, match="null_penalty"):
        run_sb3_episodes(Constant(0), envs, 4)
    with pytest.raises(ValueError, match="n_episodes"):
        run_sb3_episodes(Constant(0), make_sb3_vec_env(num_envs=2, root=mnist_root), 0)
    with pytest.raises(ValueError, match="delays"):
        evaluate_sb3_delays(Constant(0), (0, 4), root=mnist_root)


def test_evaluates_an_sb3_recurrent_model(mnist_root):
    envs = make_sb3_vec_env(num_envs=4, n_steps=8, t_max=8, n_classes=2, root=mnist_root)
    model = RecurrentPPO(
        "MlpLstmPolicy",
        envs,
        n_steps=8,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8]},
        seed=0,
        device="cpu",
    )
    result = evaluate_sb3_delays(
        model, (4, 7), n_trials=12, num_envs=4, n_classes=2, root=mnist_root
    )
    assert result.accuracy.shape == (1, 2)
    assert ((result.accuracy >= 0) & (result.accuracy <= 1)).all()
    assert result.class_trials[:, 2:].sum() == 0
    assert result.meta["agent"] == "RecurrentPPO"


class Spy:
    """Records the observations it is shown; always null. ``vec_normalize``: what
    ``get_vec_normalize_env()`` returns (as a model trained on a VecNormalize does)."""

    def __init__(self, vec_normalize=None) -> None:
        self.seen: list[np.ndarray] = []
        self.vec_normalize = vec_normalize

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.seen.append(np.array(obs, copy=True))
        return np.zeros(len(obs), dtype=np.int64), None

    def get_vec_normalize_env(self):
        return self.vec_normalize


def trained_normalizer(mnist_root, **kwargs):
    """A VecNormalize over the adapter with non-trivial statistics, as after training."""
    venv = VecNormalize(make_sb3_vec_env(num_envs=4, root=mnist_root), **kwargs)
    rng = np.random.default_rng(0)
    venv.obs_rms.mean = rng.normal(0.2, 0.1, 785)
    venv.obs_rms.var = rng.uniform(0.5, 4.0, 785)
    venv.obs_rms.count = 1234.0
    venv.ret_rms.var = np.asarray(9.0)
    return venv


def snapshot(venv) -> tuple:
    return (
        venv.obs_rms.mean.copy(),
        venv.obs_rms.var.copy(),
        venv.obs_rms.count,
        venv.ret_rms.mean.copy(),
        venv.ret_rms.var.copy(),
        venv.ret_rms.count,
        venv.training,
        venv.norm_reward,
    )


def assert_same(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_vec_normalize_policy_sees_normalised_observations_with_frozen_stats(mnist_root):
    venv = trained_normalizer(mnist_root)
    before = snapshot(venv)
    raw, normed = Spy(), Spy()
    kwargs = {"n_trials": 6, "num_envs": 3, "root": mnist_root}
    evaluate_sb3_delays(raw, (4, 6), normalize=False, **kwargs)
    result = evaluate_sb3_delays(normed, (4, 6), normalize=venv, **kwargs)
    assert len(raw.seen) == len(normed.seen) > 0  # the same seeds: the same raw frames
    for r, n in zip(raw.seen, normed.seen, strict=True):
        expected = np.clip(
            (r - venv.obs_rms.mean) / np.sqrt(venv.obs_rms.var + venv.epsilon), -10, 10
        )
        np.testing.assert_allclose(n, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(n, venv.normalize_obs(r))
        assert not np.allclose(n, r)
    assert_same(snapshot(venv), before)
    assert result.meta["normalize"] == "VecNormalize"


def test_the_models_own_vec_normalize_is_used_unless_refused(mnist_root):
    venv = trained_normalizer(mnist_root)
    before = snapshot(venv)
    kwargs = {"n_trials": 4, "num_envs": 2, "root": mnist_root}
    own, plain = Spy(vec_normalize=venv), Spy()
    evaluate_sb3_delays(own, (4,), **kwargs)
    evaluate_sb3_delays(plain, (4,), **kwargs)
    for o, p in zip(own.seen, plain.seen, strict=True):
        np.testing.assert_array_equal(o, venv.normalize_obs(p))
    off = Spy(vec_normalize=venv)
    result = evaluate_sb3_delays(off, (4,), normalize=False, **kwargs)
    for o, p in zip(off.seen, plain.seen, strict=True):
        np.testing.assert_array_equal(o, p)
    assert result.meta["normalize"] is None
    assert_same(snapshot(venv), before)


def test_run_sb3_episodes_through_a_training_vec_normalize_freezes_it(mnist_root):
    """Stepping a training VecNormalize would move its statistics and normalise the rewards
    the episodes are graded by; the env under it is stepped instead."""
    venv = trained_normalizer(mnist_root, norm_reward=True)
    assert venv.training
    before = snapshot(venv)
    spy = Spy()
    oracle = Oracle(mnist_root, split="train", stimulus_first=False)  # needs raw pixels
    result = run_sb3_episodes(oracle, venv, 8, seed=2, normalize=False)
    assert result["correct"].all()  # graded by the env's rewards, not normalised ones
    run_sb3_episodes(spy, venv, 8, seed=2)  # the VecNormalize around the env normalises
    plain = Spy()
    run_sb3_episodes(plain, venv.venv, 8, seed=2, normalize=False)
    for s, p in zip(spy.seen, plain.seen, strict=True):
        np.testing.assert_array_equal(s, venv.normalize_obs(p))
    assert_same(snapshot(venv), before)


def test_bad_normalizers_and_wrappers_are_refused(mnist_root):
    envs = make_sb3_vec_env(num_envs=2, root=mnist_root)
    with pytest.raises(ValueError, match="normalize must be .* got 'yes' \\(str\\)"):
        evaluate_sb3_delays(Constant(0), (4,), normalize="yes", root=mnist_root)
    with pytest.raises(ValueError, match="normalize must be .* got True"):
        run_sb3_episodes(Constant(0), envs, 2, normalize=True)
    with pytest.raises(ValueError, match="cannot apply VecFrameStack"):
        run_sb3_episodes(Constant(0), VecFrameStack(envs, 2), 2)
    small = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    with pytest.raises(ValueError, match=r"shape \(4,\).*shape \(785,\)"):
        evaluate_sb3_delays(Constant(0), (4,), normalize=small, root=mnist_root)
