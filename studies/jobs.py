"""The job model of every study: a `Plan` is a DAG of `Job` objects, each idempotent on its output.

A job's `Job.action` does its work and writes its output, the file `Job.done` looks for, last;
a job whose output exists is never run again, so a study interrupted anywhere (Ctrl-C, a killed
worker, a machine gone) resumes on the next call and redoes nothing that was done. A job
interrupted half-way resumes from what it saved (a training run from its last checkpoint).

`run_plan` runs the jobs not done on an executor (`studies.executors`) and keeps the study
folder's books:

* ``FOLDER/jobs.jsonl``: one line per finished or failed job (`JobRecord`): which code ran it
  (commit, dirty state), where (host, pid), when and for how long; written by the driver only,
  so lines from workers on other machines never interleave on a shared filesystem.
* ``FOLDER/.running/<job>.json``: written by the worker when a job starts (host, pid, attempt),
  removed when its outcome is in. One left behind marks a job that was interrupted: it is
  *resumable*.
* ``FOLDER/.lock``: held by the driver for the whole call, so two calls on one folder cannot
  run the same job twice.

A job fails *for good* when its action raises one of `Job.failures` (e.g. a non-finite loss):
the failure is recorded, the jobs that need its output are skipped, and every independent job
still runs; the next call retries it. Any other exception is a bug or a bad setting and stops
the study.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from memenv.errors import UsageError

JOB_KINDS = ("train", "evaluate", "analyze", "finetune", "report")
JOBS_LOG = "jobs.jsonl"
RUNNING_DIR = ".running"
LOCK_FILE = ".lock"
STATES = ("done", "resumable", "failed", "pending")


@dataclass(frozen=True)
class Job:
    """One unit of work of a study.

    Attributes:
        key: Its name, unique in the plan (``"train gru vocu"``); jobs.jsonl records it.
        kind: One of `JOB_KINDS`.
        action: Does the work; called with no argument (an ``always`` job: with the outcomes
            of this call's jobs it needs), returns a small picklable value (or None). It must be picklable (a module-level function or a `functools.partial` of
            one): the Ray executor ships it to a worker process.
        done: Whether the job's output exists (checked before the job is run).
        after: Keys of the jobs whose output this one reads (earlier in the plan).
        failures: Exception types that mean the job failed for good (recorded; its dependents
            are skipped). Any other exception stops the study.
        threads: On Ray, the CPUs it asks for and its torch threads (unless the executor sets
            them for every job); run serially, this process's threads are kept.
        gpu: It computes on a GPU when there is one (on Ray: it asks for a share of one).
        always: Run on every call and even when some of ``after`` failed (the report).
    """

    key: str
    kind: str
    action: Callable[[], Any]
    done: Callable[[], bool]
    after: tuple[str, ...] = ()
    failures: tuple[type[BaseException], ...] = ()
    threads: int = 1
    gpu: bool = False
    always: bool = False

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise UsageError(f"Job.kind must be one of {JOB_KINDS}, got {self.kind!r}")
        if not self.key or self.key != self.key.strip():
            raise UsageError(f"Job.key must be a non-empty name, got {self.key!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise UsageError(f"Job.threads must be a positive integer, got {self.threads!r}")
        object.__setattr__(self, "after", tuple(self.after))


@dataclass(frozen=True)
class Plan:
    """A study's jobs in an order that respects their dependencies.

    Attributes:
        name: The study's name in progress bars (``"reproduce"``).
        folder: The study folder: jobs.jsonl, the lock and the running markers live there. On
            Ray it must be storage every worker sees (a shared filesystem path).
        jobs: Every job; each one's ``after`` names jobs earlier in this list.
    """

    name: str
    folder: Path
    jobs: tuple[Job, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        object.__setattr__(self, "jobs", tuple(self.jobs))
        seen: set[str] = set()
        for job in self.jobs:
            if job.key in seen:
                raise UsageError(f"plan {self.name!r} names job {job.key!r} twice")
            missing = [k for k in job.after if k not in seen]
            if missing:
                raise UsageError(
                    f"job {job.key!r} of plan {self.name!r} comes after {missing}, which are "
                    "not earlier in the plan"
                )
            seen.add(job.key)

    def job(self, key: str) -> Job:
        for job in self.jobs:
            if job.key == key:
                return job
        raise KeyError(key)

    def only(self, keep: Callable[[Job], bool]) -> Plan:
        """The plan restricted to the jobs ``keep`` accepts (``after`` links to the others are
        dropped: their outputs are read as they are)."""
        kept = [job for job in self.jobs if keep(job)]
        keys = {job.key for job in kept}
        kept = [replace(job, after=tuple(k for k in job.after if k in keys)) for job in kept]
        return Plan(self.name, self.folder, tuple(kept))


def report_job(action: Callable[[list[JobOutcome]], Any], jobs: Sequence[Job]) -> Job:
    """The report of a study: after every one of ``jobs``, run on every call and even when
    some of them failed; ``action`` gets this call's outcomes of ``jobs``."""
    return Job(
        "report", "report", action, done=partial(bool, False),
        after=tuple(job.key for job in jobs), always=True,
    )  # fmt: skip


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job in one call.

    Attributes:
        key: The job's key.
        status: ``done``, ``failed`` (one of its failures) or ``skipped`` (a job it needs
            failed or was skipped).
        error: The failure's line (``"NonFiniteLossError: ..."``), or why it was skipped.
        value: What the action returned (done only).
        seconds: Wall time of the action.
        attempt: 1 on the first try; one more for each earlier try that was interrupted.
        provenance: `studies.provenance.provenance` of the process that ran it.
    """

    key: str
    status: str
    error: str | None = None
    value: Any = None
    seconds: float = 0.0
    attempt: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)


def execute(job: Job, folder: Path, needed: Sequence[JobOutcome] = (), threads: int | None = None):
    """Runs ``job`` in this process (the worker side of every executor) -> `JobOutcome`.

    ``needed``: the outcomes of the jobs in ``job.after`` that ran in this call; ``threads``:
    torch threads to set first (None: leave them)."""
    from studies.provenance import provenance

    blocked = [o.key for o in needed if o.status != "done"]
    if blocked and not job.always:
        return JobOutcome(
            job.key, "skipped", error=f"needs {', '.join(blocked)}, which did not finish"
        )
    info = provenance()  # asked before the work: the code that starts the job is what ran it
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    attempt = _mark_running(folder, job.key)
    started = time.perf_counter()
    try:
        value = job.action(list(needed)) if job.always else job.action()
    except job.failures as error:
        return JobOutcome(
            job.key, "failed", error=f"{type(error).__name__}: {error}",
            seconds=time.perf_counter() - started, attempt=attempt, provenance=info,
        )  # fmt: skip
    return JobOutcome(
        job.key, "done", value=value, seconds=time.perf_counter() - started, attempt=attempt,
        provenance=info,
    )  # fmt: skip


def running_file(folder: Path, key: str) -> Path:
    """The marker of a started job: ``FOLDER/.running/<key with spaces as _>.json``."""
    return Path(folder) / RUNNING_DIR / (re.sub(r"[^A-Za-z0-9.=-]+", "_", key) + ".json")


def _mark_running(folder: Path, key: str) -> int:
    """Writes the job's running marker; returns its attempt number (a marker left by an
    interrupted attempt counts)."""
    path = running_file(folder, key)
    attempt = 1
    if path.is_file():
        with contextlib.suppress(ValueError, KeyError, OSError):
            attempt = int(json.loads(path.read_text())["attempt"]) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"job": key, "host": platform.node(), "pid": os.getpid(), "attempt": attempt,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    path.write_text(json.dumps(record) + "\n")
    return attempt


@dataclass(frozen=True)
class JobRecord:
    """One line of ``jobs.jsonl``: a job that finished (``done``) or failed for good."""

    job: str
    status: str
    commit: str
    host: str
    finished: str
    seconds: float
    attempt: int
    error: str | None = None


def record(folder: Path, outcome: JobOutcome) -> None:
    """Appends ``outcome`` to ``FOLDER/jobs.jsonl`` (done and failed only) and removes the
    job's running marker."""
    if outcome.status in ("done", "failed"):
        info = outcome.provenance
        line = JobRecord(
            job=outcome.key, status=outcome.status, commit=info.get("commit_label", "unknown"),
            host=info.get("host", "unknown"), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            seconds=round(outcome.seconds, 1), attempt=outcome.attempt, error=outcome.error,
        )  # fmt: skip
        with open(Path(folder) / JOBS_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(line)) + "\n")
    with contextlib.suppress(FileNotFoundError):
        running_file(folder, outcome.key).unlink()


def read_records(folder: Path) -> list[dict[str, Any]]:
    """The lines of ``FOLDER/jobs.jsonl`` (none when absent); lines written before statuses
    were recorded count as ``done``."""
    from agents.checkpoint import read_jsonl

    path = Path(folder) / JOBS_LOG
    return [{"status": "done", **r} for r in read_jsonl(path)] if path.is_file() else []


def failed_jobs(folder: Path, plan: Plan | None = None) -> list[tuple[str, str]]:
    """``(key, error)`` of the jobs whose latest record is a failure (and, given ``plan``, that
    are still not done), in the order they failed."""
    latest: dict[str, dict[str, Any]] = {}
    for line in read_records(folder):
        latest.pop(line["job"], None)
        latest[line["job"]] = line
    failed = [(k, r.get("error") or "") for k, r in latest.items() if r["status"] == "failed"]
    if plan is not None:
        jobs = {job.key: job for job in plan.jobs}
        failed = [(k, e) for k, e in failed if k in jobs and not jobs[k].done()]
    return failed


def job_states(plan: Plan) -> dict[str, str]:
    """Each job's state, one of `STATES`: ``done`` (its output exists), ``resumable`` (an
    attempt started and was interrupted), ``failed`` (its latest attempt failed for good),
    ``pending`` (never started)."""
    failed = {key for key, _ in failed_jobs(plan.folder)}
    states = {}
    for job in plan.jobs:
        if not job.always and job.done():
            states[job.key] = "done"
        elif running_file(plan.folder, job.key).is_file():
            states[job.key] = "resumable"
        elif job.key in failed:
            states[job.key] = "failed"
        else:
            states[job.key] = "pending"
    return states


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Holds ``FOLDER/.lock`` (an exclusive `fcntl.flock`) or raises UsageError naming the
    process that holds it."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(
                f"{folder} is in use by {holder}: one call at a time per study folder (wait "
                "for it, or stop it; the next call resumes where it stopped)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {platform.node()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_plan(
    plan: Plan,
    executor: Any = None,
    *,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    progress: bool = True,
    lock: bool = True,
) -> list[JobOutcome]:
    """Runs the jobs of ``plan`` that are not done (and those marked ``always``).

    Args:
        plan: The study.
        executor: `studies.executors.SerialExecutor` (default) or `RayExecutor`.
        on_outcome: Called in the driver with each outcome as it comes in.
        progress: One tqdm bar over the plan's jobs.
        lock: Hold the folder's lock (`folder_lock`) for the call; False when the caller
            already holds it (it also checks or changes the folder before the jobs run).

    Returns:
        The outcomes of this call, in the order they came in. Each done or failed job is
        recorded in ``jobs.jsonl`` as it comes in, so nothing is lost when the call is
        interrupted.
    """
    from tqdm.auto import tqdm

    from studies.executors import SerialExecutor

    executor = executor if executor is not None else SerialExecutor()
    with folder_lock(plan.folder) if lock else contextlib.nullcontext():
        todo = [job for job in plan.jobs if job.always or not job.done()]
        outcomes: list[JobOutcome] = []
        bar = tqdm(total=len(plan.jobs), initial=len(plan.jobs) - len(todo), desc=plan.name,
                   unit="job", disable=not progress)  # fmt: skip

        def came_in(outcome: JobOutcome) -> None:
            record(plan.folder, outcome)
            outcomes.append(outcome)
            bar.update(1)
            if on_outcome is not None:
                on_outcome(outcome)

        try:
            executor.run(plan, todo, came_in, bar)
        finally:
            bar.close()
    return outcomes


def describe_outcome(outcome: JobOutcome) -> str:
    """One line for a log: ``done: train gru vocu (12 s)``."""
    if outcome.status == "done":
        retried = f", attempt {outcome.attempt}" if outcome.attempt > 1 else ""
        return f"done: {outcome.key} ({outcome.seconds:.0f} s{retried})"
    return f"{outcome.status}: {outcome.key}: {outcome.error}"
