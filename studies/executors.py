"""Executors: where the jobs of a `studies.jobs.Plan` run.

* `SerialExecutor` (the default): one job after the other, in this process, in plan order. Ray
  is not imported.
* `RayExecutor`: every job is a Ray task. ``jobs=N`` starts a local Ray instance with N CPUs
  (N x ``threads``) for the call (and stops it after); ``address`` joins a running cluster instead (``"auto"``, or
  ``HOST:PORT``). A job asks for ``Job.threads`` CPUs and, when it computes on a GPU and the
  cluster has one, a share of a GPU (1/N of the GPUs of a local instance, one GPU on a cluster);
  the jobs it needs are passed to it as Ray object references, so Ray
  starts it when they are done (no polling). A worker that dies (killed, out of memory, its
  machine gone) has its job retried by Ray up to ``max_retries`` times; the job resumes from
  what it saved. Ctrl-C on the driver cancels the running tasks; the next call resumes.

`make_executor` turns the command-line options (``--jobs``, ``--ray-address``, ``--threads``)
into one. Ray is an optional extra (``pip install 'memenv[ray]'``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from memenv.errors import UsageError
from studies.jobs import Job, JobOutcome, Plan, describe_outcome, execute

RAY_MISSING = (
    "--jobs above 1 and --ray-address run the study on Ray, which is not installed: "
    "pip install 'memenv[ray]' (or run without them, one job at a time)"
)


class SerialExecutor:
    """Runs the jobs one after the other in this process.

    Args:
        threads: torch CPU threads set before each job (None: leave this process's).
    """

    name = "serial"

    def __init__(self, threads: int | None = None) -> None:
        _check_positive("threads", threads, allow_none=True)
        self.threads = threads

    def run(
        self, plan: Plan, todo: list[Job], came_in: Callable[[JobOutcome], None], bar: Any
    ) -> None:
        outcomes: dict[str, JobOutcome] = {}
        for job in todo:
            bar.set_postfix_str(job.key)
            needed = [outcomes[k] for k in job.after if k in outcomes]
            outcome = execute(job, plan.folder, needed, self.threads)
            outcomes[job.key] = outcome
            if outcome.status != "done" and not bar.disable:
                bar.write(describe_outcome(outcome))
            came_in(outcome)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def _execute_task(job: Job, folder: Any, threads: int | None, *needed: JobOutcome) -> JobOutcome:
    """The Ray task around `studies.jobs.execute` (its arguments after ``threads`` are the
    outcomes of the jobs it needs, resolved by Ray before it starts)."""
    return execute(job, folder, needed, threads)


class RayExecutor:
    """Runs every job as a Ray task.

    Args:
        jobs: CPUs of the local Ray instance started for the call (ignored with ``address``).
        address: A running cluster to join (``"auto"`` or ``HOST:PORT``); None starts a local
            instance.
        threads: torch threads, and CPUs asked for, per job (None: each job's own, 1 by
            default).
        max_retries: Retries of a job whose worker died.
    """

    name = "ray"

    def __init__(
        self,
        jobs: int = 2,
        address: str | None = None,
        threads: int | None = None,
        max_retries: int = 3,
    ) -> None:
        _check_positive("jobs", jobs)
        _check_positive("threads", threads, allow_none=True)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise UsageError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if address is not None and not address.strip():
            raise UsageError(
                f"address must name a Ray cluster ('auto' or HOST:PORT), got {address!r}"
            )
        self.jobs, self.address, self.threads, self.max_retries = (
            jobs,
            address,
            threads,
            max_retries,
        )
        _import_ray()  # fail now, before anything runs, when Ray is missing

    def run(
        self, plan: Plan, todo: list[Job], came_in: Callable[[JobOutcome], None], bar: Any
    ) -> None:
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            self._start(ray)
        try:
            self._check_fits(ray, todo)
            gpus = ray.cluster_resources().get("GPU", 0)
            # several small networks share one GPU: each job asks for its share of them
            gpu_share = min(1.0, gpus / self.jobs) if self.address is None else 1.0
            task = ray.remote(_execute_task)
            refs: dict[str, Any] = {}
            for job in todo:
                threads = self.threads or job.threads
                needed = [refs[k] for k in job.after if k in refs]
                refs[job.key] = task.options(
                    num_cpus=threads, num_gpus=gpu_share if job.gpu and gpus else 0,
                    max_retries=self.max_retries, retry_exceptions=False, name=job.key,
                ).remote(job, plan.folder, threads, *needed)  # fmt: skip
            self._collect(ray, plan, refs, came_in, bar)
        finally:
            if started_here:
                ray.shutdown()

    def _collect(self, ray: Any, plan: Plan, refs: dict[str, Any], came_in, bar) -> None:
        """Hands each outcome to ``came_in`` as it comes in. A job whose worker died more
        often than it is retried failed (its dependents are skipped); an error raised by a
        job's code is re-raised here. On any exception, what has finished is still handed
        in, and the rest is cancelled."""
        pending = {ref: key for key, ref in refs.items()}
        lost: dict[str, str] = {}

        def outcome_of(ref: Any) -> JobOutcome:
            key = pending.pop(ref)
            try:
                return ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                raise error.as_instanceof_cause() from None
            except ray.exceptions.RayError as error:  # the worker died, again and again
                gone = [k for k in plan.job(key).after if k in lost]
                if gone:
                    return JobOutcome(
                        key, "skipped", error=f"needs {', '.join(gone)}, which did not finish"
                    )
                lost[key] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                return JobOutcome(key, "failed", error=lost[key], attempt=self.max_retries + 1)

        def hand_in(outcome: JobOutcome) -> None:
            if outcome.status != "done" and not bar.disable:
                bar.write(describe_outcome(outcome))
            came_in(outcome)

        try:
            while pending:
                bar.set_postfix_str(f"{len(pending)} queued or running")
                # a timeout, so that Ctrl-C reaches this loop while the jobs run for hours
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                if ready:
                    hand_in(outcome_of(ready[0]))
        except BaseException:
            if pending:  # what finished meanwhile is recorded, not lost
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                for ref in ready:
                    try:
                        hand_in(outcome_of(ref))
                    except ray.exceptions.RayTaskError:
                        continue  # a second job's error: the first one is raised
                for ref in pending:
                    ray.cancel(ref, force=True)
            raise

    def _check_fits(self, ray: Any, todo: list[Job]) -> None:
        """A job asking for more CPUs than any node has would wait forever: refuse it."""
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
        wanted = max((self.threads or job.threads for job in todo), default=0)
        if wanted > largest:
            raise UsageError(
                f"--threads {wanted} asks for more CPUs per job than any Ray node has ({largest:g})"
            )

    def _start(self, ray: Any) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the study stays on this machine
        if self.address is not None:
            ray.init(address=self.address, log_to_driver=False)
        else:
            # each job asks for its threads in CPUs: N jobs of T threads need N * T of them
            cpus = self.jobs * (self.threads or 1)
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)


def make_executor(
    jobs: int = 1, ray_address: str | None = None, threads: int | None = None
) -> SerialExecutor | RayExecutor:
    """``--jobs 1`` without ``--ray-address``: `SerialExecutor`; otherwise `RayExecutor`."""
    _check_positive("jobs", jobs)
    if jobs == 1 and ray_address is None:
        return SerialExecutor(threads)
    return RayExecutor(jobs=jobs, address=ray_address, threads=threads)


def _check_positive(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
