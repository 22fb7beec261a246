"""`memenv bench` reuses a run only when it was made with the requested settings; one step flag
name; the report explains its marks and records the code's commit."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import studies
from memenv.errors import UsageError
from studies import bench
from studies.bench import BenchArchitecture, RunResult
from studies.bench_commands import (
    NOT_A_CHECKOUT,
    add_bench_arguments,
    canonical_command,
    code_version,
    run_bench,
)
from studies.bench_report import NULL_NOTE, aggregate, plot_bench

GRU = BenchArchitecture("gru", "gru")


def _args(argv):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(argv)


def test_steps_is_the_flag_and_total_steps_its_alias():
    assert _args(["--steps", "7"]).total_steps == 7
    assert _args(["--total-steps", "7"]).total_steps == 7
    command = canonical_command(_args(["--total-steps", "7"]))
    assert "--steps 7" in command and "--total-steps" not in command


def test_cli_refuses_runs_made_with_other_settings_then_redoes_them(
    mnist_root, tmp_path, capsys, monkeypatch
):
    from memenv.cli import main

    out = tmp_path / "runs"
    base = ["--archs", "gru", "--seeds", "0", "--hidden-size", "8", "--batch-size", "8",
            "--data-root", str(mnist_root), "--device", "cpu", "--n-trials", "8",
            "--eval-batch-size", "8", "--anchor-trials", "2", "--out", str(out),
            "--threads", "1", "--no-progress"]  # fmt: skip
    assert run_bench(_args([*base, "--total-steps", "3"])) == 0
    run_dir = out / "gru" / "seed0"
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    capsys.readouterr()

    # the same settings on another device: reused
    assert run_bench(_args([*base, "--device", "auto", "--steps", "3"])) == 0  # last one wins
    assert "(0 to do)" in capsys.readouterr().out

    refusals = {
        ("--steps", "6"): "total_steps: saved 3 vs requested 6, lr_decay_step: saved 2 vs "
        "requested 5, log_every: saved 3 vs requested 6",
        ("--steps", "3", "--hidden-size", "16"): "hidden_size: saved 8 vs requested 16",
        ("--steps", "3", "--n-trials", "16"): "n_trials: saved 8 vs requested 16",
        ("--steps", "3", "--seeds", "0,1", "--lr", "0.01"): "lr: saved 0.001 vs requested 0.01",
    }
    for extra, fields in refusals.items():
        with pytest.raises(UsageError) as refused:
            run_bench(_args([*base, *extra]))
        message = str(refused.value)
        assert f"{run_dir} ({fields})" in message, message
        assert "pass --redo-mismatched to delete and redo them" in message
    assert not (out / "gru" / "seed1").exists()  # refused before anything trained
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before

    # the command line prints the refusal as one line and exits 2
    capsys.readouterr()
    assert main(["bench", *base, "--steps", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"memenv bench: error: 1 run was made with another protocol than the one requested: "
        f"{run_dir} ({refusals[('--steps', '6')]}). Reusing them would mix protocols in one "
        "table; pass --redo-mismatched to delete and redo them, or choose another --out"
    ]

    # --redo-mismatched deletes and redoes them, and says so; the report states what they used
    not_a_checkout = {"commit": None, "working_tree_modified": None, "code_dir": "/x/analysis"}
    monkeypatch.setattr("studies.bench_commands.code_version", lambda: not_a_checkout)
    assert run_bench(_args([*base, "--steps", "6", "--redo-mismatched"])) == 0
    printed = capsys.readouterr().out
    assert (
        "--redo-mismatched: deleted 1 run made with another protocol, to redo with the "
        f"requested one: {run_dir} (total_steps: saved 3 vs requested 6" in printed
    )
    assert "benchmark: 1 runs (1 to do)" in printed
    assert RunResult.load(run_dir / bench.RESULT_FILE).train_config["total_steps"] == 6
    text = (out / "bench_table.md").read_text()
    assert "--steps 6" in text and "(8 units, 6 steps, batch 8," in text
    assert "Code: not a git checkout (/x/analysis) when" in text and "None" not in text
    assert "runs' commits: not a git checkout" in text
    data = json.loads((out / "bench_table.json").read_text())
    assert data["meta"]["settings"]["total_steps"] == 6
    assert data["meta"]["settings"]["n_trials"] == 8


def test_run_one_refuses_finished_and_partly_trained_runs_of_other_settings(
    tiny_protocol, tmp_path
):
    import dataclasses

    first = bench.run_one(GRU, 0, tiny_protocol, tmp_path)
    run_dir = tmp_path / "gru" / "seed0"
    assert json.loads((run_dir / bench.RUN_FILE).read_text()) == {"arch": "gru", "spec": "gru"}
    assert first.evaluation_settings == tiny_protocol.evaluation_settings()
    # the same settings (on another device) reuse it
    auto = dataclasses.replace(tiny_protocol, device="auto")
    assert bench.run_one(GRU, 0, auto, tmp_path) == first

    cases = [
        (GRU, {"anchor_trials": 3}, "anchor_trials: saved 2 vs requested 3"),
        (GRU, {"eval_batch_size": 5}, "eval_batch_size: saved 10 vs requested 5"),
        (BenchArchitecture("gru", "mingru"), {}, "spec: saved 'gru' vs requested 'mingru'"),
        (GRU, {"curriculum": "decu"}, "curriculum: saved 'none' vs requested 'decu'"),
    ]
    for arch, changes, fields in cases:
        with pytest.raises(UsageError, match="another protocol") as refused:
            bench.run_one(arch, 0, dataclasses.replace(tiny_protocol, **changes), tmp_path)
        assert f"{run_dir} ({fields})" in str(refused.value)

    # a result saved before evaluation settings were recorded: compared on what it holds
    data = json.loads((run_dir / bench.RESULT_FILE).read_text())
    del data["evaluation_settings"]
    (run_dir / bench.RESULT_FILE).write_text(json.dumps(data))
    assert bench.run_one(GRU, 0, tiny_protocol, tmp_path).evaluation_settings is None
    with pytest.raises(UsageError, match="n_trials: saved 10 vs requested 20"):
        bench.run_one(GRU, 0, dataclasses.replace(tiny_protocol, n_trials=20), tmp_path)

    # a run killed after 2 of 4 steps with 8 units is not resumed with 16
    from agents.architectures import build_architecture
    from agents.trainer import train

    killed = tmp_path / "killed"
    train(tiny_protocol.train_config(0), killed / "gru" / "seed0", model=build_architecture(
        "gru", 8, seed=0), progress=False, stop_at_step=2)  # fmt: skip
    wider = dataclasses.replace(tiny_protocol, hidden_size=16)
    with pytest.raises(UsageError) as refused:
        bench.run_one(GRU, 0, wider, killed)
    assert f"{killed / 'gru' / 'seed0'} (hidden_size: saved 8 vs requested 16)" in str(
        refused.value
    )
    assert json.loads((killed / "gru" / "seed0" / "run.json").read_text())["step"] == 2
    assert bench.run_one(GRU, 0, tiny_protocol, killed).status == "done"  # resumes as asked


def test_the_report_never_mixes_protocols(tiny_protocol, tmp_path):
    import dataclasses

    protocol = dataclasses.replace(tiny_protocol, seeds=(0, 1))
    for seed in (0, 1):
        bench.run_one(GRU, seed, protocol, tmp_path)
    results, missing = bench.load_results(tmp_path, [GRU], (0, 1), protocol)
    assert not missing and bench.shared_settings(results)["total_steps"] == 4
    assert "seed" not in bench.shared_settings(results)

    path = tmp_path / "gru" / "seed1" / bench.RESULT_FILE
    data = json.loads(path.read_text())
    data["train_config"]["total_steps"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError) as refused:
        bench.load_results(tmp_path, [GRU], (0, 1), protocol)
    assert f"{path.parent} (total_steps: saved 99 vs requested 4)" in str(refused.value)
    assert "no report written" in str(refused.value)
    results, _ = bench.load_results(tmp_path, [GRU], (0, 1))  # no protocol given: not checked
    with pytest.raises(UsageError, match="total_steps is 4 in some runs and 99 in gru seed 1"):
        bench.shared_settings(results)


def _result(arch, seed, accuracy, recurrent=True, slowest=None, n_classes=None):
    evaluation = {"delays": [4, 19, 38], "accuracy": [accuracy]}
    if n_classes is not None:
        evaluation["meta"] = {"n_classes": n_classes}
    return RunResult(
        arch=arch, spec=arch, seed=seed, status="done", n_parameters=100, train_s=1.0, eval_s=1.0,
        recurrent=recurrent, evaluation=evaluation,
        anchor={"slowest": slowest} if recurrent else None, train_config={},
    )  # fmt: skip


def test_table_and_figure_explain_zero_chance_and_their_marks():
    results = [
        _result("gru", 0, [0.0, 0.0, 0.0]),  # always null: no correct trial, no anchor
        _result("transformer", 0, [1.0, 1.0, 1.0], recurrent=False),
    ]
    table = aggregate(results, (4, 19, 38), (4, 19))
    text = table.markdown()
    assert "| gru | - | 100 | 1 | 1 | 0.000 | 0.000 | 0.000 | - |" in text
    legend = text.split("Legend:", 1)[1]
    assert "chance: 0.1 (1/10)" in legend
    assert "`0.000` (below chance)" in legend and "always answers null" in legend
    assert "`n/a` (slowest anchor q): the model has no fixed-size state" in legend
    assert "`-`: not measured" in legend and "no class was answered correctly" in legend
    assert table.to_dict()["chance"] == 0.1 and table.to_dict()["legend"] == table.legend()
    labels = {t.get_text() for t in plot_bench(table).axes[0].get_legend().get_texts()}
    assert "chance = 1/10 (random class)" in labels
    assert any(label.startswith(NULL_NOTE) for label in labels)

    # chance follows the number of classes the trials were evaluated with
    four = aggregate([_result("gru", 0, [0.5, 0.5, 0.5], n_classes=4)], (4, 19, 38), (4, 19))
    assert four.chance == 0.25 and "chance: 0.25 (1/4)" in four.markdown()
    axes = plot_bench(four).axes[0]
    assert [line.get_ydata()[0] for line in axes.get_lines() if line.get_linestyle() == ":"] == [
        0.25
    ]


def _git(folder: Path, *command: str) -> str:
    return subprocess.run(
        ["git", *command], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_commit_comes_from_the_code_not_the_working_directory(tmp_path, monkeypatch):
    source = Path(studies.__file__).resolve().parent
    monkeypatch.chdir(tmp_path)  # not a repository
    info = code_version()
    assert info["code_dir"] == str(source)
    try:
        expected = _git(source.parent, "rev-parse", "HEAD")
        top = Path(_git(source.parent, "rev-parse", "--show-toplevel"))
    except subprocess.CalledProcessError:
        expected, top = None, None
    if top is not None and top.resolve() == source.parent:
        assert info["commit"] == expected and info["commit"] is not None
        assert isinstance(info["working_tree_modified"], bool)
    else:
        assert info["commit"] is None

    # a checkout whose root holds analysis/: its commit; a copy deeper inside a repository (an
    # installed package in a virtual environment there) or outside any: not a git checkout
    repo = tmp_path / "repo"
    (repo / "analysis").mkdir(parents=True)
    (repo / "analysis" / "__init__.py").write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    assert code_version(repo / "analysis")["commit"] == _git(repo, "rev-parse", "HEAD")
    assert code_version(repo / "analysis")["working_tree_modified"] is False
    nested = repo / ".venv" / "site-packages" / "analysis"
    nested.mkdir(parents=True)
    assert code_version(nested)["commit"] is None
    (tmp_path / "plain" / "analysis").mkdir(parents=True)
    assert code_version(tmp_path / "plain" / "analysis")["commit"] is None
    from studies.bench_commands import commit_label

    assert commit_label(None) == NOT_A_CHECKOUT == "not a git checkout"


def test_figure_tells_fourteen_rows_apart():
    from matplotlib.colors import to_hex

    names = [f"arch{i}" for i in range(14)]
    results = [_result(name, 0, [0.9, 0.5, 0.2]) for name in names]
    axes = plot_bench(aggregate(results, (4, 19, 38), (4, 19), order=names)).axes[0]
    curves = [
        line for line in axes.get_lines() if line.get_label() in {f"{n} (n=1)" for n in names}
    ]
    styles = {
        (to_hex(line.get_color()), line.get_linestyle(), line.get_marker()) for line in curves
    }
    assert len(curves) == 14 and len(styles) == 14
    assert ":" not in {line.get_linestyle() for line in curves}  # dotted is the chance line
