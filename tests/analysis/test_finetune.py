"""`regularize_run` and ``memenv regularize`` end to end on a tiny trained run."""

from __future__ import annotations

import argparse
import hashlib
import json

import pytest
import torch

from agents.checkpoint import load_model
from analysis.finetune import (
    RegularizeConfig,
    finetune_preset,
    regularize_run,
    train_with_speed_penalty,
)
from analysis.regularizer_commands import add_regularize_arguments, run_regularize

SMALL = dict(
    lr=1e-2, total_steps=6, n_noise=2, n_per_class=3, eval_delays=(4, 8), eval_trials=20,
    checkpoint_every=3, log_every=3, device="cpu",
)  # fmt: skip


def _digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_fine_tuning_writes_a_new_run_and_leaves_the_source_alone(
    tiny_run, every_trial_counts, tmp_path
):
    before = _digest(tiny_run)
    config = RegularizeConfig(mode="center", lam=1.0, **SMALL)
    result = regularize_run(tiny_run, config, tmp_path / "reg", progress=False)
    assert _digest(tiny_run) == before
    out = tmp_path / "reg"
    for name in (
        "model.pt", "anchors.npz", "regularize.json", "summary.md", "source.json",
        "accuracy_before.json", "accuracy_after.json", "accuracy_before_after.png",
        "penalty.json", "metrics.jsonl",
    ):  # fmt: skip
        assert (out / name).is_file(), name
    summary = json.loads((out / "regularize.json").read_text())
    assert summary["mode"] == "center" and summary["lam"] == 1.0
    assert set(summary["accuracy_before"]) == {"4", "8"}
    # a strong penalty slows the network at its anchors
    assert result.speeds_after.mean() < result.speeds_before.mean()
    assert summary["penalty_last"] < summary["penalty_first"]
    # the fine-tuned weights differ from the source's
    source, tuned = load_model(tiny_run).state_dict(), load_model(out).state_dict()
    assert not all(torch.equal(source[k], tuned[k]) for k in source)
    # a second call reads the finished result back instead of redoing it
    stamp = (out / "model.pt").stat().st_mtime_ns
    again = regularize_run(tiny_run, config, out, progress=False)
    assert (out / "model.pt").stat().st_mtime_ns == stamp
    assert again.to_dict() == result.to_dict()


def test_control_and_lambda_zero_fine_tunings_end_with_equal_weights(
    tiny_run, every_trial_counts, tmp_path
):
    small = {**SMALL, "evaluate": False}
    regularize_run(tiny_run, RegularizeConfig(mode="control", **small), tmp_path / "c")
    regularize_run(tiny_run, RegularizeConfig(mode="slow", lam=0.0, **small), tmp_path / "s")
    regularize_run(tiny_run, RegularizeConfig(mode="center", lam=0.5, **small), tmp_path / "p")
    control, zero = load_model(tmp_path / "c").state_dict(), load_model(tmp_path / "s").state_dict()
    assert all(torch.equal(control[k], zero[k]) for k in control)
    penalised = load_model(tmp_path / "p").state_dict()
    assert not all(torch.equal(control[k], penalised[k]) for k in control)
    assert json.loads((tmp_path / "c" / "regularize.json").read_text())["lam"] == 0.0


def test_out_dir_inside_the_source_is_refused(tiny_run):
    with pytest.raises(ValueError, match="outside the source"):
        regularize_run(tiny_run, RegularizeConfig(**SMALL), tiny_run / "reg")
    with pytest.raises(FileNotFoundError, match="no model.pt"):
        regularize_run(tiny_run / "nothing", RegularizeConfig(**SMALL))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"mode": "fast"}, "mode must be one of"),
        ({"lam": -0.1}, "lam must be >= 0"),
        ({"mode": "control", "lam": 0.1}, "control"),
        ({"total_steps": 0}, "total_steps"),
        ({"lr": -1.0}, "lr"),
        ({"eval_delays": (0, 4)}, "eval_delays"),
    ],
)
def test_bad_settings_raise_naming_them(changes, match):
    with pytest.raises(ValueError, match=match):
        RegularizeConfig(**changes)


def test_presets_follow_the_paper():
    paper = finetune_preset("paper", "mnist", mode="slow")
    assert (paper.total_steps, paper.lr, paper.lam_for("mnist")) == (5000, 1e-5, 1e-3)
    cifar = finetune_preset("paper", "cifar10")
    assert (cifar.lr, cifar.lam_for("cifar10")) == (1e-4, 1e-2)
    assert finetune_preset("fast", mode="control").lam_for("mnist") == 0.0
    with pytest.raises(ValueError, match="preset must be one of"):
        finetune_preset("slowest")


def test_training_from_scratch_with_the_penalty(tmp_path, mnist_root):
    from agents.config import TrainConfig

    config = TrainConfig(
        data_root=str(mnist_root), hidden_size=6, batch_size=8, total_steps=6, lr=1e-2,
        lr_decay_step=None, checkpoint_every=3, log_every=3, device="cpu",
    )  # fmt: skip
    result = train_with_speed_penalty(
        config, tmp_path / "s", mode="center", lam=0.1, recompute_every=3, n_noise=2,
        progress=False,
    )  # fmt: skip
    assert result.finished
    lines = [json.loads(x) for x in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert all(line["penalty"] > 0 for line in lines)
    assert json.loads((tmp_path / "s" / "penalty.json").read_text())["recompute_every"] == 3


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_regularize_arguments(parser)
    return parser.parse_args(argv)


def test_the_command_fine_tunes_and_prints_where(tiny_run, every_trial_counts, tmp_path, capsys):
    out = tmp_path / "cli"
    args = _parse([
        str(tiny_run), "--mode", "slow", "--preset", "fast", "--steps", "3", "--lr", "0.01",
        "--noise-draws", "2", "--eval-trials", "10", "--out", str(out), "--no-progress",
        "--device", "cpu",
    ])  # fmt: skip
    assert run_regularize(args) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}/" in printed and "is unchanged" in printed
    assert json.loads((out / "regularize.json").read_text())["config"]["total_steps"] == 3
    assert json.loads((out / "penalty.json").read_text())["mode"] == "slow"


def test_the_command_rejects_bad_input(tiny_run, tmp_path, capsys):
    from memenv.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["regularize", str(tiny_run), "--mode", "center", "--lam", "-1"])
    assert stop.value.code == 2
    assert "--lam: must be a finite number >= 0, got '-1'" in capsys.readouterr().err
    assert main(["regularize", str(tmp_path / "none"), "--mode", "center"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["regularize", str(tiny_run), "--mode", "sideways"])


def test_the_command_trains_from_scratch_with_the_penalty(tmp_path, mnist_root, capsys):
    from memenv.cli import main

    run_dir = tmp_path / "scratch"
    argv = [
        "regularize", str(run_dir), "--from-scratch", "--mode", "center", "--steps", "4",
        "--hidden-size", "6", "--anchor-every", "2", "--noise-draws", "2", "--device", "cpu",
        "--data-root", str(mnist_root), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    assert f"wrote {run_dir}/ (4 steps with the speed penalty" in capsys.readouterr().out
    penalty = json.loads((run_dir / "penalty.json").read_text())
    assert (penalty["mode"], penalty["recompute_every"], penalty["lam"]) == ("center", 2, 1e-3)
