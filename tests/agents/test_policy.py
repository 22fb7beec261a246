"""A trained model acting in the Gymnasium envs scores what the batched evaluation scores."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import memenv  # noqa: F401  (registers the envs)
from agents import RecurrentPolicy, batch_correct, build_model, run_vector_episodes
from memenv import TrialBatch


def _answering_model(cell):
    torch.manual_seed(1)
    model = build_model(cell, hidden_size=16)
    with torch.no_grad():
        model.head.bias[0] = -100.0
        model.head.weight.mul_(20.0)
        model.rnn.weight_ih_l0.mul_(5.0)
    return model.eval()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_stepping_make_vec_equals_batched_evaluation(mnist_root, cell):
    model = _answering_model(cell)
    n = 64
    envs = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=n, root=str(mnist_root), split="test")
    obs, info = envs.reset(seed=11)
    policy = RecurrentPolicy(model)
    policy.reset(n)
    frames, actions, rewards = [], [], np.zeros(n)
    for _ in range(envs.unwrapped.config.n_steps):
        frames.append(obs)
        action = policy.act(obs)
        actions.append(action)
        obs, reward, terminated, truncated, step_info = envs.step(action)
        rewards += reward
    assert terminated.all()
    batch = TrialBatch(
        obs=torch.from_numpy(np.stack(frames, axis=1)),
        target=torch.zeros(n, len(frames), dtype=torch.int64),
        loss_weight=torch.zeros(n, len(frames)),
        t_stim=torch.from_numpy(info["t_stim"]),
        t_resp=torch.from_numpy(info["t_resp"]),
        label=torch.from_numpy(info["label"]),
    )
    batched = batch_correct(model, batch).numpy()
    env_correct = rewards > 0.5
    assert (env_correct == batched).all()
    assert 0 < batched.sum() < n  # non-trivial
    # every action the policy took is the batched network's answer at that step
    with torch.no_grad():
        logits, _ = model(batch.obs)
    assert (np.stack(actions, axis=1) == logits.argmax(-1).numpy()).all()
    # and the episode runner grades the same episodes the same way, in both autoreset modes
    for mode in ("next_step", "same_step"):
        envs = gym.make_vec(
            "DelayedRecall-MNIST-v0", num_envs=n, root=str(mnist_root), split="test",
            autoreset_mode=mode,
        )  # fmt: skip
        stats = run_vector_episodes(envs, RecurrentPolicy(model), n_episodes=2 * n, seed=11)
        assert stats["n_episodes"] == 2 * n
        first = stats["rewards"][:n]
        assert first.sum() == batched.sum(), mode


def test_single_env_policy_returns_ints(mnist_root):
    env = gym.make("DelayedRecall-MNIST-v0", root=str(mnist_root))
    obs, _ = env.reset(seed=0)
    policy = RecurrentPolicy(_answering_model("gru"))
    action = policy.act(obs)
    assert isinstance(action, int) and env.action_space.contains(action)
    env.step(action)
