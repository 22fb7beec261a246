"""A tiny finished run (trained once per session, copied per test) and a way to call the CLI.

pytest runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``; this
folder is added so that the tests can import ``cli_helpers``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from cli_helpers import TEMPLATE_FIELDS  # noqa: E402


@pytest.fixture(scope="session")
def run_template(session_mnist_root, tmp_path_factory) -> Path:
    """A finished 6-step GRU-6 run with checkpoints at steps 0, 3 and 6 (never modified)."""
    from agents.config import preset
    from agents.trainer import train

    config = preset("fast", data_root=str(session_mnist_root), **TEMPLATE_FIELDS)
    run_dir = tmp_path_factory.mktemp("template") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMENV_CACHE", str(tmp_path_factory.mktemp("template-cache")))
        train(config, run_dir, progress=False)
    return run_dir


@pytest.fixture
def run_dir(run_template, tmp_path) -> Path:
    """A private copy of `run_template`, free to damage."""
    copy = tmp_path / "run"
    shutil.copytree(run_template, copy)
    return copy
