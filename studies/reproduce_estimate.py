"""`memenv reproduce --dry-run`: the study's plan and a time estimate from a measured warm-up,
so that a run can be checked to fit (a GPU lease, a batch allocation) before it starts.

`estimate_study` measures, on the study's own device and shapes, for one cell at a time:

* training: seconds per step of the (cell, curriculum) ensemble, from a few steps of a
  throwaway run (`agents.train`, its metrics' ``elapsed_s`` between two log lines: set-up and
  data loading excluded);
* evaluation: seconds per trial-step of that ensemble on held-out trials;
* fine-tuning: seconds per step of one network (the ensemble's per-member share) plus its
  before/after evaluation;
* analysis: seconds per Levenberg-Marquardt iteration and state, from a short search on the
  warm-up network, times the searches one analysis runs (starts, then every tracked point at
  every checkpoint) and the budget: an upper bound, as most searches stop early.

Finished jobs (their result files exist) cost nothing. Stages run one job per worker, so
each stage's time is divided by ``jobs`` (with at most as many workers as it has jobs).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memenv.errors import UsageError


@dataclass(frozen=True)
class StageEstimate:
    """The remaining work of one stage.

    Attributes:
        stage: ``train``, ``evaluate``, ``analyze`` or ``regularize``.
        jobs: Jobs in the plan.
        todo: Jobs not finished yet.
        seconds: Estimated seconds of the ``todo`` jobs run one at a time.
        basis: What the estimate was computed from (one line).
    """

    stage: str
    jobs: int
    todo: int
    seconds: float
    basis: str


@dataclass(frozen=True)
class CellRates:
    """Measured rates of one cell's ensemble (seconds)."""

    train_step: float
    eval_trial_step: float
    search_state_iteration: float


def measure_rates(config: Any, cell: str, *, warmup_steps: int = 6) -> CellRates:
    """Times a few training steps, an evaluation and a short search for ``cell``'s ensemble
    under ``config`` (an `studies.reproduce.ReproduceConfig`), on its device."""
    from agents.checkpoint import load_model, read_jsonl
    from agents.device import resolve_device
    from agents.evaluate import evaluate_delays
    from agents.trainer import train
    from studies.run_analysis import analysis_task

    if warmup_steps < 2:
        raise UsageError(f"warmup_steps must be at least 2, got {warmup_steps}")
    total = 2 + warmup_steps
    train_config = config.train_config(cell, "none").replace(
        total_steps=total, lr_decay_step=total, checkpoint_every=total, log_every=2
    )
    with tempfile.TemporaryDirectory(prefix="memenv-dry-run-") as folder:
        run = Path(folder) / "warmup"
        train(train_config, run, progress=False)
        lines = [m for m in read_jsonl(run / "metrics.jsonl") if "elapsed_s" in m]
        first, last = lines[0], lines[-1]
        train_step = (last["elapsed_s"] - first["elapsed_s"]) / max(last["step"] - first["step"], 1)
        model = load_model(run, device=resolve_device(config.device))
        member = load_model(run, member=0) if config.n_seeds > 1 else model.cpu()
    task = analysis_task(train_config, 10)
    trials, delay = min(config.eval_trials, 200), 20
    start = time.perf_counter()
    evaluate_delays(model, task, delays=(delay,), n_trials=trials, t_stim=0, seed=0)
    eval_trial_step = (time.perf_counter() - start) / (trials * (delay + 2))
    return CellRates(train_step, eval_trial_step, _search_rate(member, task))


def _search_rate(model: Any, task: Any) -> float:
    """Seconds per state and iteration of the Levenberg-Marquardt search on ``model`` (one
    network, on the CPU as the analysis runs)."""
    import torch

    from analysis.features import analysis_view
    from analysis.protocol import FlatDynamics
    from analysis.search import newton_search

    view, input_x = analysis_view(model, task)
    dynamics = FlatDynamics(view)
    states, iterations = 8, 5
    generator = torch.Generator().manual_seed(0)
    initial = torch.rand(states, dynamics.n_state, generator=generator, dtype=dynamics.dtype)
    x = torch.as_tensor(input_x, dtype=dynamics.dtype).reshape(1, -1)
    # a tolerance no state reaches, so every state runs every iteration
    start = time.perf_counter()
    newton_search(dynamics, initial * 2 - 1, x, max_iterations=iterations, speed_tol=-1.0)
    return (time.perf_counter() - start) / (states * iterations)


def estimate_study(
    config: Any, out: Path, *, jobs: int = 1, warmup_steps: int = 6
) -> list[StageEstimate]:
    """The remaining work of each stage of the study ``config`` in ``out`` (see the module)."""
    from studies.reproduce import reproduce_plan, stage_of

    planned = [j for j in reproduce_plan(config, out).jobs if not j.always]
    todo = [j for j in planned if not j.done()]
    rates = {cell: measure_rates(config, cell, warmup_steps=warmup_steps) for cell in config.cells}
    k = config.n_seeds
    options = config.analysis_options("vocu")
    budget = options.search_options.get("max_iterations", 50)
    starts = 10 * (1 + options.extra_per_class)
    checkpoints = options.max_checkpoints or 21
    tune = config.finetune_config("center", 0)
    trial_steps = sum(d + 2 for d in config.eval_delays) * config.eval_trials

    def cost(job: Any) -> float:
        stage, cell, curriculum = job.key.split()[:3]
        rate = rates[cell]
        if stage == "train":
            return config.train_config(cell, curriculum).total_steps * rate.train_step
        if stage == "evaluate":
            return trial_steps * rate.eval_trial_step
        if stage == "analyze":
            tracked = starts * checkpoints if curriculum != "none" else 0
            return (starts + tracked) * budget * rate.search_state_iteration
        # one network's share of the ensemble's step and evaluation, before and after
        return tune.total_steps * rate.train_step / k + 2 * trial_steps * rate.eval_trial_step / k

    bases = {
        "train": "measured steps/s of each cell's ensemble x the steps of each run",
        "evaluate": f"measured trial-steps/s x {trial_steps:,} trial-steps per run",
        "analyze": f"at most {starts} starts + {starts} tracks x {checkpoints} checkpoints, "
        f"{budget} iterations each (most stop early)",
        "regularize": f"{tune.total_steps:,} steps of one network + its evaluation before "
        "and after",
    }
    estimates = []
    for stage in ("train", "evaluate", "analyze", "regularize"):
        stage_jobs = [j for j in planned if stage_of(j.key) == stage]
        if not stage_jobs:
            continue
        stage_todo = [j for j in todo if stage_of(j.key) == stage]
        seconds = sum(cost(j) for j in stage_todo)
        estimates.append(
            StageEstimate(stage, len(stage_jobs), len(stage_todo), seconds, bases[stage])
        )
    return estimates


def wall_seconds(estimates: list[StageEstimate], jobs: int) -> float:
    """The study's wall time with ``jobs`` workers: each stage's work over its workers."""
    return sum(e.seconds / max(1, min(jobs, e.todo)) for e in estimates)


def plan_text(config: Any, estimates: list[StageEstimate], jobs: int) -> str:
    """The dry run's printout: one line per stage, then the total."""
    lines = [
        f"plan: {config.preset} preset, {config.dataset}, cells {','.join(config.cells)}, "
        f"curricula {','.join(config.curricula)}, {config.n_seeds} seeds, device {config.device}, "
        f"{jobs} job(s) at once",
    ]
    for e in estimates:
        workers = max(1, min(jobs, e.todo))
        lines.append(
            f"  {e.stage:<10} {e.todo:>3} of {e.jobs:>3} jobs to run, "
            f"~{_duration(e.seconds / workers)} ({e.basis})"
        )
    lines.append(f"  total      ~{_duration(wall_seconds(estimates, jobs))} (report: seconds)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
