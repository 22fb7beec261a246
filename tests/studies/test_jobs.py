"""The job model, run serially: plans, states, records, failures, the folder lock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from memenv.errors import UsageError
from studies.executors import SerialExecutor, make_executor
from studies.jobs import (
    Job,
    Plan,
    failed_jobs,
    folder_lock,
    job_states,
    read_records,
    run_plan,
    running_file,
)


class Diverged(RuntimeError):
    pass


def _writer(path: Path, text: str = "x"):
    def action():
        path.write_text(text)
        return text

    return action


def _plan(folder: Path, fail: bool = False) -> Plan:
    """a -> b, c independent; a fails (for good) when ``fail``."""

    def a():
        if fail:
            raise Diverged("loss is nan at step 3")
        (folder / "a").write_text("a")

    jobs = [
        Job("train a", "train", a, (folder / "a").is_file, failures=(Diverged,)),
        Job("evaluate b", "evaluate", _writer(folder / "b"), (folder / "b").is_file, ("train a",)),
        Job("train c", "train", _writer(folder / "c"), (folder / "c").is_file),
        Job("report", "report", lambda needed: [o.key for o in needed], lambda: False,
            ("train a", "evaluate b", "train c"), always=True),
    ]  # fmt: skip
    return Plan("test", folder, tuple(jobs))


def test_a_failure_is_recorded_skips_its_dependents_and_not_the_others(tmp_path):
    outcomes = {o.key: o for o in run_plan(_plan(tmp_path, fail=True), progress=False)}
    assert outcomes["train a"].status == "failed"
    assert outcomes["train a"].error == "Diverged: loss is nan at step 3"
    assert outcomes["evaluate b"].status == "skipped" and "train a" in outcomes["evaluate b"].error
    assert outcomes["train c"].status == "done" and (tmp_path / "c").is_file()
    assert outcomes["report"].value == ["train a", "evaluate b", "train c"]  # always runs
    assert failed_jobs(tmp_path) == [("train a", "Diverged: loss is nan at step 3")]
    assert job_states(_plan(tmp_path, fail=True)) == {
        "train a": "failed", "evaluate b": "pending", "train c": "done", "report": "pending",
    }  # fmt: skip
    records = read_records(tmp_path)
    assert [(r["job"], r["status"]) for r in records] == [
        ("train a", "failed"), ("train c", "done"), ("report", "done"),
    ]  # fmt: skip
    assert all(r["commit"] and r["host"] and r["attempt"] == 1 for r in records)
    assert not (tmp_path / ".running").exists() or not any((tmp_path / ".running").iterdir())

    # the next call retries the failed job; what was done is not redone
    again = run_plan(_plan(tmp_path), progress=False)
    assert [o.key for o in again] == ["train a", "evaluate b", "report"]
    assert failed_jobs(tmp_path, _plan(tmp_path)) == []


def test_any_other_error_stops_the_study_and_leaves_the_job_resumable(tmp_path):
    def broken():
        raise KeyError("a bug")

    jobs = (
        Job("train a", "train", broken, (tmp_path / "a").is_file),
        Job("train c", "train", _writer(tmp_path / "c"), (tmp_path / "c").is_file),
    )
    with pytest.raises(KeyError, match="a bug"):
        run_plan(Plan("test", tmp_path, jobs), progress=False)
    assert not (tmp_path / "c").exists()
    assert job_states(Plan("test", tmp_path, jobs))["train a"] == "resumable"
    marker = json.loads(running_file(tmp_path, "train a").read_text())
    assert marker["attempt"] == 1 and marker["pid"] > 0


def test_plans_are_checked(tmp_path):
    job = Job("train a", "train", _writer(tmp_path / "a"), (tmp_path / "a").is_file)
    with pytest.raises(UsageError, match="names job 'train a' twice"):
        Plan("p", tmp_path, (job, job))
    late = Job("evaluate b", "evaluate", _writer(tmp_path / "b"), (tmp_path / "b").is_file,
               ("train a",))  # fmt: skip
    with pytest.raises(UsageError, match=r"comes after \['train a'\], which are not earlier"):
        Plan("p", tmp_path, (late, job))
    with pytest.raises(UsageError, match="Job.kind must be one of .* got 'sleep'"):
        Job("x", "sleep", print, bool)
    with pytest.raises(UsageError, match="Job.threads must be a positive integer, got 0"):
        Job("x", "train", print, bool, threads=0)
    only = Plan("p", tmp_path, (job, late)).only(lambda j: j.kind == "evaluate")
    assert [(j.key, j.after) for j in only.jobs] == [("evaluate b", ())]


def test_one_call_at_a_time_per_folder(tmp_path):
    with folder_lock(tmp_path), pytest.raises(UsageError, match="is in use by pid"):
        run_plan(_plan(tmp_path), progress=False)
    assert run_plan(_plan(tmp_path), progress=False)  # released


def test_ray_is_asked_for_only_by_its_executor(monkeypatch):
    import studies.executors as executors

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert isinstance(make_executor(1), SerialExecutor)
    with pytest.raises(UsageError, match=r"pip install 'memenv\[ray\]'"):
        make_executor(2)
    with pytest.raises(UsageError, match="not installed"):
        executors.RayExecutor(address="auto")


def test_executor_choice_and_bad_values():
    assert isinstance(make_executor(1), SerialExecutor)
    with pytest.raises(UsageError, match="jobs must be a positive integer, got 0"):
        make_executor(0)
    with pytest.raises(UsageError, match="threads must be a positive integer, got -1"):
        SerialExecutor(threads=-1)
