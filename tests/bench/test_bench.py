"""`memenv bench`: runs, resuming, the table and figure, the CLI and its errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from bench_plugin_model import elman

from agents.architectures import BUILTIN
from memenv import DelayedRecallTask, TaskConfig
from studies import bench
from studies.bench import BenchArchitecture, BenchProtocol, RunResult, resolve_architectures
from studies.bench_commands import add_bench_arguments, canonical_command, run_bench
from studies.bench_report import aggregate, plot_bench, t_interval


def test_fast_protocol_delays():
    protocol = BenchProtocol()
    assert protocol.trained_delays == (4, 19)
    assert protocol.table_delays() == (4, 11, 19, 38, 190, 1900)
    assert set(protocol.table_delays()) <= set(protocol.curve_delays())
    config = protocol.train_config(2)
    assert (config.hidden_size, config.total_steps, config.lr, config.seed) == (128, 2500, 1e-3, 2)
    short = BenchProtocol(total_steps=100).train_config(0)
    assert short.lr_decay_step == 80 and short.checkpoint_every == 10  # decay at 80%, as fast


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"seeds": ()}, "seeds"), ({"seeds": (1, 1)}, "distinct"), ({"n_trials": 0}, "n_trials"),
     ({"preset": "slow"}, "preset"), ({"lr": -1.0}, "lr"), ({"curriculum": "deku"}, "'deku'")],
)  # fmt: skip
def test_bad_protocol_names_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        BenchProtocol(**changes)


def test_a_finished_run_shared_without_its_weights_is_not_redone(tiny_protocol, tmp_path):
    arch = resolve_architectures(["gru"])[0]
    result = bench.run_one(arch, 0, tiny_protocol, tmp_path)
    run_dir = tmp_path / "gru" / "seed0"
    for weights in run_dir.rglob("*.pt"):
        weights.unlink()
    assert bench.run_one(arch, 0, tiny_protocol, tmp_path) == result
    assert not list(run_dir.rglob("*.pt"))  # not trained again


def test_every_builtin_trains_evaluates_and_is_measured(tiny_protocol, tmp_path):
    archs = resolve_architectures(list(BUILTIN))
    for arch in archs:
        result = bench.run_one(arch, 0, tiny_protocol, tmp_path)
        run_dir = tmp_path / arch.name / "seed0"
        assert result.status == "done" and bench.is_finished(run_dir)
        assert RunResult.load(run_dir / bench.RESULT_FILE) == result
        assert result.evaluation["delays"] == list(tiny_protocol.curve_delays())
        assert result.evaluation["n_trials"][0] == 10
        assert json.loads((run_dir / "run.json").read_text())["step"] == 4
        assert result.n_parameters == json.loads((run_dir / "run.json").read_text())["n_parameters"]
        assert result.train_s > 0
        if arch.name == "transformer":
            assert not result.recurrent and result.anchor is None
        else:
            assert result.recurrent and len(result.anchor["speeds"]) == 10
            speeds = [q for q in result.anchor["speeds"] if q is not None]
            if speeds:  # classes answered correctly after 4 steps of training, if any
                assert result.anchor["slowest"] == min(speeds)


def test_finished_runs_are_not_redone_and_partial_runs_resume(tiny_protocol, tmp_path, monkeypatch):
    arch = BenchArchitecture("gru", "gru")
    first = bench.run_one(arch, 0, tiny_protocol, tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("agents.trainer.train", no_training)
    assert bench.run_one(arch, 0, tiny_protocol, tmp_path) == first
    monkeypatch.undo()

    # a run killed after 2 of 4 steps: the bench resumes it and ends like an uninterrupted one
    from agents.architectures import build_architecture
    from agents.trainer import train

    killed = tmp_path / "killed"
    config = tiny_protocol.train_config(0)
    model = build_architecture("gru", 8, seed=0)
    train(config, killed / "gru" / "seed0", model=model, progress=False, stop_at_step=2)
    resumed = bench.run_one(arch, 0, tiny_protocol, killed)
    assert resumed.evaluation["correct"] == first.evaluation["correct"]
    assert resumed.anchor["speeds"] == pytest.approx(first.anchor["speeds"], nan_ok=True)


def test_t_interval_and_aggregate(tmp_path):
    mean, half = t_interval(np.array([[0.5, 1.0], [0.7, 1.0], [0.9, 1.0]]))
    np.testing.assert_allclose(mean, [0.7, 1.0])
    np.testing.assert_allclose(half, [4.302652729911275 * 0.2 / np.sqrt(3), 0.0])
    assert np.isnan(t_interval(np.array([[0.5]]))[1][0])  # one seed: no interval

    def result(arch, seed, accuracy, status="done", recurrent=True, slowest=1e-4):
        evaluation = {"delays": [4, 19, 38], "accuracy": [accuracy]}
        return RunResult(
            arch=arch, spec=arch, seed=seed, status=status, n_parameters=100, train_s=10.0 + seed,
            eval_s=1.0, recurrent=recurrent, evaluation=evaluation if status == "done" else None,
            anchor={"slowest": slowest} if recurrent else None, train_config={},
        )  # fmt: skip

    results = [
        result("gru", 0, [1.0, 0.9, 0.5], slowest=1e-4),
        result("gru", 1, [1.0, 0.7, 0.3], slowest=3e-4),
        result("gru", 2, [1.0, 0.8, 0.4], slowest=2e-4),
        result("transformer", 0, [1.0, 1.0, 0.2], recurrent=False),
        result("transformer", 1, [], status="diverged", recurrent=False),
    ]
    table = aggregate(results, (4, 19, 38), (4, 19), order=["transformer", "gru"])
    # sorted by half-life: the GRU's mean curve (trained-range 0.9) falls to 0.5 at
    # 19 * 2^0.75 = 32 steps, the Transformer's (1.0, level 0.55) at 19 * 2^0.5625 = 28
    assert [row.arch for row in table.rows] == ["gru", "transformer"]
    gru = table.rows[0]
    assert gru.seeds == [0, 1, 2] and gru.anchor_median == pytest.approx(2e-4)
    assert table.rows[1].diverged == [1]
    text = table.markdown()
    assert "| gru | 32 [" in text
    assert "| 100 | 3 | 11 | 1.000 ± 0.000 | 0.800 ± 0.248 | 0.400 ± 0.248 | 2.0e-04 |" in text
    assert "| transformer | 28 | 100 | 1 (+1 diverged) |" in text and "n/a" in text
    assert "acc @ 38 (2x)" in text
    data = table.to_dict()
    assert data["rows"][0]["accuracy"]["38"]["mean"] == pytest.approx(0.4)
    assert data["rows"][0]["half_life"]["delay"] == pytest.approx(19 * 2**0.75)
    assert data["rows"][1]["accuracy"]["38"]["ci95_half"] is None
    figure = plot_bench(table)
    axes = figure.axes[0]
    assert {t.get_text() for t in axes.get_legend().get_texts()} >= {
        "gru (n=3)",
        "transformer (n=1)",
    }


def _args(argv):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(argv)


def test_cli_with_a_plugin_writes_the_report(mnist_root, tmp_path, capsys):
    out, report = tmp_path / "runs", tmp_path / "report"
    argv = ["--archs", "mingru", "--model", "bench_plugin_model:elman", "--seeds", "0,1",
            "--hidden-size", "8", "--total-steps", "3", "--batch-size", "8",
            "--data-root", str(mnist_root), "--device", "cpu", "--n-trials", "8",
            "--eval-batch-size", "8", "--anchor-trials", "2", "--out", str(out),
            "--report", str(report), "--threads", "1", "--no-progress"]  # fmt: skip
    assert run_bench(_args(argv)) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in (out / "elman").iterdir()} == {"seed0", "seed1"}
    data = json.loads((report / "bench_table.json").read_text())
    assert [row["arch"] for row in data["rows"]] == ["mingru", "elman"]
    assert data["rows"][1]["spec"] == "bench_plugin_model:elman"
    assert data["rows"][1]["seeds"] == [0, 1] and data["rows"][1]["recurrent"]
    assert data["meta"]["command"].startswith("memenv bench --archs mingru --model")
    assert (report / "accuracy_vs_delay.png").stat().st_size > 0
    assert "| elman |" in (report / "bench_table.md").read_text()
    assert f"wrote {report / 'bench_table.md'}" in printed
    assert "(0 to do)" in (run_bench(_args(argv)) == 0 and capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "bench_plugin_model"], "'bench_plugin_model' must look like"),
        (["--model", "nope_pkg_xyz:make"], "cannot import 'nope_pkg_xyz'"),
        (["--model", "bench_plugin_model:missing"], "has no attribute 'missing'"),
        (["--archs", "gru,lstmm"], "unknown architecture 'lstmm'"),
        (["--archs", "gru,gru"], "unique"),
        (["--seeds", "0,a"], "--seeds: must be comma-separated integers, got '0,a'"),
        (["--jobs", "0"], "--jobs: must be an integer >= 1, got '0'"),
        (["--model", "os:getcwd"], "calling it as factory(hidden_size=128, obs_dim=785) failed"),
    ],
)
def test_cli_errors_exit_2_naming_the_value(argv, message, tmp_path, capsys):
    from memenv.cli import main

    try:
        code = main(["bench", "--out", str(tmp_path), *argv])
    except SystemExit as stop:  # argparse's own refusal of a malformed value
        code = stop.code
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("memenv bench: error:") and message in last
    assert not any(tmp_path.iterdir())  # nothing trained


def test_anchor_speed_is_the_speed_at_the_class_centre(mnist_root):
    """An input-blind Elman net: every trial's state after 15 steps is F^15(0), so the centre of
    the only class it answers (class 0, forced by the readout bias) is F^15(0) and its speed is
    ||F^16(0) - F^15(0)||^2, computed here by hand."""
    model = elman(hidden_size=4)
    with torch.no_grad():
        model.inp.weight.zero_()
        model.inp.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05]))
        model.rec.weight.copy_(0.9 * torch.eye(4))
        model.out.weight.zero_()
        model.out.bias.zero_()
        model.out.bias[1] = 100.0  # always answers class 0
    task = DelayedRecallTask(TaskConfig(split="test"), root=mnist_root)
    anchor = bench.anchor_speed(model, task, n_per_class=3)
    h = torch.zeros(1, 4, dtype=torch.float64)
    bias, rec = model.inp.bias.detach().double(), model.rec.weight.detach().double()
    for _ in range(15):
        h = torch.tanh(bias + h @ rec.T)
    expected = float((torch.tanh(bias + h @ rec.T) - h).square().sum())
    assert anchor["n_correct"] == [3] + [0] * 9
    assert anchor["speeds"][1:] == [None] * 9
    assert anchor["slowest_class"] == 0
    assert anchor["slowest"] == pytest.approx(expected, rel=1e-9) and expected > 1e-6


def test_model_family_authors_swaps_in_the_authors_cells():
    from studies.bench_commands import builtin_names

    assert builtin_names("rnn,gru,lstm,lru", "torch") == ["rnn", "gru", "lstm", "lru"]
    assert builtin_names("rnn,gru, lstm,lru", "authors") == [
        "rnn", "authors-gru", "authors-lstm", "lru",
    ]  # fmt: skip
    args = _args(["--model-family", "authors", "--archs", "gru"])
    assert "--model-family authors" in canonical_command(args)
