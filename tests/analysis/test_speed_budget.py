"""Class speeds under several search budgets (`analysis.speed_budget`) and its study script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_toy_models import CellModel, TanhRNN, trigger_reader
from torch import nn

import analysis.pipeline as pipeline
from analysis.centers import ClassCenters
from analysis.pipeline import AnalysisOptions, analyze_network
from analysis.speed_budget import (
    BudgetSpeeds,
    budget_markdown,
    budget_speeds,
    ranking_agreement,
    stable_budget,
)
from memenv import DelayedRecallTask, TaskConfig

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "speed_budget.py"
FAST = AnalysisOptions(n_per_class=4, settle_steps=3, extra_per_class=0)


@pytest.fixture
def task(mnist_root):
    return DelayedRecallTask(TaskConfig(split="test", n_classes=3), root=mnist_root)


def _speeds(labels=("lm1", "lm5"), n_classes=3, **changes) -> BudgetSpeeds:
    b = len(labels)
    values = dict(
        labels=list(labels),
        class_speeds_bxc=np.arange(1.0, b * n_classes + 1).reshape(b, n_classes),
        converged_bxc=np.zeros((b, n_classes), dtype=bool),
        iterations_bxc=np.ones((b, n_classes), dtype=np.int64),
        seconds_b=np.ones(b),
    )
    values.update(changes)
    return BudgetSpeeds(**values)


# ------------------------------------------------------------------------- the result
def test_shapes_are_validated_naming_the_array():
    speeds = _speeds()
    assert speeds.class_speeds_bxc.shape == (2, 3) and speeds.n_classes == 3
    assert speeds.iterations_bxc.dtype == np.int64 and speeds.converged_bxc.dtype == np.bool_
    with pytest.raises(ValueError, match=r"class_speeds_bxc must be \[B, C\] with B = 3"):
        _speeds(labels=("lm1", "lm5", "lm9"), class_speeds_bxc=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"converged_bxc must have shape \(2, 3\)"):
        _speeds(converged_bxc=np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"iterations_bxc must have shape \(2, 3\)"):
        _speeds(iterations_bxc=np.ones(3))
    with pytest.raises(ValueError, match=r"seconds_b must have shape \(2,\)"):
        _speeds(seconds_b=np.ones(3))


def test_dict_round_trip_keeps_nan_as_none():
    speeds = _speeds()
    speeds.class_speeds_bxc[1, 2] = np.nan
    speeds.converged_bxc[0, 1] = True
    data = speeds.to_dict()
    assert data["class_speeds"][1][2] is None
    back = BudgetSpeeds.from_dict(json.loads(json.dumps(data, allow_nan=False)))
    assert back.labels == speeds.labels
    np.testing.assert_array_equal(back.class_speeds_bxc, speeds.class_speeds_bxc)  # NaN == NaN
    np.testing.assert_array_equal(back.converged_bxc, speeds.converged_bxc)
    np.testing.assert_array_equal(back.iterations_bxc, speeds.iterations_bxc)
    np.testing.assert_array_equal(back.seconds_b, speeds.seconds_b)


def test_geometric_mean_ignores_nan_and_non_positive_speeds():
    speeds = _speeds(
        class_speeds_bxc=[[1e-4, np.nan, 1e-2], [0.0, np.nan, np.nan]],
        converged_bxc=[[True, False, False], [True, False, False]],
    )
    means = speeds.geometric_mean_b()
    assert means[0] == pytest.approx(1e-3)
    assert np.isnan(means[1])  # 0 has no logarithm, NaN is no class
    np.testing.assert_allclose(speeds.converged_share_b(), [0.5, 1.0])


# ---------------------------------------------------------------------- the searches
def _critical_rnn(n_input: int) -> TanhRNN:
    """``h' = tanh(h)``: a degenerate fixed point at 0 that Newton approaches only linearly
    (``h`` shrinks by 2/3 a step, ``q`` by about 11x), so small budgets stop early."""
    return TanhRNN(torch.eye(2), torch.zeros(2, n_input), torch.zeros(2)).double()


def test_a_larger_budget_never_ends_faster_and_stays_within_budget(task, monkeypatch):
    starts = np.array([[0.6, -0.5], [np.nan, np.nan], [0.3, 0.8]])
    centres = ClassCenters(
        centers=starts, classes=np.arange(3), n_correct=[4, 0, 4], n_trials=[4, 4, 4],
        states=np.zeros((12, 2)), trial_labels=np.repeat(np.arange(3), 4),
        correct=np.zeros(12, dtype=bool), settle_steps=3, noise_scale=1.0,
    )  # fmt: skip
    monkeypatch.setattr(pipeline, "class_centers", lambda *a, **k: centres)
    # each search gets its own method's options (an LM key would break Adam, and back)
    options = AnalysisOptions(search_options={"lr": 1e-2, "initial_damping": 1e-3})
    result = budget_speeds(
        _critical_rnn(task.obs_dim), task, options, (0, 1, 3, 10, 200), adam_iterations=30
    )
    assert result.labels == ["lm0", "lm1", "lm3", "lm10", "lm200", "adam30"]
    speeds = result.class_speeds_bxc
    assert np.isnan(speeds[:, 1]).all() and not result.converged_bxc[:, 1].any()
    assert (result.iterations_bxc[:, 1] == 0).all()
    lm = speeds[:5][:, [0, 2]]
    h = np.tanh(starts[[0, 2]]) - starts[[0, 2]]
    np.testing.assert_allclose(lm[0], (h**2).sum(axis=1))  # budget 0: the speed at the centre
    assert (np.diff(lm, axis=0) <= 1e-12 * lm[:-1]).all()  # never faster with more budget
    assert lm[3].max() < 1e-3 * lm[0].min()  # and much slower after 10 Jacobians
    budgets = np.array([0, 1, 3, 10, 200, 30])[:, None]
    assert (result.iterations_bxc[:, [0, 2]] <= budgets).all()
    assert not result.converged_bxc[1:4, [0, 2]].any()  # the small budgets ran out
    assert result.converged_bxc[4, [0, 2]].all()  # 200 Jacobians reach the fixed point
    assert (result.seconds_b >= 0).all()


def test_budget_of_the_study_matches_the_pipeline(task, every_trial_counts):
    torch.manual_seed(0)
    model = CellModel(nn.GRUCell(task.obs_dim, 4), 4)
    options = AnalysisOptions(
        n_per_class=4, settle_steps=3, extra_per_class=0, accuracy_trials=10, long_delay=5,
        backtrack=False, trajectories_per_class=1, trajectory_steps=2,
        search_options={"max_iterations": 7},
    )  # fmt: skip
    result = budget_speeds(model, task, options, (7, 50))
    analysed = analyze_network(model, task, options)
    np.testing.assert_allclose(result.class_speeds_bxc[0], analysed.point_speeds, rtol=1e-12)
    np.testing.assert_array_equal(result.iterations_bxc[0], analysed.points.iterations)


def test_a_network_without_any_correct_class_is_refused(task):
    silent = trigger_reader(task.obs_dim)
    with torch.no_grad():
        silent.head.bias[0] = 100.0  # always the null answer
    with pytest.raises(ValueError, match="answers no class correctly"):
        budget_speeds(silent, task, FAST, (1, 2))
    with pytest.raises(ValueError, match="budgets"):
        budget_speeds(silent, task, FAST, (5, 5))
    with pytest.raises(ValueError, match="budgets"):
        budget_speeds(silent, task, FAST, (-1,))


# ---------------------------------------------------------------------- across networks
def test_ranking_agreement_of_identical_reversed_and_missing_rankings():
    base = np.array([1e-6, 1e-4, 1e-3, 1e-2, 1e-1])
    speeds = np.stack([base, 10 * base, base[::-1], base], axis=1)
    speeds[0, 3] = np.nan
    agreement = ranking_agreement(speeds)
    tau, n = agreement["tau"], agreement["n"]
    assert tau[0, 1] == pytest.approx(1.0) and tau[0, 2] == pytest.approx(-1.0)
    assert tau[1, 2] == pytest.approx(-1.0) and tau[0, 0] == pytest.approx(1.0)
    assert n[0, 3] == 4 and n[0, 1] == 5  # the NaN drops one network from its pairs only
    assert tau[0, 3] == pytest.approx(1.0)
    assert agreement["p"][0, 1] < 0.05
    one = ranking_agreement(np.array([[1.0, np.nan], [2.0, 3.0]]))
    assert np.isnan(one["tau"][0, 1]) and one["n"][0, 1] == 1
    with pytest.raises(ValueError, match=r"\[n, B\]"):
        ranking_agreement(np.ones(3))


def test_stable_budget_is_the_smallest_confirmed_by_every_larger_one():
    labels = ["lm50", "lm200", "lm1000", "adam100000"]
    tau = np.array(
        [
            [1.0, 0.9, 0.7, 0.1],
            [0.9, 1.0, 0.85, 0.1],
            [0.7, 0.85, 1.0, 0.1],
            [0.1, 0.1, 0.1, 1.0],
        ]
    )
    assert stable_budget(labels, tau) == "lm200"  # lm50 disagrees with lm1000; Adam ignored
    assert stable_budget(labels, tau, threshold=0.6) == "lm50"
    assert stable_budget(labels, tau, threshold=0.9) is None  # lm1000 alone never qualifies
    tau[0, 2] = np.nan
    assert stable_budget(labels, tau, threshold=0.6) == "lm200"  # NaN fails
    # order of the labels does not matter, only the budgets
    order = [2, 0, 1, 3]
    assert stable_budget([labels[i] for i in order], tau[np.ix_(order, order)], 0.8) == "lm200"
    with pytest.raises(ValueError, match="tau_bxb"):
        stable_budget(labels, np.ones((2, 2)))


def test_markdown_lists_every_budget_and_the_tau_matrix():
    first = _speeds(labels=("lm1", "lm5", "adam9"), converged_bxc=np.eye(3, dtype=bool))
    second = _speeds(class_speeds_bxc=[[2.0, 1.0, np.nan], [1.0, 1.0, 1.0]])
    text = budget_markdown([first, second], stable="lm1")
    assert "| lm1 | 2 |" in text and "| adam9 | 1 |" in text
    assert "| lm5 | 2 | " in text and "1/6 (17%)" in text  # first's class 1 at lm5
    assert "| | lm1 | lm5 | adam9 |" in text
    assert "Stable budget (tau >= threshold with every larger LM budget): lm1" in text


# ---------------------------------------------------------------------------- the script
def _script():
    spec = importlib.util.spec_from_file_location("speed_budget_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_on_a_tiny_study_skips_resumes_and_writes_json(
    tmp_path, mnist_root, monkeypatch, capsys, every_trial_counts
):
    from studies.reproduce import ReproduceConfig, run_reproduce

    config = ReproduceConfig(
        preset="tiny", cells=("gru",), curricula=("none",), regularize=False, device="cpu",
        data_root=str(mnist_root),
    )  # fmt: skip
    study = tmp_path / "study"
    run_reproduce(config, study, progress=False, stop_after="train")
    real = pipeline.class_centers  # every trial counts (the fixture)
    calls = []

    def second_member_answers_nothing(*args, **kwargs):
        calls.append(1)
        found = real(*args, **kwargs)
        if len(calls) == 2:
            found.n_correct[:] = 0
            found.centers[:] = np.nan
        return found

    monkeypatch.setattr(pipeline, "class_centers", second_member_answers_nothing)
    script = _script()
    argv = ["--study", str(study), "--budgets", "1,4", "--adam-networks", "1"]
    argv += ["--adam-iterations", "5", "--no-progress"]
    assert script.main(argv) == 0
    out = study / "speed_budget.json"
    saved = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert saved["labels"] == ["lm1", "lm4", "adam5"]
    assert [r["key"] for r in saved["networks"]] == ["gru-none-m0"]
    record = saved["networks"][0]
    assert (record["cell"], record["curriculum"], record["member"]) == ("gru", "none", 0)
    assert BudgetSpeeds.from_dict(record["speeds"]).labels == ["lm1", "lm4", "adam5"]
    assert [s["key"] for s in saved["skipped"]] == ["gru-none-m1"]
    assert "answers no class correctly" in saved["skipped"][0]["error"]
    assert len(saved["tau"]) == 3 and saved["stable_budget"] is None  # one network: no tau
    printed = capsys.readouterr().out
    assert "| lm4 | 1 |" in printed and "skipped gru-none-m1" in printed

    # resumed: the finished network is read back, the skipped one tried again
    assert script.main(argv) == 0
    assert len(calls) == 3
    again = json.loads(out.read_text())
    assert [r["key"] for r in again["networks"]] == ["gru-none-m0", "gru-none-m1"]
    assert again["networks"][0] == record
    assert again["skipped"] == []
    assert again["networks"][1]["speeds"]["labels"] == ["lm1", "lm4"]  # Adam: first one only

    # a later call of the study named other cells, and this one asks for no Adam: nothing
    # measured is dropped, the record with Adam is kept whole and its row stays in the table
    config_file = study / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "cells": ["lstm"]}))
    assert script.main(["--study", str(study), "--budgets", "1,4", "--no-progress"]) == 0
    assert len(calls) == 3  # nothing redone
    third = json.loads(out.read_text())
    assert [r["key"] for r in third["networks"]] == ["gru-none-m0", "gru-none-m1"]
    assert third["networks"][0] == record and third["labels"] == ["lm1", "lm4", "adam5"]


def test_ranking_agreement_within_groups_is_not_fooled_by_group_offsets():
    # inside each group the two budgets rank the networks in opposite orders; the groups sit
    # orders of magnitude apart, so the pooled ranking looks stable
    slow, fast = np.array([1e-12, 2e-12, 3e-12]), np.array([1e-6, 2e-6, 3e-6])
    speeds_nxb = np.stack(
        [np.concatenate([slow, fast]), np.concatenate([slow[::-1], fast[::-1]])], 1
    )
    pooled = ranking_agreement(speeds_nxb)
    assert pooled["tau"][0, 1] == pytest.approx(0.2)  # 9 of the 15 pairs agree
    within = ranking_agreement(speeds_nxb, groups=["lstm"] * 3 + ["gru"] * 3)
    assert within["tau"][0, 1] == pytest.approx(-1.0) and within["n"][0, 1] == 6
    assert np.isnan(within["p"][0, 1])
    with pytest.raises(ValueError, match="groups must name each of the 6 networks, got 2"):
        ranking_agreement(speeds_nxb, groups=["a", "b"])
