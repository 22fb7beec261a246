"""Evaluation: branching accuracy-vs-delay == explicit whole trials; intervals; outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import DelayAccuracy, build_model, evaluate_delays, trained_accuracy, wilson_interval
from agents.evaluate import batch_correct
from agents.plots import plot_class_accuracy, plot_delay_accuracy
from memenv import DelayedRecallTask


def _answering_model(cell="gru", seed=0):
    """An untrained network made to answer classes (not null), so accuracies are non-trivial."""
    torch.manual_seed(seed)
    model = build_model(cell, hidden_size=16)
    with torch.no_grad():
        model.head.bias[0] = -100.0
        model.head.weight.mul_(20.0)
        model.rnn.weight_ih_l0.mul_(5.0)
    return model.eval()


def test_wilson_interval_known_values():
    low, high = wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    np.testing.assert_allclose(low, [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.2775, 0.7634, 1.0], atol=1e-4)
    low, high = wilson_interval(0, 0)
    assert (float(low), float(high)) == (0.0, 1.0)


@pytest.mark.parametrize("t_stim", [0, None], ids=["t_stim=0", "t_stim=random"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_branching_equals_explicit_whole_trials(tiny_task, t_stim, cell):
    """With noise off, trials are fixed by (label, image, t_stim): the branched evaluation must
    give exactly the answers of running each delay's whole trial at once. (These networks
    answer alike at neighbouring delays; test_evaluate_delays_clock.py pins that the trigger
    comes exactly d steps after the image.)"""
    task = tiny_task.with_config(tiny_task.config.replace(noise_scale=0.0))
    model = _answering_model(cell)
    delays = [4, 7, 15, 40]
    n = 80
    result = evaluate_delays(
        model, task, delays=delays, n_trials=n, batch_size=n, t_stim=t_stim, seed=5
    )
    windowed = evaluate_delays(
        model, task, delays=delays, n_trials=n, batch_size=n, t_stim=t_stim, seed=5, window=3
    )
    assert (windowed.correct == result.correct).all()
    latest = task.config.latest_stim if t_stim is None else t_stim
    for i, d in enumerate(delays):
        n_steps = max(latest + d + 1, task.config.t_max)
        fixed = task.with_config(task.config.replace(n_steps=n_steps, delay=d, t_stim=t_stim))
        batch = fixed.sample(n, torch.Generator().manual_seed(5))
        assert (batch.t_resp - batch.t_stim == d).all()
        hits = batch_correct(model, batch)
        assert int(hits.sum()) == result.correct[0, i], f"delay {d}"
        per_class = np.bincount(batch.label[hits].numpy(), minlength=10)
        assert (per_class == result.class_correct[0, i]).all()
    assert 0 < result.correct.sum() < n * len(delays)


def test_memory_is_bounded_by_the_window(tiny_task, monkeypatch):
    seen = []
    original = DelayedRecallTask.render

    def render(self, spec, start, stop, rng, out=None):
        seen.append(stop - start)
        return original(self, spec, start, stop, rng, out=out)

    monkeypatch.setattr(DelayedRecallTask, "render", render)
    result = evaluate_delays(
        _answering_model(), tiny_task, delays=[4, 300], n_trials=10, t_stim=None, window=16
    )
    assert max(seen) <= 16 and sum(seen) >= 300
    assert result.n_trials.tolist() == [10, 10]
    assert result.class_trials.sum() == 20


def test_result_json_markdown_and_figures(tiny_task, tmp_path):
    result = evaluate_delays(_answering_model(), tiny_task, delays=[4, 8, 50], n_trials=40)
    path = result.save(tmp_path / "r.json")
    again = DelayAccuracy.load(path)
    assert (again.correct == result.correct).all() and again.meta == result.meta
    assert again.meta["split"] == "train" and again.meta["trained_delays"] == [4, 19]
    low, high = result.ci
    assert (low <= result.accuracy).all() and (result.accuracy <= high).all()
    table = result.markdown()
    assert len(table.splitlines()) == 2 + 3 and "| 50 |" in table
    fig = plot_delay_accuracy({"a": result, "b": again}, title="t")
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) >= 2
    assert plot_class_accuracy(result).axes
    stacked = DelayAccuracy(
        result.delays, result.n_trials, np.concatenate([result.correct, result.correct]),
        result.class_trials, np.concatenate([result.class_correct, result.class_correct]),
    )  # fmt: skip
    assert "mean accuracy" in stacked.markdown()
    plot_delay_accuracy(stacked)


def test_trained_accuracy_and_bad_arguments(tiny_task):
    model = _answering_model()
    out = trained_accuracy(model, tiny_task, n_trials=50, batch_size=20)
    assert out["n_trials"] == 50 and 0 <= out["correct"] <= 50
    assert out["ci95"][0] <= out["accuracy"] <= out["ci95"][1]
    with pytest.raises(ValueError, match="delays"):
        evaluate_delays(model, tiny_task, delays=[0, 5])
    with pytest.raises(ValueError, match="n_trials"):
        evaluate_delays(model, tiny_task, n_trials=0)
