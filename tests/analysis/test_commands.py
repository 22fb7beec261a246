"""``memenv analyze`` end to end on a tiny training run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from analysis.backtrack import Lineage
from analysis.slow_points import SlowPoints
from studies.analyze_commands import add_analyze_arguments, options_from_args, run_analyze

SMALL = [
    "--trials", "4", "--extra-per-class", "1", "--accuracy-trials", "40",
    "--long-delay", "6", "--max-checkpoints", "3", "--no-progress",
]  # fmt: skip


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_analyze_arguments(parser)
    return parser.parse_args(argv)


def test_analyze_writes_results_figures_and_summary(tiny_run, every_trial_counts, capsys):
    assert run_analyze(_parse([str(tiny_run), *SMALL])) == 0
    out = tiny_run / "analysis"
    for name in (
        "slow_points.npz", "centers.npz", "lineage.npz", "analysis.json", "summary.md",
        "pca.png", "speed_accuracy.png", "speed_accuracy_centres.png", "spectra.png",
        "lineage.png",
    ):  # fmt: skip
        assert (out / name).is_file(), name
    printed = capsys.readouterr().out
    assert f"wrote {out / 'summary.md'}" in printed
    points = SlowPoints.load(out / "slow_points.npz")
    assert points.n_state == 6 and points.eigenvalues is not None
    lineage = Lineage.load(out / "lineage.npz")
    assert lineage.steps.tolist() == [0, 8, 12]  # two of the earlier checkpoints + the final
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["info"]["hidden_size"] == 6
    assert summary["n_searches"] == len(points)
    assert "Speed vs accuracy" in (out / "summary.md").read_text()


def test_several_runs_give_the_network_table(
    tiny_run, every_trial_counts, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default folder, runs/analysis, is relative to it
    out = tmp_path / "runs" / "analysis"
    argv = [str(tiny_run), str(tiny_run), "--no-backtrack", "--no-figures"]
    assert run_analyze(_parse(argv + SMALL)) == 0
    table = json.loads((out / "networks_speed_accuracy.json").read_text())
    assert len(table["mean_speeds"]) == 2
    assert np.isfinite(table["mean_speeds"]).all()
    assert (out / "run" / "summary.md").is_file()
    assert not list(out.rglob("*.png"))
    assert "across networks" in capsys.readouterr().out


def test_a_network_that_answers_nothing_skips_backtracking(tiny_run):
    assert run_analyze(_parse([str(tiny_run), "--no-figures", *SMALL])) == 0
    summary = json.loads((tiny_run / "analysis" / "analysis.json").read_text())
    assert summary["info"]["backtrack_skipped"] == "no class is answered correctly"
    assert summary["lineage"] is None


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        run_analyze(_parse([str(tmp_path)]))
    with pytest.raises(ValueError, match="--method adam"):
        options_from_args(_parse([str(tmp_path), "--adam-iterations", "10"]))
    with pytest.raises(SystemExit):  # argparse refuses it (tests/cli checks the message)
        _parse([str(tmp_path), "--trials", "0"])
    options = options_from_args(
        _parse([str(tmp_path), "--method", "adam", "--adam-iterations", "100"])
    )
    assert options.search_options == {"iterations": 100, "lr_drop_at": 40}


def test_the_cli_help_imports_no_torch():
    """`memenv --help` imports every command module (analysis ones included): it stays light,
    and the lazy names of `analysis` still resolve."""
    import subprocess
    import sys

    code = (
        "import sys; from memenv.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "import analysis; assert analysis.find_slow_points.__name__ == 'find_slow_points'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
