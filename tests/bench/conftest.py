"""Makes the plug-in models of ``bench_plugin_model.py`` importable as ``bench_plugin_model``.

pytest runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``; a
plug-in spec ``"bench_plugin_model:factory"`` needs the module importable by name, as a user's
own package would be.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def tiny_protocol(mnist_root):
    """A benchmark protocol that trains for 4 steps and evaluates 10 trials per delay."""
    from studies.bench import BenchProtocol

    return BenchProtocol(
        seeds=(0,), hidden_size=8, total_steps=4, batch_size=8, data_root=str(mnist_root),
        device="cpu", n_trials=10, eval_batch_size=10, anchor_trials=2,
    )  # fmt: skip
