"""The whole study of Haviv, Rivkind & Barak (2019), end to end and resumable.

`run_reproduce(config, out_dir)` runs five stages; each job writes its result file when it is
finished, and a finished job is read back, not redone, so an interrupted study continues where
it stopped (an interrupted training resumes from its own run directory):

1. **train**: one batched ensemble per (cell, curriculum) with ``n_members = n_seeds``
   (``OUT/train/<cell>-<curriculum>/``, checkpoints kept for backtracking);
2. **evaluate**: accuracy vs delay of every member on held-out images
   (``OUT/evaluate/<cell>-<curriculum>.json``, `agents.DelayAccuracy`);
3. **analyze**: per member, `analysis.pipeline.analyze_run` (backtracking for VoCu and DeCu
   runs only) -> ``OUT/analysis/<cell>-<curriculum>/m<k>/summary.json`` (+ ``lineage.npz``);
4. **regularize**: every member of the no-curriculum runs fine-tuned once per mode with
   `analysis.finetune.regularize_run`, exactly as `analysis.regularize_study` does
   (``OUT/regularize/finetune/<cell>-s<k>-<mode>/``);
5. **report**: `analysis.reproduce_report` on the saved results -> ``report.md`` + PNGs.

Curricula: the paper's schedules are 140,000 steps long (CIFAR-10: 300,000); every run uses
``curriculum_scale = total_steps / 140_000`` (CIFAR-10: ``/ 300_000``), so the whole schedule,
last stage included, fits the run in the paper's proportions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.checkpoint import read_json
from analysis.finetune import EVAL_DELAYS, finetune_preset, regularize_run
from analysis.pipeline import AnalysisOptions, analysis_task, analyze_run, vocabulary_function
from analysis.provenance import short_commit
from analysis.regularize_study import MODES, plot_study, study_table, table_markdown
from analysis.stats import geometric_mean
from memenv.errors import MissingFileError, UsageError

PRESETS = ("fast", "paper", "demo", "tiny")
CURRICULA = ("none", "vocu", "decu")
CELLS = ("gru", "lstm")
REGULARIZED_CURRICULA = ("decu", "vocu", "none")
"""The runs the regularisation stage fine-tunes by default, in this order: the DeCu and VoCu
networks, as the authors did (their RUNMNIST.sh), then the no-curriculum networks as an extra
(`ReproduceConfig.reg_curricula`)."""
STAGES = ("train", "evaluate", "analyze", "regularize", "report")
EVAL_SEED = 12345
"""Seed of the held-out evaluation trials (the same trials for every network)."""

# Training of each preset (on top of `agents.preset`); `paper` is the authors' protocol (docs/paper.md).
_TRAINING = {
    "paper": ("paper", {}),
    # checkpoints every 125 steps: VoCu's 9 stages fall 143-357 steps apart at this scale
    "fast": ("fast", {"checkpoint_every": 125}),
    # checkpoints every 50 steps: VoCu's stages fall 57-143 steps apart at this scale
    "demo": ("fast", {"hidden_size": 64, "batch_size": 64, "total_steps": 1000,
                      "lr_decay_step": 800, "checkpoint_every": 50, "log_every": 50}),
    "tiny": ("fast", {"hidden_size": 6, "batch_size": 8, "total_steps": 30,
                      "lr_decay_step": 25, "checkpoint_every": 5, "log_every": 5}),
}  # fmt: skip
# long_delay: the per-class and per-network accuracy of the speed-accuracy claims, one delay
# for both, among the long delays (>= long_delay_min) of the claims
_ANALYSIS = {
    "paper": {"long_delay": 200},
    "fast": {"max_checkpoints": 21, "long_delay": 200},
    "demo": {"n_per_class": 40, "extra_per_class": 2, "accuracy_trials": 300,
             "max_checkpoints": 21, "trajectories_per_class": 2},
    "tiny": {"n_per_class": 3, "extra_per_class": 0, "accuracy_trials": 20, "long_delay": 30,
             "max_checkpoints": 4, "trajectories_per_class": 1, "trajectory_steps": 5},
}  # fmt: skip
_FINETUNE = {
    "paper": ("paper", {}),
    "fast": ("fast", {}),
    "demo": ("fast", {"total_steps": 300, "n_per_class": 40, "checkpoint_every": 100}),
    "tiny": ("fast", {"total_steps": 4, "n_noise": 2, "n_per_class": 3, "lr": 1e-2,
                      "log_every": 2, "checkpoint_every": 2}),
}  # fmt: skip
_EVAL = {
    "paper": (EVAL_DELAYS, 1000, 100),
    "fast": (EVAL_DELAYS, 1000, 100),
    "demo": ((4, 10, 19, 40, 100, 200, 500), 300, 100),
    "tiny": ((4, 30), 20, 30),
}
_SEEDS = {"paper": 10, "fast": 5, "demo": 3, "tiny": 2}
_CELLS = {"demo": ("gru",)}
"""Cells of a preset when not given (default: `CELLS`)."""
_OWNED_TRAIN_FIELDS = ("cell", "curriculum", "curriculum_scale", "seed", "n_members", "device",
                       "data_root", "dataset", "model_family")  # fmt: skip
PAPER_LENGTH = {"mnist": 140_000, "fashion-mnist": 140_000, "cifar10": 300_000}
"""Length of the paper's schedules (steps), the denominator of ``curriculum_scale``."""
RESUME_FREE_FIELDS = (
    "cells", "curricula", "regularize", "reg_modes", "reg_curricula", "reg_seeds", "device",
    "long_delay_min",
)  # fmt: skip
"""Fields that may change between calls on one folder (they add jobs or only change the report)."""
STAGE_FIELDS = {
    "eval_delays": ("evaluate", "regularize"),
    "eval_trials": ("evaluate", "regularize"),
    "analysis": ("analysis",),
    "search_iterations": ("analysis",),
    "backtrack_iterations": ("analysis",),
    "finetune_overrides": ("regularize",),
}
"""Fields that may change between calls until a result of the stage folders they feed exists
(e.g. the slow-point search budget, chosen after the networks are trained)."""


@dataclass(frozen=True)
class ReproduceConfig:
    """The study's protocol (None fields take the preset's value).

    Attributes:
        preset: ``fast`` (CPU, MNIST), ``paper`` (the authors' protocol, docs/paper.md), ``demo`` (minutes), ``tiny`` (tests).
        dataset: ``mnist``, ``fashion-mnist`` or ``cifar10`` (``paper`` preset only).
        cells: Recurrent cells (None: GRU and LSTM; ``demo``: GRU only).
        curricula: Curricula (``none``, ``vocu``, ``decu``).
        n_seeds: Networks per (cell, curriculum): the ensemble's members (paper: 10 MNIST).
        eval_delays: Delays of the held-out accuracy evaluation.
        eval_trials: Trials per delay of that evaluation.
        long_delay_min: Evaluated delays from this one on are the "long delays" of the claims.
        analysis: Slow-point analysis settings (backtracking is set per curriculum).
        regularize: Run the speed-regularisation stage.
        reg_modes: Fine-tuning modes of that stage.
        reg_curricula: The runs that stage fine-tunes, in this order (default
            `REGULARIZED_CURRICULA`: DeCu and VoCu, as the authors, then no-curriculum).
        search_iterations: Levenberg-Marquardt iterations (Jacobians) per slow-point search,
            the budget of every speed (None: the search's default, 50); see
            ``benchmarks/speed_budget.py`` for how the ranking of networks depends on it.
        backtrack_iterations: The same for the backtracking searches (one per tracked point
            and checkpoint; None: `search_iterations`).
        reg_seeds: Fine-tune only the first this many members of each run (None: all).
        model_family: ``torch`` or ``authors`` networks (None: the preset's: ``paper`` trains
            the authors' networks on MNIST / Fashion-MNIST, the others PyTorch's).
        device: ``auto``, ``cpu`` or ``cuda``.
        data_root: Data folder (None: ``$MEMENV_DATA`` or the embedded MNIST).
        train_overrides: Extra `agents.TrainConfig` fields of every training run.
        finetune_overrides: Extra `analysis.finetune.RegularizeConfig` fields.
    """

    preset: str = "fast"
    dataset: str = "mnist"
    cells: tuple[str, ...] | None = None
    curricula: tuple[str, ...] = CURRICULA
    n_seeds: int | None = None
    eval_delays: tuple[int, ...] | None = None
    eval_trials: int | None = None
    long_delay_min: int | None = None
    analysis: AnalysisOptions | None = None
    regularize: bool = True
    reg_modes: tuple[str, ...] = MODES
    reg_curricula: tuple[str, ...] = REGULARIZED_CURRICULA
    search_iterations: int | None = None
    backtrack_iterations: int | None = None
    reg_seeds: int | None = None
    model_family: str | None = None
    device: str = "auto"
    data_root: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)
    finetune_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from memenv.config import DATASETS

        def fail(name: str, want: str) -> None:
            raise UsageError(f"ReproduceConfig.{name} must be {want}, got {getattr(self, name)!r}")

        if self.preset not in PRESETS:
            fail("preset", f"one of {PRESETS}")
        if self.dataset not in DATASETS:
            fail("dataset", f"one of {DATASETS}")
        if self.dataset == "cifar10" and self.preset != "paper":
            fail("dataset", f"mnist or fashion-mnist for preset {self.preset!r} (cifar10: paper)")
        cells = _CELLS.get(self.preset, CELLS) if self.cells is None else self.cells
        object.__setattr__(self, "cells", tuple(cells))
        object.__setattr__(self, "curricula", tuple(self.curricula))
        object.__setattr__(self, "reg_modes", tuple(self.reg_modes))
        object.__setattr__(self, "reg_curricula", tuple(self.reg_curricula))
        if not self.cells or any(c not in ("gru", "lstm", "rnn") for c in self.cells):
            fail("cells", "a non-empty list of gru, lstm, rnn")
        if not self.curricula or any(c not in CURRICULA for c in self.curricula):
            fail("curricula", f"a non-empty list of {CURRICULA}")
        for name in ("cells", "curricula", "reg_modes", "reg_curricula"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                fail(name, "free of repeats")
        if any(m not in MODES for m in self.reg_modes):
            fail("reg_modes", f"a list of {MODES}")
        if any(c not in CURRICULA for c in self.reg_curricula):
            fail("reg_curricula", f"a list of {CURRICULA}")
        for name in ("search_iterations", "backtrack_iterations", "reg_seeds"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                fail(name, "a positive integer or None")
        if self.device not in ("auto", "cpu", "cuda"):
            fail("device", "auto, cpu or cuda")
        delays, trials, long_min = _EVAL[self.preset]
        defaults = {
            "n_seeds": 5 if self.preset == "paper" and self.dataset == "cifar10" else _SEEDS[self.preset],
            "eval_delays": delays,
            "eval_trials": trials,
            "long_delay_min": long_min,
            "analysis": AnalysisOptions(authors_centers_check=True, **_ANALYSIS[self.preset]),
        }  # fmt: skip
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "eval_delays", tuple(sorted({int(d) for d in self.eval_delays})))
        for name in ("n_seeds", "eval_trials", "long_delay_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(name, "a positive integer")
        if self.eval_delays[0] < 1:
            fail("eval_delays", "positive integers")
        if self.eval_delays[-1] < self.long_delay_min:
            fail("long_delay_min", f"at most the longest evaluated delay {self.eval_delays[-1]}")
        if not isinstance(self.analysis, AnalysisOptions):
            fail("analysis", "an AnalysisOptions")
        owned = sorted(set(self.train_overrides) & set(_OWNED_TRAIN_FIELDS))
        if owned:
            fail("train_overrides", f"free of the study's own fields {list(_OWNED_TRAIN_FIELDS)}")
        self.train_config("gru", "none")  # validates train_overrides (ValueError naming them)

    def train_config(self, cell: str, curriculum: str) -> Any:
        """The `agents.TrainConfig` of the ensemble run of (cell, curriculum)."""
        from agents.config import preset

        name, values = _TRAINING[self.preset]
        values = {**values, **self.train_overrides}
        if self.model_family is not None:
            values["model_family"] = self.model_family
        config = preset(
            name, self.dataset, cell=cell, curriculum=curriculum, seed=0,
            n_members=self.n_seeds, device=self.device, data_root=self.data_root, **values,
        )  # fmt: skip
        scale = config.total_steps / PAPER_LENGTH[self.dataset]
        return config.replace(curriculum_scale=1.0 if curriculum == "none" else scale)

    def finetune_config(self, mode: str, seed: int) -> Any:
        """The `analysis.finetune.RegularizeConfig` of one fine-tuning (as in the study)."""
        name, values = _FINETUNE[self.preset]
        overrides = {
            **values, "eval_delays": self.eval_delays, "eval_trials": self.eval_trials,
            "device": self.device, "seed": seed, **self.finetune_overrides,
        }  # fmt: skip
        if mode == "control":
            overrides["lam"] = None  # the control's weight is 0 by definition
        return finetune_preset(name, self.dataset, mode=mode, **overrides)

    def analysis_options(self, curriculum: str) -> AnalysisOptions:
        """Backtracking on for curricula (their lineages are claims (c), (d)), off for none;
        `search_iterations` as the search's ``max_iterations``."""
        search = dict(self.analysis.search_options)
        if self.search_iterations is not None:
            search["max_iterations"] = self.search_iterations
        tracking = self.analysis.backtrack_search_options
        if self.backtrack_iterations is not None:
            tracking = {**(search if tracking is None else tracking)}
            tracking["max_iterations"] = self.backtrack_iterations
        return dataclasses.replace(
            self.analysis, backtrack=curriculum != "none", search_options=search,
            backtrack_search_options=tracking,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return json.loads(json.dumps(data))  # tuples -> lists, as read back from JSON


# --------------------------------------------------------------------------- layout
def run_name(cell: str, curriculum: str) -> str:
    return f"{cell}-{curriculum}"


def train_dir(out: Path, cell: str, curriculum: str) -> Path:
    return out / "train" / run_name(cell, curriculum)


def eval_file(out: Path, cell: str, curriculum: str) -> Path:
    return out / "evaluate" / f"{run_name(cell, curriculum)}.json"


def analysis_dir(out: Path, cell: str, curriculum: str, member: int) -> Path:
    return out / "analysis" / run_name(cell, curriculum) / f"m{member}"


def finetune_dir(out: Path, cell: str, curriculum: str, seed: int, mode: str) -> Path:
    return out / "regularize" / "finetune" / f"{run_name(cell, curriculum)}-s{seed}-{mode}"


@dataclass(frozen=True)
class Job:
    """One unit of work: ``stage`` on (cell, curriculum[, member][, mode])."""

    stage: str
    cell: str = ""
    curriculum: str = ""
    member: int | None = None
    mode: str | None = None

    def __str__(self) -> str:
        parts = [self.stage, self.cell, self.curriculum]
        parts += [f"m{self.member}"] if self.member is not None else []
        parts += [self.mode] if self.mode else []
        return " ".join(p for p in parts if p)


def plan(config: ReproduceConfig) -> list[Job]:
    """Every job of the study, in the order they run."""
    runs = [(c, u) for c in config.cells for u in config.curricula]
    jobs = [Job("train", c, u) for c, u in runs] + [Job("evaluate", c, u) for c, u in runs]
    jobs += [Job("analyze", c, u, k) for c, u in runs for k in range(config.n_seeds)]
    if config.regularize:
        jobs += [
            Job("regularize", c, u, k, m)
            for u in config.reg_curricula
            if u in config.curricula
            for k in range(min(config.n_seeds, config.reg_seeds or config.n_seeds))
            for c in config.cells
            for m in config.reg_modes
        ]
    return jobs + [Job("report")]


# ------------------------------------------------------------------------------ stages
def _train(config: ReproduceConfig, out: Path, job: Job, progress: bool) -> None:
    from agents.trainer import train

    run_dir = train_dir(out, job.cell, job.curriculum)
    if (run_dir / "model.pt").is_file():
        return
    train(config.train_config(job.cell, job.curriculum), run_dir, progress=progress)


def _evaluate(config: ReproduceConfig, out: Path, job: Job) -> None:
    from agents.checkpoint import checkpoint_step, load_model
    from agents.config import TrainConfig
    from agents.device import resolve_device
    from agents.evaluate import evaluate_delays

    path = eval_file(out, job.cell, job.curriculum)
    if path.is_file():
        return
    run_dir = _finished_run(out, job)
    train_config = TrainConfig.from_json(run_dir / "config.json")
    n_final = vocabulary_function(run_dir, train_config)(checkpoint_step(run_dir))
    model = load_model(run_dir, device=resolve_device(config.device))
    result = evaluate_delays(
        model, analysis_task(train_config, n_final), delays=config.eval_delays,
        n_trials=config.eval_trials, t_stim=0, seed=EVAL_SEED,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    result.save(path)


def _analyze(config: ReproduceConfig, out: Path, job: Job) -> None:
    from agents.checkpoint import write_json

    folder = analysis_dir(out, job.cell, job.curriculum, int(job.member))
    if (folder / "summary.json").is_file():
        return
    run_dir = _finished_run(out, job)
    result = analyze_run(run_dir, config.analysis_options(job.curriculum), member=job.member)
    folder.mkdir(parents=True, exist_ok=True)
    if result.lineage is not None:
        result.lineage.save(folder / "lineage.npz")
    # written last: its presence means the job is finished
    write_json(folder / "summary.json", result.summary_dict())


def _regularize(config: ReproduceConfig, out: Path, job: Job) -> None:
    seed, mode = int(job.member), str(job.mode)
    before = f"{run_name(job.cell, job.curriculum)}-s{seed}.json"
    regularize_run(
        _finished_run(out, job), config.finetune_config(mode, seed),
        finetune_dir(out, job.cell, job.curriculum, seed, mode), member=seed, progress=False,
        figures=False, before_file=out / "regularize" / "before" / before,
    )  # fmt: skip


def _finished_run(out: Path, job: Job) -> Path:
    run_dir = train_dir(out, job.cell, job.curriculum)
    if not (run_dir / "model.pt").is_file():
        raise MissingFileError(f"training of {run_name(job.cell, job.curriculum)} is not finished")
    return run_dir


def job_done(config: ReproduceConfig, out: Path, job: Job) -> bool:
    """Whether ``job``'s result file exists (the report is always rewritten)."""
    if job.stage == "train":
        return (train_dir(out, job.cell, job.curriculum) / "model.pt").is_file()
    if job.stage == "evaluate":
        return eval_file(out, job.cell, job.curriculum).is_file()
    if job.stage == "analyze":
        return (
            analysis_dir(out, job.cell, job.curriculum, int(job.member)) / "summary.json"
        ).is_file()
    if job.stage == "regularize":
        return (
            finetune_dir(out, job.cell, job.curriculum, int(job.member), str(job.mode))
            / "regularize.json"
        ).is_file()
    return False


# These errors belong to one network (it learned nothing, its loss diverged, its training
# failed earlier): the job is reported and retried on the next call; the study goes on.
_JOB_ERRORS = (ValueError, RuntimeError, FileNotFoundError)


def prerequisites(job: Job) -> tuple[Job, ...]:
    """The jobs whose results ``job`` reads: they must have run (or failed) before it starts."""
    if job.stage in ("evaluate", "analyze", "regularize"):
        return (Job("train", job.cell, job.curriculum),)
    return ()


def run_reproduce(
    config: ReproduceConfig,
    out_dir: str | Path,
    *,
    report_dir: str | Path | None = None,
    progress: bool = True,
    stop_after: str | None = None,
    meta: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    jobs: int = 1,
    threads: int | None = None,
    report_only: bool = False,
) -> dict[str, Any]:
    """Runs (or resumes) the study in ``out_dir`` and writes the report.

    Args:
        config: The protocol. ``out_dir/config.json`` keeps it; a later call on the same folder
            must agree on every field but `RESUME_FREE_FIELDS` (ValueError naming the others).
        out_dir: The study's folder.
        report_dir: Where the report goes (default ``out_dir/report``).
        progress: One tqdm bar over the jobs (and, with ``jobs=1``, the trainer's own bar).
        stop_after: Stop after this stage (one of `STAGES`), as if interrupted there.
        meta: Extra report metadata (e.g. the command line).
        log: Gets one line per finished or failed job (default: ``tqdm.write`` when
            ``progress``, else nothing).
        jobs: Jobs run at once, each in a worker process of its own; a job starts once its
            `prerequisites` are finished. The results are the same as with ``jobs=1``.
        threads: torch CPU threads of each worker (None: torch's default); ``jobs=1`` runs in
            this process, whose threads the caller sets.
        report_only: Run no job: write the report from the results the folder holds (jobs
            not run are missing from it, as after an interruption).

    Returns:
        ``{"out_dir", "report_dir", "paths" (report files; empty if stopped before the
        report), "failures" (job, error), "ran" (jobs run in this call)}``.
    """
    if stop_after is not None and stop_after not in STAGES:
        raise UsageError(f"stop_after must be one of {STAGES}, got {stop_after!r}")
    for name, value in (("jobs", jobs), ("threads", 1 if threads is None else threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")
    out = Path(out_dir)
    report = Path(report_dir) if report_dir is not None else out / "report"
    _check_config(config, out)
    log = log or (tqdm.write if progress else (lambda line: None))
    started = time.perf_counter()
    planned = plan(config)
    if stop_after is not None:
        planned = [j for j in planned if STAGES.index(j.stage) <= STAGES.index(stop_after)]
    todo = [j for j in planned if j.stage != "report" and not job_done(config, out, j)]
    if report_only:
        planned, todo = [j for j in planned if j.stage == "report"] or [Job("report")], []
    failures: list[tuple[str, str]] = []
    ran: list[str] = []
    paths: dict[str, Path] = {}
    bar = tqdm(
        total=len(planned), initial=len(planned) - len(todo) - (planned[-1].stage == "report"),
        desc="reproduce", unit="job", disable=not progress,
    )  # fmt: skip

    def finished(job: Job, error: str | None) -> None:
        if error is None:
            ran.append(str(job))
            log(f"done: {job}")
        else:
            failures.append((str(job), error))
            log(f"failed: {job}: {error}")
        bar.update(1)

    try:
        if jobs == 1:
            for job in todo:
                bar.set_postfix_str(str(job))
                finished(job, _attempt(config, out, job, progress))
        else:
            _run_parallel(config, out, todo, jobs, threads, bar, finished)
        order = {str(job): i for i, job in enumerate(planned)}
        failures.sort(key=lambda failure: order[failure[0]])  # workers finish in any order
        if planned[-1].stage == "report":
            bar.set_postfix_str("report")
            _add_wall(out, time.perf_counter() - started)
            started = time.perf_counter()
            paths = write_report(config, out, report, failures, meta or {})
            ran.append("report")
            bar.update(1)
    finally:
        bar.close()
        _add_wall(out, time.perf_counter() - started)
    return {"out_dir": out, "report_dir": report, "paths": paths, "failures": failures, "ran": ran}


def _attempt(config: ReproduceConfig, out: Path, job: Job, progress: bool) -> str | None:
    """Runs one job: None when it finished, the error's line when the network failed it.

    A training that fails for another reason than a non-finite loss is a bad configuration,
    not a bad network: it raises."""
    _running_commit()
    try:
        if job.stage == "train":
            _train(config, out, job, progress)
        elif job.stage == "evaluate":
            _evaluate(config, out, job)
        elif job.stage == "analyze":
            _analyze(config, out, job)
        else:
            _regularize(config, out, job)
    except _JOB_ERRORS as error:
        if job.stage == "train" and not _is_nonfinite(error):
            raise
        return f"{type(error).__name__}: {error}"
    _record_job(out, job)
    return None


JOBS_LOG = "jobs.jsonl"
"""One line per job finished in the study folder: which code ran it, where and when."""


@functools.cache
def _running_commit() -> str:
    """The commit of the code this process runs, asked once, at its first job: edits to the
    checkout made while a long study runs are not the code that ran it."""
    return short_commit()


def _record_job(out: Path, job: Job) -> None:
    """Appends the job's provenance to ``out/jobs.jsonl`` (one short line: appends from
    parallel workers do not interleave)."""
    line = json.dumps(
        {
            "job": str(job),
            "commit": _running_commit(),
            "host": platform.node(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    with open(out / JOBS_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def job_commits(out: Path) -> dict[str, list[str]]:
    """The commits that ran the study's recorded jobs: ``{commit: [stages]}``."""
    from agents.checkpoint import read_jsonl

    path = out / JOBS_LOG
    commits: dict[str, list[str]] = {}
    for record in read_jsonl(path) if path.is_file() else []:
        stages = commits.setdefault(record["commit"], [])
        stage = record["job"].split()[0]
        if stage not in stages:
            stages.append(stage)
    return commits


def _attempt_in_worker(
    config: ReproduceConfig, out: Path, job: Job, threads: int | None
) -> str | None:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return _attempt(config, out, job, progress=False)


def _run_parallel(
    config: ReproduceConfig,
    out: Path,
    todo: list[Job],
    jobs: int,
    threads: int | None,
    bar: Any,
    finished: Callable[[Job, str | None], None],
) -> None:
    """``todo`` on ``jobs`` spawned worker processes (no forked torch thread pools), in plan
    order as far as the prerequisites allow."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting = list(todo)
    unfinished = set(todo)  # a prerequisite that is neither here nor running is finished
    running: dict[Any, Job] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        try:
            while waiting or running:
                for job in [j for j in waiting if not unfinished.intersection(prerequisites(j))]:
                    if len(running) == jobs:
                        break
                    waiting.remove(job)
                    running[pool.submit(_attempt_in_worker, config, out, job, threads)] = job
                if not running:  # cannot happen: prerequisites are jobs without their own
                    raise RuntimeError(f"no job can start: {[str(j) for j in waiting]}")
                bar.set_postfix_str(", ".join(str(j) for j in running.values()))
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    unfinished.discard(job)
                    finished(job, future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _is_nonfinite(error: BaseException) -> bool:
    from agents.trainer import NonFiniteLossError

    return isinstance(error, NonFiniteLossError)


def _check_config(config: ReproduceConfig, out: Path) -> None:
    from agents.checkpoint import write_json

    path = out / "config.json"
    current = config.to_dict()
    if path.is_file():
        saved = read_json(path)
        differ = sorted(
            k for k in set(saved) | set(current)
            if k not in RESUME_FREE_FIELDS and saved.get(k, _DEFAULTS.get(k)) != current.get(k)
            and not (k in STAGE_FIELDS and not _stage_started(out, STAGE_FIELDS[k]))
        )  # fmt: skip
        if differ:
            raise UsageError(
                f"{out} holds a study with other settings: {', '.join(differ)} differ "
                f"(saved {[saved.get(k) for k in differ]!r}); use another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, current)


_DEFAULTS = {
    "reg_curricula": list(REGULARIZED_CURRICULA), "search_iterations": None,
    "backtrack_iterations": None, "reg_seeds": None,
}  # fmt: skip
"""Values of fields a folder's config.json may predate."""


def _stage_started(out: Path, folders: tuple[str, ...]) -> bool:
    """Whether any result file exists under ``out/<folder>`` for one of ``folders``."""
    return any(path.is_file() for folder in folders for path in (out / folder).rglob("*.json"))


def _add_wall(out: Path, seconds: float) -> None:
    """Adds ``seconds`` to the study's total wall time (kept across resumed calls)."""
    from agents.checkpoint import write_json

    path = out / "wall.json"
    total = read_json(path)["wall_s"] if path.is_file() else 0.0
    write_json(path, {"wall_s": round(total + seconds, 1)})


# ------------------------------------------------------------------------------ results
def load_results(config: ReproduceConfig, out: Path) -> dict[str, Any]:
    """The saved results, as the plain data `analysis.reproduce_report` works on."""
    from agents.evaluate import DelayAccuracy
    from analysis.backtrack import Lineage
    from analysis.claims import lineage_metrics
    from analysis.reproduce_report import long_delay_accuracy

    results: dict[str, Any] = {
        "cells": list(config.cells),
        "curricula": list(config.curricula),
        "long_delay_min": config.long_delay_min,
        "accuracy": {},
        "networks": [],
        "regularize": [],
        "regularize_skipped": None,
        "lineages": {},
    }
    for cell in config.cells:
        for curriculum in config.curricula:
            path = eval_file(out, cell, curriculum)
            if not path.is_file():
                continue
            evaluation = DelayAccuracy.load(path)
            results.setdefault("data_source", evaluation.meta.get("data_source"))
            results["accuracy"].setdefault(cell, {})[curriculum] = {
                "delays": evaluation.delays.tolist(),
                "accuracy": evaluation.accuracy.tolist(),
            }
            long_acc = long_delay_accuracy(
                evaluation.accuracy, evaluation.delays, config.long_delay_min
            )
            for member in range(config.n_seeds):
                folder = analysis_dir(out, cell, curriculum, member)
                if not (folder / "summary.json").is_file():
                    continue
                summary = read_json(folder / "summary.json")
                table = summary["speed_accuracy_slow_points"]
                speeds = [np.nan if v is None else v for v in table["speeds"]]
                network = {
                    "cell": cell,
                    "curriculum": curriculum,
                    "member": member,
                    "class_speeds": speeds,
                    "class_accuracy": [np.nan if v is None else v for v in table["accuracy"]],
                    "class_rho": table["correlation"]["rho"],
                    "analysis_delay": table.get("delay"),
                    "mean_speed": geometric_mean(speeds),
                    "centre_speeds": _speeds(summary.get("speed_accuracy_centres")),
                    "authors_centre_speeds": _speeds(summary.get("speed_accuracy_authors_centres")),
                    "long_accuracy": float(long_acc[member]),
                    "n_distinct_points": summary["n_distinct_points"],
                    "n_searches": summary["n_searches"],
                    "n_converged": summary["n_converged"],
                    "lineage": None,
                }
                if (folder / "lineage.npz").is_file():
                    lineage = Lineage.load(folder / "lineage.npz")
                    network["lineage"] = lineage_metrics(lineage)
                    results["lineages"][cell, curriculum, member] = lineage
                results["networks"].append(network)
    if not config.regularize:
        results["regularize_skipped"] = "--no-regularize"
    for curriculum in config.reg_curricula if config.regularize else ():
        if curriculum not in config.curricula:
            continue
        for seed in range(config.n_seeds):
            for cell in config.cells:
                for mode in config.reg_modes:
                    path = finetune_dir(out, cell, curriculum, seed, mode) / "regularize.json"
                    if path.is_file():
                        record = read_json(path)
                        results["regularize"].append(
                            {"cell": cell, "curriculum": curriculum, "seed": seed, "mode": mode,
                             **record}
                        )  # fmt: skip
    return results


def _speeds(table: dict[str, Any] | None) -> list[float] | None:
    """A saved speed-accuracy table's class speeds (NaN: none; None: no table)."""
    if not table:
        return None
    return [math.nan if v is None else v for v in table["speeds"]]


def _machine(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        where = "cuda: " + torch.cuda.get_device_name()
    else:
        where = "cpu"
    return (
        f"{platform.machine()}, {where}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )


def write_report(
    config: ReproduceConfig,
    out: Path,
    report_dir: Path,
    failures: list[tuple[str, str]],
    meta: dict[str, Any],
) -> dict[str, Path]:
    """Writes ``report.md``, ``report.html`` (self-contained: figures embedded),
    ``results.json`` (claims and per-network numbers) and the PNGs."""
    from agents.checkpoint import atomic_write_text, write_json
    from analysis.claims import claims_table, regularized_groups
    from analysis.plots import plot_lineage
    from analysis.reproduce_report import (
        plot_accuracy,
        plot_speed_vs_accuracy,
        report_html,
        report_markdown,
    )

    results = load_results(config, out)
    wall = out / "wall.json"
    train_config = config.train_config(config.cells[0], "none")
    results["failures"] = [f"{job}: {error}" for job, error in failures]
    results["meta"] = {
        "preset": config.preset,
        "dataset": config.dataset,
        "n_seeds": config.n_seeds,
        "commit": short_commit(),
        "machine": _machine(config.device),
        "wall_s": read_json(wall)["wall_s"] if wall.is_file() else None,
        "data_source": results.get("data_source"),
        "training": (
            f"{train_config.hidden_size} units, batch {train_config.batch_size}, "
            f"{train_config.total_steps} steps, Adam lr {train_config.lr:g} "
            f"(/10 at {train_config.lr_decay_step}), curriculum_scale "
            f"{train_config.total_steps / PAPER_LENGTH[config.dataset]:.4g}"
        ),
        "job_commits": job_commits(out),
        "unrecorded_jobs": _unrecorded_jobs(config, out),
        "search": _search_text(config),
        "held_for": held_for(config, train_config.model_family, results.get("data_source")),
        **meta,
    }
    if (out / "speed_budget.json").is_file():
        from analysis.speed_budget import budget_markdown_of

        results["speed_budget"] = read_json(out / "speed_budget.json")
        results["speed_budget_md"] = budget_markdown_of(results["speed_budget"])
    report_dir.mkdir(parents=True, exist_ok=True)
    rows = claims_table(results, results["meta"]["held_for"])
    figures: dict[str, Any] = {}
    if results["accuracy"]:
        figures["accuracy"] = plot_accuracy(results["accuracy"])
    if results["networks"]:
        figures["speed_accuracy"] = plot_speed_vs_accuracy(
            results["networks"], config.long_delay_min
        )
    for curriculum in ("vocu", "decu"):
        found = sorted(k for k in results["lineages"] if k[1] == curriculum)
        if found:
            cell, _, member = found[0]
            figures[f"lineage_{curriculum}"] = plot_lineage(
                results["lineages"][found[0]],
                title=f"{cell.upper()} {curriculum} member {member}: slow points through training",
            )
    regularize_md = ""
    if results["regularize"]:
        table = study_table(regularized_groups(results["regularize"]))
        regularize_md = table_markdown(table)
        figures["regularize"] = plot_study(table)
    names = {}
    paths: dict[str, Path] = {}
    for name, figure in figures.items():
        paths[f"figure_{name}"] = report_dir / f"{name}.png"
        figure.savefig(paths[f"figure_{name}"], dpi=110)
        names[name] = f"{name}.png"
    paths["report"] = report_dir / "report.md"
    atomic_write_text(paths["report"], report_markdown(results, rows, names, regularize_md))
    paths["html"] = report_dir / "report.html"
    images = {f"{name}.png": paths[f"figure_{name}"].read_bytes() for name in figures}
    atomic_write_text(paths["html"], report_html(paths["report"].read_text(), images))
    paths["results"] = report_dir / "results.json"
    serialisable = {k: v for k, v in results.items() if k != "lineages"}
    write_json(
        paths["results"],
        _json_safe(
            {"config": config.to_dict(), "claims": [r.to_dict() for r in rows], **serialisable}
        ),
    )
    return paths


def _unrecorded_jobs(config: ReproduceConfig, out: Path) -> str:
    """Finished jobs that ``jobs.jsonl`` does not name (run by code that predates it), e.g.
    ``train gru vocu, train gru decu``; '' when every finished job is recorded."""
    from agents.checkpoint import read_jsonl

    path = out / JOBS_LOG
    recorded = {r["job"] for r in read_jsonl(path)} if path.is_file() else set()
    return ", ".join(
        str(j)
        for j in plan(config)
        if j.stage != "report" and job_done(config, out, j) and str(j) not in recorded
    )


def held_for(config: ReproduceConfig, family: str, data_source: str | None) -> str:
    """What a verdict holds for: ``under `fast`, full MNIST, authors' networks``."""
    names = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
    data = names.get(config.dataset, config.dataset)
    if data_source is None:
        data += " (source unknown)"
    elif data_source.startswith("embedded"):
        data = f"embedded {data} (5,000 images)"
    else:
        data = f"full {data}"
    who = "the authors' networks" if family == "authors" else "PyTorch's cells"
    return f"under `{config.preset}`, {data}, {who}"


def _search_text(config: ReproduceConfig) -> str:
    options = config.analysis_options("vocu")
    if options.method != "newton":
        return f"{options.method}, {options.search_options or 'default settings'}"
    budget = options.search_options.get("max_iterations", 50)
    tracking = (options.backtrack_search_options or options.search_options).get(
        "max_iterations", 50
    )
    return (
        f"Levenberg-Marquardt, at most {budget} Jacobians per search of the final network, "
        f"{tracking} per backtracking search; class speeds and accuracies at delay "
        f"{options.long_delay}"
    )


def _json_safe(value: Any) -> Any:
    """NaN / inf -> None, numpy scalars -> Python (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
