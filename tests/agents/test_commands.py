"""CLI smoke runs: memenv train / memenv eval / the demo, with tiny configurations."""

from __future__ import annotations

import argparse
import json

import pytest

from agents.commands import (
    add_demo_arguments,
    add_eval_arguments,
    add_train_arguments,
    run_demo,
    run_eval,
    run_train,
    train_config_from_args,
)

TINY = ["--hidden-size", "8", "--batch-size", "8", "--steps", "6", "--checkpoint-every", "3",
        "--log-every", "3", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip


def _parse(add, argv):
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_train_then_eval(mnist_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = TINY + [
        "--data-root",
        str(mnist_root),
        "--run-dir",
        str(run_dir),
        "--set",
        "lr_decay_step=none",
    ]
    args = _parse(add_train_arguments, argv)
    assert run_train(args) == 0
    out = capsys.readouterr().out
    assert str(run_dir) in out and "model.pt" in out and "checkpoints/" in out
    assert "this call: 6 steps in " in out and " steps/s, checkpoints included)" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["total_steps"] == 6 and config["lr_decay_step"] is None and config["lr"] == 1e-3
    assert run_train(args) == 0  # a finished run: resumes at its end, writes nothing new
    assert "this call" not in capsys.readouterr().out

    args = _parse(add_eval_arguments, [str(run_dir), "--delays", "4,10,25", "--n-trials", "20",
                                       "--no-progress"])  # fmt: skip
    assert run_eval(args) == 0
    out = capsys.readouterr().out
    result = json.loads((run_dir / "eval" / "delay_accuracy.json").read_text())
    assert result["delays"] == [4, 10, 25] and result["meta"]["split"] == "test"
    assert (run_dir / "eval" / "delay_accuracy.png").stat().st_size > 0
    assert "delay_accuracy.json" in out and "| 25 |" in out


def test_bad_arguments_exit_2(mnist_root, tmp_path, capsys):
    from memenv.cli import main

    bad = [
        (TINY + ["--cell", "transformer"], "TrainConfig.cell"),
        (TINY + ["--set", "no_such_field=1"], "no_such_field"),
        (TINY + ["--set", "lr"], "FIELD=VALUE"),
        (
            TINY
            + [
                "--curriculum",
                "bogus",
                "--run-dir",
                str(tmp_path / "x"),
                "--data-root",
                str(mnist_root),
            ],
            "bogus",
        ),  # fmt: skip
    ]
    for argv, named in bad:
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("memenv train: error: ") and named in err, err
    assert main(["eval", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(tmp_path), "--delays", "0,4"])
    assert stop.value.code == 2 and "--delays" in capsys.readouterr().err


def test_preset_and_overrides():
    args = _parse(add_train_arguments, ["--preset", "paper", "--dataset", "cifar10", "--cell", "lstm",
                                        "--set", "noise_scale=0.5", "--members", "3"])  # fmt: skip
    config = train_config_from_args(args)
    assert (config.hidden_size, config.lr, config.cell) == (512, 1e-4, "lstm")
    assert config.noise_scale == 0.5 and config.n_members == 3


def test_demo_writes_figure_and_summary(mnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMENV_DATA", str(mnist_root))
    import agents.demo

    original = agents.demo.demo

    def tiny_demo(out_dir, cells, n_trials, progress):
        tiny = dict(hidden_size=8, batch_size=8, total_steps=4, checkpoint_every=2, log_every=2,
                    device="cpu")  # fmt: skip
        return original(out_dir, cells=cells, n_trials=n_trials, delays=(4, 20), progress=progress,
                        overrides=tiny)  # fmt: skip

    monkeypatch.setattr(agents.demo, "demo", tiny_demo)
    args = _parse(add_demo_arguments, ["--out", str(tmp_path), "--n-trials", "10", "--no-progress",
                                       "--cells", "gru,lstm"])  # fmt: skip
    assert run_demo(args) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "accuracy_vs_delay.png").stat().st_size > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "GRU-8" in summary and "LSTM-8" in summary and "| 20 |" in summary
    assert "accuracy_vs_delay.png" in out and "summary.md" in out


def test_model_family_option(capsys):
    from agents.commands import MODEL_FAMILIES, default_run_dir
    from agents.protocol import MODEL_FAMILIES as FAMILIES

    assert sorted(MODEL_FAMILIES) == sorted(FAMILIES)
    paper = train_config_from_args(_parse(add_train_arguments, ["--preset", "paper"]))
    assert paper.model_family == "authors"
    assert default_run_dir(paper).name == "mnist-authors-gru200-none-s0-140000"
    argv = ["--preset", "paper", "--model-family", "torch", "--cell", "rnn"]
    torch_paper = train_config_from_args(_parse(add_train_arguments, argv))
    assert (torch_paper.model_family, torch_paper.cell) == ("torch", "rnn")
    assert default_run_dir(torch_paper).name == "mnist-rnn200-none-s0-140000"
    argv = ["--model-family", "authors", "--cell", "lstm"]
    fast = train_config_from_args(_parse(add_train_arguments, argv))
    assert (fast.model_family, fast.cell, fast.hidden_size) == ("authors", "lstm", 128)
    with pytest.raises(SystemExit) as stop:
        _parse(add_train_arguments, ["--model-family", "keras"])
    assert stop.value.code == 2 and "keras" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_lists_options(argv, capsys):
    with pytest.raises(SystemExit):
        _parse(add_train_arguments, argv)
    assert "--preset" in capsys.readouterr().out


def test_importing_the_commands_does_not_import_torch():
    """`memenv --help` imports agents.commands: it must stay light."""
    import subprocess
    import sys

    code = "import sys, agents.commands; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_train_prints_rounded_metrics_for_single_runs_and_ensembles(mnist_root, tmp_path, capsys):
    for members in ("1", "2"):
        argv = TINY + ["--data-root", str(mnist_root), "--run-dir", str(tmp_path / members),
                       "--members", members]  # fmt: skip
        assert run_train(_parse(add_train_arguments, argv)) == 0
        line = next(
            x for x in capsys.readouterr().out.splitlines() if x.startswith("last interval")
        )
        numbers = line.replace("[", " ").replace("]", " ").replace(",", " ").split()
        decimals = [n.split(".")[1] for n in numbers if n.replace(".", "").isdigit() and "." in n]
        assert decimals and all(len(d) in (3, 4) for d in decimals), line
        assert ("per member" in line) == (members == "2")
