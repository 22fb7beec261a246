"""The regularisation experiment on a tiny protocol: runs, resumes, tables, figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studies.finetune import DEFINITIONS
from studies.regularize_study import (
    StudyConfig,
    member_sources,
    plot_study,
    run_study,
    study_table,
    write_study_report,
)


def _study(mnist_root, ensemble: bool) -> StudyConfig:
    return StudyConfig(
        cells=("gru",), n_seeds=2, lam=1.0, modes=("center", "control"), ensemble=ensemble,
        eval_delays=(4, 30), eval_trials=20, device="cpu", data_root=str(mnist_root),
        train_overrides={"hidden_size": 6, "batch_size": 8, "total_steps": 6,
                         "checkpoint_every": 3, "log_every": 3},
        finetune_overrides={"total_steps": 4, "n_noise": 2, "n_per_class": 3, "lr": 1e-2,
                            "log_every": 2, "checkpoint_every": 2},
    )  # fmt: skip


@pytest.mark.parametrize("ensemble", [True, False])
def test_the_study_runs_resumes_and_reports(tmp_path, mnist_root, every_trial_counts, ensemble):
    study = _study(mnist_root, ensemble)
    records = run_study(study, tmp_path / "runs", progress=False)
    assert sorted((r["seed"], r["mode"]) for r in records) == [
        (0, "center"), (0, "control"), (1, "center"), (1, "control"),
    ]  # fmt: skip
    model = tmp_path / "runs" / "finetune" / "gru-s1-center" / "model.pt"
    stamp = model.stat().st_mtime_ns
    again = run_study(study, tmp_path / "runs", progress=False)
    assert model.stat().st_mtime_ns == stamp  # finished runs are read back
    assert [r["accuracy_after"] for r in again] == [r["accuracy_after"] for r in records]
    # the before-evaluation of one source is shared by its fine-tunings
    for seed in (0, 1):
        pair = [r for r in records if r["seed"] == seed]
        assert pair[0]["accuracy_before"] == pair[1]["accuracy_before"]

    paths = write_study_report(
        records, tmp_path / "report", {"command": "test", "commit": "abc"}, notes=["A note."]
    )
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    text = paths["report"].read_text()
    assert "### GRU (2 seeds)" in text and "center - control" in text
    assert text.rstrip().endswith("A note.")
    for sentence in DEFINITIONS:  # what S and q are, and why they can disagree
        assert sentence in text
    # S, the penalty at the anchors before and after (mean over seeds), in its own column
    assert "| S before -> after |" in text
    s_before = np.mean([r["penalty_before"] for r in records if r["mode"] == "center"])
    s_after = np.mean([r["penalty_after"] for r in records if r["mode"] == "center"])
    assert f"| {s_before:.3g} -> {s_after:.3g} |" in text
    table = json.loads(paths["table"].read_text())
    center = table["cells"]["gru"]["center"]
    acc = np.array([[r["accuracy_after"][d] for d in ("4", "30")] for r in records
                    if r["mode"] == "center"])  # fmt: skip
    np.testing.assert_allclose(center["accuracy"]["mean"], acc.mean(axis=0))
    control = np.array([[r["accuracy_after"][d] for d in ("4", "30")] for r in records
                        if r["mode"] == "control"])  # fmt: skip
    np.testing.assert_allclose(center["minus_control"]["mean"], (acc - control).mean(axis=0))
    assert center["speed_ratio"] < 1  # lam = 1 slows the anchors; tested in detail elsewhere


def test_t_interval_of_known_values():
    table = study_table([
        {"cell": "gru", "seed": s, "mode": "control", "accuracy_before": {"4": 0.5},
         "accuracy_after": {"4": a}, "mean_speed_before": 1.0, "mean_speed_after": 1.0,
         "penalty_first": None, "penalty_last": None}
        for s, a in enumerate([0.4, 0.6])
    ])  # fmt: skip
    row = table["cells"]["gru"]["control"]["accuracy"]
    # mean 0.5, sd 0.1414, t(0.975, 1) = 12.706: half-width 12.706 * 0.1414 / sqrt(2) = 1.2706
    assert row["mean"][0] == pytest.approx(0.5)
    assert row["ci_high"][0] == pytest.approx(0.5 + 1.27062, rel=1e-4)


def test_bad_study_settings_raise():
    with pytest.raises(ValueError, match="n_seeds .* got 0"):
        StudyConfig(n_seeds=0)
    with pytest.raises(ValueError, match="modes must be among"):
        StudyConfig(modes=("center", "sideways"))


def _records(diffs_sxd, delays=(4, 100)):
    """Hand-made records of one cell: control at 0.5, center at 0.5 + diff, per seed."""
    records = []
    for seed, diffs in enumerate(diffs_sxd):
        for mode, values in (
            ("control", [0.5] * len(delays)),
            ("center", [0.5 + d for d in diffs]),
        ):
            records.append({
                "cell": "gru", "seed": seed, "mode": mode,
                "accuracy_before": {str(d): 0.4 for d in delays},
                "accuracy_after": {str(d): v for d, v in zip(delays, values, strict=True)},
                "mean_speed_before": 1.0, "mean_speed_after": 0.5,
                "penalty_first": None, "penalty_last": None,
            })  # fmt: skip
    return records


def test_the_figure_shows_the_paired_difference_per_delay():
    table = study_table(_records([[0.1, 0.2], [0.3, 0.0], [0.2, 0.1]]))
    center = table["cells"]["gru"]["center"]
    np.testing.assert_allclose(center["minus_control"]["mean"], [0.2, 0.1])
    assert len(plot_study(table).axes) == 1  # the reproduction's figure: accuracy only
    fig = plot_study(table, differences=True)
    assert len(fig.axes) == 2
    lower = fig.axes[1]
    (line,) = [ln for ln in lower.get_lines() if ln.get_label() == "center - control"]
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.1])
    np.testing.assert_allclose(line.get_xdata(), [4, 100])


def test_member_sources_are_the_ensemble_members(tmp_path, mnist_root):
    from agents.config import TrainConfig
    from agents.trainer import train

    config = TrainConfig(
        data_root=str(mnist_root), hidden_size=4, batch_size=4, total_steps=2, lr_decay_step=None,
        checkpoint_every=2, log_every=2, device="cpu", n_members=2, cell="lstm",
    )  # fmt: skip
    train(config, tmp_path / "ens", progress=False)
    cell, sources = member_sources(tmp_path / "ens", 2)
    assert cell == "lstm"
    assert sources == {("lstm", 0): (tmp_path / "ens", 0), ("lstm", 1): (tmp_path / "ens", 1)}
    with pytest.raises(ValueError, match="at least 3 members; .* has 2 members"):
        member_sources(tmp_path / "ens", 3)
    with pytest.raises(FileNotFoundError, match="no finished run"):
        member_sources(tmp_path / "none", 2)
