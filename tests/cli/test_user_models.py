"""A user's own model (a bench plug-in) evaluates and is analysed from its run directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import TEMPLATE_FIELDS, memenv

from agents.architectures import build_architecture
from agents.checkpoint import load_model
from agents.config import preset
from agents.trainer import train

PLUGIN_DIR = str(Path(__file__).resolve().parents[1] / "bench")  # bench_plugin_model.py
SPEC = "bench_plugin_model:elman"


@pytest.fixture
def plugin_run(session_mnist_root, tmp_path, monkeypatch, every_trial_counts):
    monkeypatch.syspath_prepend(PLUGIN_DIR)
    config = preset("fast", data_root=str(session_mnist_root), **TEMPLATE_FIELDS)
    model = build_architecture(SPEC, config.hidden_size, 785, seed=0)
    train(config, tmp_path / "run", model=model, progress=False)
    return tmp_path / "run", model


def test_eval_and_analyze_rebuild_the_plugin_model(plugin_run):
    run_dir, trained = plugin_run
    loaded = load_model(run_dir)
    assert type(loaded).__name__ == "ElmanNet"
    for a, b in zip(loaded.state_dict().values(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    outcome = memenv("eval", run_dir, "--delays", "4,30", "--n-trials", "10", "--no-progress")
    assert outcome.code == 0, outcome.err
    assert (run_dir / "eval" / "delay_accuracy.json").is_file()
    outcome = memenv(
        "analyze", run_dir, "--no-backtrack", "--no-figures", "--trials", "3",
        "--extra-per-class", "0", "--accuracy-trials", "20", "--no-progress",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert (run_dir / "analysis" / "analysis.json").is_file()


def test_a_plugin_whose_module_is_missing_is_a_clear_error(plugin_run, monkeypatch):
    run_dir, _ = plugin_run
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != PLUGIN_DIR])
    monkeypatch.delitem(sys.modules, "bench_plugin_model")
    memenv("eval", run_dir, "--no-progress").assert_clear_error(
        "eval", "bench_plugin_model:elman", "PYTHONPATH"
    )
