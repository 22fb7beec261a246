"""The toy models of ``analysis_toy_models.py`` (importable from here) and a tiny trained run.

pytest runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def tiny_run(tmp_path, mnist_root):
    """A finished 12-step GRU-6 run with checkpoints every 4 steps (a second or two)."""
    from agents.config import TrainConfig
    from agents.trainer import train

    config = TrainConfig(
        data_root=str(mnist_root), cell="gru", hidden_size=6, batch_size=8, total_steps=12,
        lr=1e-2, lr_decay_step=None, checkpoint_every=4, log_every=4, device="cpu",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    train(config, run_dir, progress=False)
    return run_dir
