"""`regularize_run` and ``memenv regularize`` end to end on a tiny trained run."""

from __future__ import annotations

import argparse
import hashlib
import json
import re

import numpy as np
import pytest
import torch

from agents.checkpoint import load_model
from studies.finetune import (
    DEFINITIONS,
    PENALTY_SEED,
    RegularizeConfig,
    expected_penalty,
    finetune_preset,
    regularize_modes,
    regularize_run,
    train_with_speed_penalty,
)
from studies.regularize_commands import add_regularize_arguments, run_regularize

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


# ------------------------------------------------------------------ the control, S and q
CLI_SMALL = [
    "--steps", "4", "--lr", "0.01", "--noise-draws", "2", "--eval-trials", "10", "--lam", "1",
    "--no-progress", "--device", "cpu",
]  # fmt: skip


@pytest.fixture
def tiny_ensemble(tmp_path, mnist_root):
    """A finished 12-step ensemble of three GRU-6 networks."""
    from agents.config import TrainConfig
    from agents.trainer import train

    config = TrainConfig(
        data_root=str(mnist_root), cell="gru", hidden_size=6, batch_size=8, total_steps=12,
        lr=1e-2, lr_decay_step=None, checkpoint_every=4, log_every=4, device="cpu", n_members=3,
    )  # fmt: skip
    run_dir = tmp_path / "ensemble"
    train(config, run_dir, progress=False)
    return run_dir


def _accuracy(path):
    data = json.loads(path.read_text())
    return np.asarray(data["accuracy"], dtype=float)[0]


def _weight_dependent_evaluation(model, task, config, path):
    """Stands in for `studies.finetune._evaluate` (same caching): a tiny network answers no
    trial correctly, so its accuracy is made a function of its weights instead; different
    networks get different accuracies, the same network the same."""
    from agents.evaluate import DelayAccuracy

    if path.is_file():
        return DelayAccuracy.load(path)
    delays = np.array(sorted(set(config.eval_delays)))
    n = config.eval_trials
    weight = sum(float(p.detach().double().abs().sum()) for p in model.parameters())
    correct = np.array([[int(weight * 1e5 * (i + 1)) % (n + 1) for i in range(len(delays))]])
    result = DelayAccuracy(
        delays, np.full(len(delays), n), correct, np.zeros((len(delays), 10), dtype=np.int64),
        np.zeros((1, len(delays), 10), dtype=np.int64),
    )  # fmt: skip
    result.save(path)
    return result


def test_the_command_runs_the_control_by_default_and_reports_the_paired_difference(
    tiny_run, every_trial_counts, tmp_path, capsys, monkeypatch
):
    import studies.finetune as finetune
    from memenv.cli import main

    monkeypatch.setattr(finetune, "_evaluate", _weight_dependent_evaluation)
    out = tmp_path / "pair"
    source = _digest(tiny_run)
    assert main(["regularize", str(tiny_run), "--out", str(out), *CLI_SMALL]) == 0
    printed = capsys.readouterr().out
    assert _digest(tiny_run) == source
    # both modes from the same source, the same trial seed and settings; lambda only differs
    penalty = {m: json.loads((out / m / "penalty.json").read_text()) for m in ("center", "control")}
    assert (penalty["center"]["lam"], penalty["control"]["lam"]) == (1.0, 0.0)
    assert penalty["center"]["seed"] == penalty["control"]["seed"]
    configs = {m: json.loads((out / m / "source.json").read_text()) for m in penalty}
    assert {
        k: v for k, v in configs["center"]["regularize"].items() if k not in ("mode", "lam")
    } == {k: v for k, v in configs["control"]["regularize"].items() if k not in ("mode", "lam")}
    # the same before-evaluation (same trials), and the difference is after(center) - after(control)
    before = [_accuracy(out / m / "accuracy_before.json") for m in penalty]
    np.testing.assert_array_equal(before[0], before[1])
    diff = _accuracy(out / "center" / "accuracy_after.json") - _accuracy(
        out / "control" / "accuracy_after.json"
    )
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["modes"] == ["center", "control"] and comparison["n_networks"] == 1
    np.testing.assert_allclose(comparison["minus_control"]["center"], diff)
    assert (out / "accuracy.png").stat().st_size > 0
    # the printed summary shows both modes, the difference per delay, n = 1, no member None
    assert printed.startswith((out / "summary.md").read_text())
    assert "| delay | before | center | control | center - control |" in printed
    after = {m: _accuracy(out / m / "accuracy_after.json") for m in penalty}
    assert np.ptp(diff) > 0  # the two fine-tunings differ, so a wrong sign or order would show
    for i, d in enumerate(comparison["delays"]):
        row = (
            f"| {d} | {before[0][i]:.3f} | {after['center'][i]:.3f} | "
            f"{after['control'][i]:.3f} | {diff[i]:+.3f} |"
        )
        assert row in printed
    assert "n = 1 network" in printed and "no test" in printed and "--seeds" in printed
    assert "(single network, step 12)" in printed and "member None" not in printed
    for sentence in DEFINITIONS:
        assert sentence in printed
    assert "center/" in printed and "control/" in printed


def test_a_single_mode_says_no_control_was_run(tiny_run, every_trial_counts, tmp_path, capsys):
    from memenv.cli import main

    out = tmp_path / "one"
    assert (
        main(["regularize", str(tiny_run), "--mode", "center", "--out", str(out), *CLI_SMALL]) == 0
    )
    printed = capsys.readouterr().out
    assert "no control was run" in printed
    assert "compare with a control" in (out / "summary.md").read_text()
    assert not (out / "control").exists() and (out / "model.pt").is_file()
    # --modes with one name is the same as --mode
    args = _parse([str(tiny_run), "--modes", "slow"])
    assert (args.modes, args.mode) == (("slow",), None)
    assert main(["regularize", str(tiny_run), "--mode", "center", "--modes", "control"]) == 2
    assert "give --mode or --modes, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["regularize", str(tiny_run), "--modes", "center,sideways"])
    assert "unknown name(s) 'sideways'" in capsys.readouterr().err


def test_the_default_preset_is_train_s_default(tiny_run, every_trial_counts, tmp_path):
    from memenv.cli import main

    assert _parse([str(tiny_run)]).preset == "fast"
    common = ["--mode", "control", "--steps", "2", "--no-eval", "--no-progress", "--device", "cpu"]
    assert main(["regularize", str(tiny_run), "--out", str(tmp_path / "f"), *common]) == 0
    assert main(["regularize", str(tiny_run), "--out", str(tmp_path / "p"), "--preset", "paper",
                 *common]) == 0  # fmt: skip
    lr = {n: json.loads((tmp_path / n / "regularize.json").read_text())["config"]["lr"]
          for n in ("f", "p")}  # fmt: skip
    assert lr == {"f": 1e-4, "p": 1e-5}


def test_a_member_is_named_in_the_summary(tiny_ensemble, every_trial_counts, tmp_path, capsys):
    from memenv.cli import main

    assert main(["regularize", str(tiny_ensemble), "--mode", "control"]) == 2
    assert "--member K, or members 0..N-1 with --seeds N" in capsys.readouterr().err
    out = tmp_path / "m1"
    argv = ["regularize", str(tiny_ensemble), "--mode", "control", "--member", "1", "--steps", "2",
            "--no-eval", "--no-progress", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "(member 1, step 12)" in (out / "summary.md").read_text()
    assert main([*argv[:4], "--member", "3", *argv[6:]]) == 2
    assert "--member must be < 3" in capsys.readouterr().err


def test_seeds_fine_tunes_members_and_tests_the_difference(
    tiny_ensemble, every_trial_counts, tmp_path, capsys, monkeypatch
):
    import studies.finetune as finetune
    from memenv.cli import main

    monkeypatch.setattr(finetune, "_evaluate", _weight_dependent_evaluation)

    out = tmp_path / "seeds"
    argv = ["regularize", str(tiny_ensemble), "--seeds", "2", "--out", str(out), *CLI_SMALL]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    records = {}
    for k in (0, 1):
        for mode in ("center", "control"):
            folder = out / "finetune" / f"gru-s{k}-{mode}"
            assert json.loads((folder / "source.json").read_text())["source"]["member"] == k
            records[k, mode] = json.loads((folder / "regularize.json").read_text())
    assert not (out / "finetune" / "gru-s2-center").exists()
    delays = sorted(int(d) for d in records[0, "center"]["accuracy_after"])
    diff = np.array([[records[k, "center"]["accuracy_after"][str(d)]
                      - records[k, "control"]["accuracy_after"][str(d)] for d in delays]
                     for k in (0, 1)])  # fmt: skip
    table = json.loads((out / "table.json").read_text())
    row = table["cells"]["gru"]["center"]
    np.testing.assert_allclose(row["minus_control"]["mean"], diff.mean(axis=0))
    from scipy import stats

    # rounding can leave a spread of 1e-17 between equal differences: no spread, as the table
    spread = np.array([not np.allclose(diff[:, i], diff[0, i]) for i in range(diff.shape[1])])
    assert spread.any()
    for i in np.flatnonzero(spread):  # the paired t-test per delay
        p_value = stats.ttest_1samp(diff[:, i], 0.0).pvalue
        assert row["minus_control_p"][i] == pytest.approx(p_value)
        assert f"p={p_value:.2g}" in printed
    assert "### GRU (2 seeds)" in printed and "| center - control |" in printed
    assert "Long-delay test (the same as `memenv reproduce`'s regularisation claim)" in printed
    long = np.asarray(delays) >= 100  # the long delays of the test
    found = re.search(
        r"center - control, mean accuracy at delays >= 100: ([+-]\d\.\d{3}) \[", printed
    )
    assert found and float(found.group(1)) == pytest.approx(diff[:, long].mean(), abs=6e-4)
    assert "members 0..1 of" in printed
    for sentence in DEFINITIONS:
        assert sentence in printed
    assert (out / "accuracy.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--seeds", "5"], "at least 5 members"),
        (["--seeds", "1"], "--seeds must be >= 2"),
        (["--seeds", "2", "--member", "0"], "it takes no --member"),
        (["--seeds", "2", "--seed", "3"], "it takes no --seed"),
        (["--seeds", "2", "--no-eval"], "it takes no --no-eval"),
    ],
)
def test_seeds_refuses_what_it_cannot_do(tiny_ensemble, capsys, extra, match):
    from memenv.cli import main

    assert main(["regularize", str(tiny_ensemble), *extra]) == 2
    assert match in capsys.readouterr().err


def test_seeds_needs_an_ensemble(tiny_run, capsys):
    from memenv.cli import main

    assert main(["regularize", str(tiny_run), "--seeds", "2"]) == 2
    assert "has a single network" in capsys.readouterr().err


def test_s_is_the_penalty_s_expectation_and_q_the_mean_frame_speed(
    tiny_run, every_trial_counts, tmp_path
):
    from agents.config import TrainConfig
    from analysis.regularizer import SpeedPenalty
    from memenv import DelayedRecallTask

    config = RegularizeConfig(mode="center", lam=1.0, **SMALL)
    result = regularize_run(tiny_run, config, tmp_path / "reg", progress=False)
    model = load_model(tiny_run)
    train_config = TrainConfig.from_json(tiny_run / "config.json")
    task = DelayedRecallTask(train_config.task_config(), root=train_config.data_root)
    anchors, n = result.anchors, 100
    # S, directly: the sum over anchors and frames of ||F(h*, x) - h*||^2 (GRU: phi = identity),
    # frames drawn as the penalty draws them (anchor k gets frames k*n .. k*n + n - 1)
    generator = torch.Generator().manual_seed(PENALTY_SEED)
    valid = anchors.states[anchors.valid]
    frames = task.noise((len(valid) * n, task.obs_dim), generator)
    frames[:, -1] = 0.0
    total = 0.0
    with torch.no_grad():
        for k, state in enumerate(valid):
            h = torch.as_tensor(state, dtype=torch.float32)[None].repeat(n, 1)
            stepped = model.transition(h, frames[k * n : (k + 1) * n])
            total += float((stepped - h).square().sum())
    expected = total * config.n_noise / n
    assert result.penalty_before == pytest.approx(expected, rel=1e-5)
    assert expected_penalty(model, anchors, task, config.n_noise) == pytest.approx(expected)
    # it is the penalty's own S: an n_noise-frame draw of SpeedPenalty averages to it
    probe = SpeedPenalty(anchors, task, 0.0, n_noise=n, seed=PENALTY_SEED)
    with torch.no_grad():
        drawn = float(probe.speed_sum(model, probe.noise(torch.device("cpu"))))
    assert drawn == pytest.approx(total)
    # q: the speed under the mean frame, not under noise
    mean_frame = torch.as_tensor(task.mean_frame, dtype=torch.float32)[None]
    with torch.no_grad():
        h = torch.as_tensor(valid, dtype=torch.float32)
        q = (model.transition(h, mean_frame.expand(len(valid), -1)) - h).square().sum(dim=1)
    np.testing.assert_allclose(result.speeds_before[anchors.valid], q.numpy(), rtol=1e-4)
    # the summary reports these numbers next to the definitions
    text = (tmp_path / "reg" / "summary.md").read_text()
    assert f"{expected:.4g} -> {result.penalty_after:.4g}" in text
    assert f"{q.mean().item():.4g} -> " in text
    for sentence in DEFINITIONS:
        assert sentence in text
    saved = json.loads((tmp_path / "reg" / "regularize.json").read_text())
    assert saved["penalty_before"] == pytest.approx(expected, rel=1e-5)


def test_an_output_directory_of_other_settings_is_refused(tiny_run, every_trial_counts, tmp_path):
    small = {**SMALL, "evaluate": False}
    regularize_run(tiny_run, RegularizeConfig(mode="control", **small), tmp_path / "c")
    with pytest.raises(ValueError, match=r"other settings: total_steps 6 \(now 8\)"):
        regularize_run(
            tiny_run,
            RegularizeConfig(mode="control", **{**small, "total_steps": 8}),
            tmp_path / "c",
        )
    # the device may differ between calls (and a finished directory is read back)
    regularize_run(tiny_run, RegularizeConfig(mode="control", **{**small, "device": "auto"}),
                   tmp_path / "c")  # fmt: skip


def test_regularize_modes_gives_the_control_lambda_zero(tiny_run, every_trial_counts, tmp_path):
    config = RegularizeConfig(mode="center", lam=0.5, **{**SMALL, "evaluate": False})
    comparison = regularize_modes(tiny_run, config, ("control", "center"), tmp_path / "cmp",
                                  progress=False)  # fmt: skip
    assert {m: r.lam for m, r in comparison.results.items()} == {"control": 0.0, "center": 0.5}
    assert comparison.differences == {} and comparison.delays == []
    assert "## Speeds at the anchors" in (tmp_path / "cmp" / "summary.md").read_text()
