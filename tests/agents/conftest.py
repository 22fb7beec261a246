"""Fixtures for the agents tests: a tiny on-disk MNIST (from tests/conftest.py) and its tasks."""

from __future__ import annotations

import pytest

from agents.config import TrainConfig
from memenv import DelayedRecallTask, TaskConfig


@pytest.fixture
def tiny_task(mnist_root) -> DelayedRecallTask:
    """The paper's task on the 12-per-class test MNIST of tests/conftest.py."""
    return DelayedRecallTask(TaskConfig(), root=mnist_root)


@pytest.fixture
def tiny_config(mnist_root) -> TrainConfig:
    """A training run that takes well under a second per few steps."""
    return TrainConfig(
        data_root=str(mnist_root),
        hidden_size=8,
        batch_size=8,
        total_steps=12,
        lr=1e-3,
        lr_decay_step=8,
        checkpoint_every=4,
        log_every=2,
        device="cpu",
    )
