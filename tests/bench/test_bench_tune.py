"""`memenv bench --tune` and `--match-params`: the same budget per architecture, validation
images only, the chosen settings reused by the final runs and written to the report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from agents.architectures import build_architecture, match_hidden_size, n_parameters
from memenv.cli import main
from memenv.errors import UsageError
from studies.bench import BenchArchitecture
from studies.bench_tune import (
    TuneBudget,
    candidates,
    rung_file,
    trial_dir,
    tune_plan,
    tuning_markdown,
    tuning_results,
)
from studies.jobs import run_plan


def test_tuning_uses_validation_images_and_the_same_draws_for_all(
    tiny_protocol, tmp_path, monkeypatch
):
    import memenv.task

    splits = []
    real = memenv.task.load_images

    def spy(dataset, split, *args, **kwargs):
        splits.append(split)
        return real(dataset, split, *args, **kwargs)

    monkeypatch.setattr(memenv.task, "load_images", spy)
    archs = [BenchArchitecture("gru", "gru"), BenchArchitecture("lru", "lru")]
    budget = TuneBudget(trials=3, steps=3, eval_trials=4)
    run_plan(tune_plan(archs, tiny_protocol, tmp_path, budget), progress=False)
    assert set(splits) == {"fit", "validation"}  # never the test images
    results = tuning_results(archs, tmp_path, budget)
    gru, lru = (results[a]["trials"] for a in ("gru", "lru"))
    assert [t["lr"] for t in gru] == [t["lr"] for t in lru]  # the same learning rates
    assert gru[0]["lr"] == tiny_protocol.train_config(0).lr and lru[0]["options"] == {}
    assert all(0.5 <= t["options"]["r_min"] <= 0.99 for t in lru[1:])  # LRU's own tunable
    assert all(t["options"] == {} for t in gru)
    chosen = results["gru"]["chosen"]
    assert chosen["score"] == max(t["score"] for t in gru if t["score"] is not None)
    with pytest.raises(UsageError, match="tuning is not finished: no score for gru t3"):
        tuning_results(archs, tmp_path, TuneBudget(trials=4, steps=3, eval_trials=4))


def test_candidates_start_untuned_and_stay_in_range(tiny_protocol):
    tried = candidates(BenchArchitecture("lru", "lru"), tiny_protocol, TuneBudget(trials=20))
    assert tried[0] == {"lr": tiny_protocol.train_config(0).lr, "options": {}}
    assert all(1e-4 <= t["lr"] <= 1e-2 for t in tried) and len(tried) == 20
    # stratified: one draw in each of 19 equal strata of the log range, so both ends are tried
    logs = sorted((np.log(t["lr"]) - np.log(1e-4)) / np.log(100) for t in tried[1:])
    assert all(k / 19 <= u < (k + 1) / 19 for k, u in enumerate(logs))
    three = candidates(BenchArchitecture("gru", "gru"), tiny_protocol, TuneBudget(trials=3))
    assert min(t["lr"] for t in three[1:]) < 1e-3 < max(t["lr"] for t in three[1:])
    with pytest.raises(UsageError, match="TuneBudget.trials must be a positive integer, got 0"):
        TuneBudget(trials=0)


def test_successive_halving_keeps_the_better_half_and_resumes_exactly(tiny_protocol, tmp_path):
    import torch

    from agents.trainer import train

    gru = BenchArchitecture("gru", "gru")
    budget = TuneBudget(trials=4, steps=4, eval_trials=4, rungs=3)  # 4 at 1 step, 2 at 2, 1 at 4
    assert [budget.rung_steps(r) for r in range(3)] == [1, 2, 4]
    assert [budget.kept(r) for r in range(3)] == [4, 2, 1]
    assert budget.training_steps() == 4 * 1 + 2 * 1 + 1 * 2
    plan = tune_plan([gru], tiny_protocol, tmp_path, budget)
    assert plan.job("tune gru t0 r1").after == tuple(f"tune gru t{k} r0" for k in range(4))
    run_plan(plan, progress=False)

    def read(k, rung):
        return json.loads(rung_file(tmp_path, gru, k, rung, budget).read_text())

    first = [read(k, 0) for k in range(4)]
    # the two best at rung 0 (ties to the earlier trial) went on; the others are stopped
    best = sorted(range(4), key=lambda k: (-first[k]["score"], k))[:2]
    second = [read(k, 1) for k in range(4)]
    assert [not r.get("stopped") for r in second] == [k in best for k in range(4)]
    assert all(second[k]["steps"] == (2 if k in best else 1) for k in range(4))
    winner = min(best, key=lambda k: (-second[k]["score"], k))
    results = tuning_results([gru], tmp_path, budget)["gru"]
    assert results["chosen"]["trial"] == winner and results["chosen"]["steps"] == 4
    assert sum(not t.get("stopped") for t in results["trials"]) == 1
    assert results["trials"][winner]["rung_scores"] == [
        {"steps": s, "score": r["score"]} for s, r in ((1, first[winner]), (2, second[winner]),
                                                       (4, results["chosen"]))
    ]  # fmt: skip
    assert [len(t["rung_scores"]) for t in results["trials"]] == [
        3 if k == winner else 2 if k in best else 1 for k in range(4)
    ]
    assert "successive halving over 3 rungs: 4 at 1, then 2 at 2, then 1 at 4 steps" in (
        tuning_markdown({"gru": results}, budget)
    )

    # the winner trained 1, then 2, then 4 steps in three resumed calls: the same weights as
    # one uninterrupted run of its settings
    settings = candidates(gru, tiny_protocol, budget)[winner]
    short = dataclasses.replace(tiny_protocol, total_steps=4)
    trial = gru.with_settings(lr=settings["lr"], options=settings["options"])
    config = trial.train_config(short, 0).replace(split="fit", checkpoint_every=1)
    straight = train(config, tmp_path / "straight", model=trial.build(config), progress=False)
    rungs = torch.load(trial_dir(tmp_path, gru, winner) / "run" / "model.pt", weights_only=True)
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(rungs["state_dict"][name], value, rtol=0, atol=0)


def test_tune_budget_rejects_more_rungs_than_halvings():
    with pytest.raises(UsageError, match="rungs=4 halves 7 trials below one trial; use at most 3"):
        TuneBudget(trials=7, rungs=4)
    with pytest.raises(UsageError, match="rungs=3 needs at least 4 steps"):
        TuneBudget(trials=8, steps=3, rungs=3)


def test_match_params_sizes_each_architecture():
    for spec, step in (("gru", 1), ("lru", 1), ("transformer", 4)):  # 4 heads: sizes by 4
        size = match_hidden_size(spec, 50_000)
        assert size % step == 0
        sizes = (size - step, size, size + step)
        counts = [n_parameters(build_architecture(spec, s, seed=0)) for s in sizes]
        assert abs(counts[1] - 50_000) <= min(abs(c - 50_000) for c in counts)
    with pytest.raises(UsageError, match="n_params must be a positive integer, got 0"):
        match_hidden_size("gru", 0)


def test_cli_tunes_then_runs_with_the_chosen_settings(mnist_root, tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["bench", "--archs", "gru,lru", "--seeds", "0", "--steps", "3", "--batch-size", "8",
            "--data-root", str(mnist_root), "--device", "cpu", "--n-trials", "4",
            "--eval-batch-size", "4", "--anchor-trials", "2", "--out", str(out), "--no-progress",
            "--tune", "--tune-trials", "2", "--tune-rungs", "2", "--tune-eval-trials", "4",
            "--match-params", "20000"]  # fmt: skip
    assert main(argv) == 0
    tuning = json.loads((out / "tuning.json").read_text())["results"]
    table = json.loads((out / "bench_table.json").read_text())
    for row in table["rows"]:
        saved = json.loads((out / row["arch"] / "seed0" / "bench.json").read_text())
        assert saved["train_config"]["lr"] == tuning[row["arch"]]["chosen"]["lr"]
        assert abs(row["n_parameters"] - 20_000) < 0.2 * 20_000
    text = (out / "bench_table.md").read_text()
    assert "## Tuning" in text and "| gru |" in text
    assert "--tune --tune-trials 2 --tune-rungs 2" in text
    assert table["meta"]["settings"]["hidden_size"] == "per architecture"
    assert "tuning: 2 settings x 2 architectures" in capsys.readouterr().out
