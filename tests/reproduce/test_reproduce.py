"""`memenv reproduce` on the tiny preset: end to end, interrupted and resumed, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import studies.reproduce as reproduce
from agents.checkpoint import read_json
from studies.reproduce import ReproduceConfig, job_commits, reproduce_plan, run_reproduce
from studies.reproduce_report import SECTIONS


def _config(mnist_root, **changes) -> ReproduceConfig:
    values = dict(
        preset="tiny", cells=("gru",), reg_modes=("center", "control"), device="cpu",
        data_root=str(mnist_root),
    )  # fmt: skip
    values.update(changes)
    return ReproduceConfig(**values)


def _strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_interrupted_study_resumes_without_redoing_finished_parts(
    tmp_path, mnist_root, every_trial_counts, monkeypatch
):
    config = _config(mnist_root)
    out = tmp_path / "study"
    real = reproduce.analyze_run
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the third analysis
        return real(*args, **kwargs)

    monkeypatch.setattr(reproduce, "analyze_run", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(config, out, progress=False)
    finished = [
        out / "train" / "gru-vocu" / "model.pt",
        out / "evaluate" / "gru-decu.json",
        out / "analysis" / "gru-none" / "m0" / "summary.json",
        out / "analysis" / "gru-none" / "m1" / "summary.json",
    ]
    assert all(p.is_file() for p in finished)
    assert not (out / "analysis" / "gru-vocu" / "m0" / "summary.json").exists()
    assert not (out / "report").exists()
    stamps = [p.stat().st_mtime_ns for p in finished]

    monkeypatch.setattr(reproduce, "analyze_run", real)
    result = run_reproduce(config, out, progress=False)
    assert [p.stat().st_mtime_ns for p in finished] == stamps  # read back, not redone
    assert result["failures"] == []
    fine_tunings = [
        f"regularize gru {curriculum} m{member} {mode}"
        for curriculum in ("decu", "vocu", "none")  # the authors' networks first
        for member in (0, 1)
        for mode in ("center", "control")
    ]
    assert result["ran"] == [
        "analyze gru vocu m0", "analyze gru vocu m1", "analyze gru decu m0",
        "analyze gru decu m1", *fine_tunings, "report",
    ]  # fmt: skip
    assert (out / "regularize" / "finetune" / "gru-decu-s1-control" / "regularize.json").is_file()
    assert (out / "analysis" / "gru-vocu" / "m1" / "lineage.npz").is_file()
    assert not (out / "analysis" / "gru-none" / "m1" / "lineage.npz").exists()  # no backtracking

    report = result["paths"]["report"].read_text()
    positions = [report.index(section) for section in SECTIONS]
    assert positions == sorted(positions)  # every section, in order
    for name in ("accuracy", "speed_accuracy", "lineage_vocu", "lineage_decu", "regularize"):
        figure = result["paths"][f"figure_{name}"]
        assert figure.stat().st_size > 0 and f"]({name}.png)" in report
    assert report.count("| DeCu extrapolates better than VoCu | GRU |") == 1
    assert "center - control" in report
    assert report.count("| slower networks remember longer (speed at class centres") == 2
    for group in ("GRU DECU", "GRU VOCU", "GRU NONE"):  # one regularisation row per run
        assert report.count(f"| regularisation improves long-delay accuracy | {group} |") == 1
    assert "- verdicts hold for: under `tiny`, full MNIST, PyTorch's cells" in (report)
    assert "- commit " in report and "train, evaluate, analyze, regularize" in report
    wall = float(report.split("- wall time: ")[1].split(" s")[0])  # this call counted too
    assert 0 < wall <= read_json(out / "wall.json")["wall_s"] + 1e-9
    page = result["paths"]["html"].read_text()
    assert page.count("data:image/png;base64,") == 5 and "<table>" in page
    assert "<h2>Claims</h2>" in page
    results = _strict_json(result["paths"]["results"])
    assert len(results["networks"]) == 6
    assert {c["verdict"] for c in results["claims"]} <= {
        "supported", "contradicted", "no evidence either way", "not tested",
        "sensitivity (no verdict)",
    }  # fmt: skip
    assert all("p_holm" in c and "low" in c["effect"] for c in results["claims"])
    assert len(results["regularize"]) == 12
    assert {r["curriculum"] for r in results["regularize"]} == {"none", "vocu", "decu"}

    again = run_reproduce(config, out, progress=False)
    assert again["ran"] == ["report"]
    assert [p.stat().st_mtime_ns for p in finished] == stamps


def test_stop_after_and_a_changed_protocol(tmp_path, mnist_root):
    config = _config(mnist_root, curricula=("none",), regularize=False)
    out = tmp_path / "study"
    result = run_reproduce(config, out, progress=False, stop_after="train")
    assert result["ran"] == ["train gru none"] and result["paths"] == {}
    assert not (out / "evaluate").exists()
    with pytest.raises(ValueError, match="n_seeds differ"):
        run_reproduce(_config(mnist_root, curricula=("none",), n_seeds=3), out, progress=False)
    with pytest.raises(ValueError, match="stop_after .* got 'nowhere'"):
        run_reproduce(config, out, progress=False, stop_after="nowhere")
    # the search budget may still change: no analysis has finished
    budget = _config(mnist_root, curricula=("none",), regularize=False, search_iterations=7)
    run_reproduce(budget, out, progress=False, stop_after="evaluate")
    assert (out / "evaluate" / "gru-none.json").is_file()
    assert read_json(out / "config.json")["search_iterations"] == 7
    assert budget.analysis_options("none").search_options == {"max_iterations": 7}
    with pytest.raises(ValueError, match="eval_trials differ"):
        run_reproduce(
            _config(mnist_root, curricula=("none",), regularize=False, search_iterations=7,
                    eval_trials=9),
            out, progress=False, stop_after="train",
        )  # fmt: skip
    (out / "analysis" / "gru-none" / "m0").mkdir(parents=True)
    (out / "analysis" / "gru-none" / "m0" / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="search_iterations differ"):
        run_reproduce(config, out, progress=False, stop_after="train")
    commits = job_commits(out)
    assert [stages for stages in commits.values()] == [["train", "evaluate"]]
    assert reproduce._unrecorded_jobs(config, out) == "analyze gru none m0"  # written by hand
    (out / "jobs.jsonl").unlink()  # as a folder filled by code that predates the log
    assert reproduce._unrecorded_jobs(config, out) == (
        "train gru none, evaluate gru none, analyze gru none m0"
    )


def test_regularised_runs_and_modes_are_chosen(tmp_path):
    config = ReproduceConfig(
        preset="tiny", reg_curricula=("vocu",), reg_modes=("center", "control")
    )
    jobs = [j.key for j in reproduce_plan(config, tmp_path).jobs if j.kind == "finetune"]
    assert jobs == [f"regularize {c} vocu m{k} {m}" for k in (0, 1) for c in ("gru", "lstm")
                    for m in ("center", "control")]  # fmt: skip
    one_seed = ReproduceConfig(
        preset="tiny", reg_curricula=("decu",), reg_seeds=1, reg_modes=("center",)
    )
    assert [j.key for j in reproduce_plan(one_seed, tmp_path).jobs if j.kind == "finetune"] == [
        "regularize gru decu m0 center", "regularize lstm decu m0 center",
    ]  # fmt: skip
    split = ReproduceConfig(preset="tiny", search_iterations=1000, backtrack_iterations=200)
    options = split.analysis_options("vocu")
    assert options.search_options == {"max_iterations": 1000}
    assert options.backtrack_search_options == {"max_iterations": 200}
    assert ReproduceConfig(preset="tiny").analysis_options("vocu").backtrack_search_options is None
    with pytest.raises(ValueError, match=r"reg_curricula must be a list of .* got \('spiral',\)"):
        ReproduceConfig(preset="tiny", reg_curricula=("spiral",))
    with pytest.raises(
        ValueError, match="search_iterations must be a positive integer or None, got 0"
    ):
        ReproduceConfig(preset="tiny", search_iterations=0)


def test_a_network_that_fails_its_analysis_is_reported_not_fatal(tmp_path, mnist_root):
    # without the lenient centres a tiny network answers no class: the regulariser refuses it
    config = _config(mnist_root, curricula=("none",), n_seeds=2, reg_modes=("center",))
    result = run_reproduce(config, tmp_path / "study", progress=False)
    report = result["paths"]["report"].read_text()
    for section in SECTIONS:
        assert section in report
    assert result["failures"]  # deterministic: these tiny networks answer no class
    for job, error in result["failures"]:
        assert job.startswith(("analyze", "regularize")) and error
        assert job in report


def test_plan_lists_every_job_once(tmp_path):
    config = ReproduceConfig(preset="tiny", cells=("gru", "lstm"), reg_modes=("center",))
    jobs = [j.key for j in reproduce_plan(config, tmp_path).jobs]
    assert len(jobs) == len(set(jobs))
    assert sum(j.startswith("train") for j in jobs) == 6
    assert sum(j.startswith("analyze") for j in jobs) == 6 * 2
    assert sum(j.startswith("regularize") for j in jobs) == 3 * 2 * 2  # curricula x cells x seeds
    assert jobs[-1] == "report"


def test_curricula_fit_the_run():
    config = ReproduceConfig(preset="fast")
    for curriculum in ("vocu", "decu"):
        train = config.train_config("gru", curriculum)
        assert train.curriculum_scale == pytest.approx(2500 / 140_000)
        from agents.schedule import resolve_schedule

        schedule = resolve_schedule(curriculum, "mnist", train.curriculum_scale)
        last = schedule.at(train.total_steps - 1)
        assert last.get("n_classes") == 10 and last.get("t_max") == 20  # last stage reached
    demo = ReproduceConfig(preset="demo")
    assert demo.cells == ("gru",) and demo.n_seeds == 3
    assert demo.train_config("gru", "vocu").curriculum_scale == pytest.approx(1000 / 140_000)
    assert ReproduceConfig(preset="paper").train_config("gru", "decu").curriculum_scale == 1.0
    assert ReproduceConfig(preset="paper").n_seeds == 10
    assert ReproduceConfig(preset="paper", dataset="cifar10").n_seeds == 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preset": "huge"}, "preset must be one of .* got 'huge'"),
        ({"dataset": "svhn"}, "dataset must be one of .* got 'svhn'"),
        ({"dataset": "cifar10"}, "dataset must be mnist or fashion-mnist .* got 'cifar10'"),
        ({"cells": ("gru", "tcn")}, "cells must be .* got \\('gru', 'tcn'\\)"),
        ({"curricula": ("vocu", "vocu")}, "curricula must be free of repeats"),
        ({"reg_modes": ("sideways",)}, "reg_modes must be .* got \\('sideways',\\)"),
        ({"n_seeds": 0}, "n_seeds must be a positive integer, got 0"),
        ({"long_delay_min": 5000}, "long_delay_min must be at most"),
        ({"train_overrides": {"hidden_size": -1}}, "hidden_size"),
        ({"train_overrides": {"n_members": 2}}, "train_overrides must be free of the study's"),
    ],
)
def test_bad_settings_name_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        ReproduceConfig(**{"preset": "fast", **changes})


def test_command_line(tmp_path, mnist_root, capsys):
    from memenv.cli import main

    out = tmp_path / "study"
    code = main([
        "reproduce", "--preset", "tiny", "--cells", "gru", "--curricula", "none", "--seeds", "2",
        "--data-root", str(mnist_root), "--out", str(out), "--device", "cpu", "--no-progress",
        "--stop-after", "evaluate",
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert f"study folder: {out}" in printed and "stopped after stage 'evaluate'" in printed
    assert (out / "evaluate" / "gru-none.json").is_file()
    assert json.loads((out / "config.json").read_text())["n_seeds"] == 2
    code = main([
        "reproduce", "--preset", "tiny", "--cells", "gru", "--curricula", "none", "--seeds", "2",
        "--data-root", str(mnist_root), "--out", str(out), "--device", "cpu", "--no-progress",
        "--no-regularize", "--pack", str(tmp_path / "pack"), "--note", "VoCu and DeCu left out",
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code in (0, 1)  # 1: a tiny network may fail its analysis; the report is written
    assert f"packed: {tmp_path / 'pack' / 'report.tar.gz'} (" in printed
    assert (tmp_path / "pack" / "weights.tar.xz").is_file()
    assert "- note: VoCu and DeCu left out\n" in (out / "report" / "report.md").read_text()
    assert main(["reproduce", "--preset", "huge"]) == 2
    assert "memenv reproduce: error: ReproduceConfig.preset must be" in capsys.readouterr().err
    assert main(["reproduce", "--cells", ","]) == 2
    assert "--cells needs at least one name" in capsys.readouterr().err


def test_the_plan_orders_the_jobs_by_what_they_read(tmp_path):
    config = ReproduceConfig(preset="tiny", cells=("gru", "lstm"), reg_modes=("center",))
    study = reproduce_plan(config, tmp_path)
    after = {job.key: job.after for job in study.jobs}
    assert after["train gru vocu"] == ()
    assert after["evaluate gru vocu"] == ("train gru vocu",)
    assert after["analyze gru vocu m1"] == ("train gru vocu",)
    assert after["regularize lstm none m0 center"] == ("train lstm none",)
    assert after["regularize gru decu m1 center"] == ("train gru decu",)
    assert set(after["report"]) == set(after) - {"report"}
    kinds = {job.key.split()[0]: job.kind for job in study.jobs}
    assert kinds == {"train": "train", "evaluate": "evaluate", "analyze": "analyze",
                     "regularize": "finetune", "report": "report"}  # fmt: skip
    assert not any(job.done() for job in study.jobs)
    assert study.only(lambda job: job.kind == "report").jobs[0].after == ()


def test_bad_job_counts_are_refused(tmp_path, mnist_root):
    # the same study on Ray: tests/studies/test_ray.py
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        run_reproduce(_config(mnist_root), tmp_path / "study", progress=False, jobs=0)


def test_model_family_follows_the_preset_unless_given():
    from studies.reproduce_commands import canonical_command

    assert ReproduceConfig(preset="paper").train_config("gru", "none").model_family == "authors"
    assert ReproduceConfig(preset="fast").train_config("gru", "vocu").model_family == "torch"
    config = ReproduceConfig(preset="tiny", model_family="authors")
    assert config.train_config("lstm", "decu").model_family == "authors"
    assert "--model-family authors" in canonical_command(config, Path("out"))
    with pytest.raises(ValueError, match="model_family"):
        ReproduceConfig(preset="tiny", model_family="keras")
    with pytest.raises(ValueError, match="train_overrides"):
        ReproduceConfig(preset="tiny", train_overrides={"model_family": "authors"})


def test_command_line_options_of_the_regularisation_and_the_search_budget():
    import argparse

    from studies.reproduce_commands import (
        add_reproduce_arguments,
        canonical_command,
        config_from_args,
    )

    parser = argparse.ArgumentParser()
    add_reproduce_arguments(parser)
    args = parser.parse_args(
        ["--preset", "tiny", "--reg-curricula", "decu,vocu", "--reg-modes", "center,control",
         "--search-iterations", "200", "--backtrack-iterations", "50", "--reg-seeds", "3"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.reg_curricula == ("decu", "vocu") and config.reg_modes == ("center", "control")
    assert config.search_iterations == 200
    command = canonical_command(config, Path("out"))
    assert (
        "--reg-modes center,control --reg-curricula decu,vocu --search-iterations 200 "
        "--backtrack-iterations 50 --reg-seeds 3"
    ) in command
    assert config.backtrack_iterations == 50 and config.reg_seeds == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--search-iterations", "0"])


def test_dry_run_estimates_only_the_jobs_left(tmp_path, mnist_root, capsys):
    from studies.reproduce_estimate import StageEstimate, estimate_study, plan_text, wall_seconds

    config = _config(mnist_root, curricula=("none", "vocu"), regularize=False)
    out = tmp_path / "study"
    run_reproduce(config, out, progress=False, stop_after="train")
    stamp = (out / "train" / "gru-none" / "model.pt").stat().st_mtime_ns
    estimates = {e.stage: e for e in estimate_study(config, out, jobs=2, warmup_steps=2)}
    assert sorted(estimates) == ["analyze", "evaluate", "train"]
    assert (estimates["train"].jobs, estimates["train"].todo, estimates["train"].seconds) == (
        2,
        0,
        0,
    )
    assert estimates["evaluate"].todo == 2 and estimates["evaluate"].seconds > 0
    assert estimates["analyze"].todo == 4 and estimates["analyze"].seconds > 0
    assert (out / "train" / "gru-none" / "model.pt").stat().st_mtime_ns == stamp  # untouched
    assert not (out / "evaluate").exists()
    text = plan_text(config, list(estimates.values()), 2)
    assert "  train        0 of   2 jobs to run, ~0 s" in text and "total" in text
    two = [StageEstimate("train", 4, 4, 400.0, ""), StageEstimate("analyze", 1, 1, 50.0, "")]
    assert wall_seconds(two, 2) == 250.0  # one job cannot use two workers
    with pytest.raises(ValueError, match="warmup_steps must be at least 2, got 1"):
        estimate_study(config, out, warmup_steps=1)


def test_backtracking_searches_get_their_own_budget(
    tmp_path, mnist_root, every_trial_counts, monkeypatch
):
    import analysis.pipeline as pipeline
    import studies.run_analysis as run_analysis

    budgets = {"final": [], "backtrack": []}
    real_find, real_backtrack = pipeline.find_slow_points, run_analysis.backtrack

    def find(*args, **kwargs):
        budgets["final"].append(kwargs.get("max_iterations"))
        return real_find(*args, **kwargs)

    def backtrack(*args, **kwargs):
        budgets["backtrack"].append(kwargs.get("max_iterations"))
        return real_backtrack(*args, **kwargs)

    monkeypatch.setattr(pipeline, "find_slow_points", find)
    monkeypatch.setattr(run_analysis, "backtrack", backtrack)
    config = _config(
        mnist_root, curricula=("vocu",), n_seeds=1, regularize=False, search_iterations=3,
        backtrack_iterations=2,
    )  # fmt: skip
    result = run_reproduce(config, tmp_path / "study", progress=False, stop_after="analyze")
    assert result["failures"] == [] and "analyze gru vocu m0" in result["ran"]
    assert budgets == {"final": [3], "backtrack": [2]}


def test_report_only_runs_no_job(tmp_path, mnist_root):
    config = _config(mnist_root, curricula=("none",), regularize=False)
    out = tmp_path / "study"
    run_reproduce(config, out, progress=False, stop_after="train")
    result = run_reproduce(config, out, progress=False, report_only=True)
    assert result["ran"] == ["report"] and result["failures"] == []
    assert not (out / "evaluate").exists() and not (out / "analysis").exists()
    report = result["paths"]["report"].read_text()
    assert "not tested" in report and "- jobs without a record" not in report
