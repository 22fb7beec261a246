"""The whole study of Haviv, Rivkind & Barak (2019), end to end and resumable.

`run_reproduce(config, out_dir)` runs five stages; each job writes its result file when it is
finished, and a finished job is read back, not redone, so an interrupted study continues where
it stopped (an interrupted training resumes from its own run directory):

1. **train**: one batched ensemble per (cell, curriculum) with ``n_members = n_seeds``
   (``OUT/train/<cell>-<curriculum>/``, checkpoints kept for backtracking);
2. **evaluate**: accuracy vs delay of every member on held-out images
   (``OUT/evaluate/<cell>-<curriculum>.json``, `agents.DelayAccuracy`);
3. **analyze**: per member, `studies.run_analysis.analyze_run` (backtracking for VoCu and DeCu
   runs only) -> ``OUT/analysis/<cell>-<curriculum>/m<k>/summary.json`` (+ ``lineage.npz``);
4. **regularize**: every member of the no-curriculum runs fine-tuned once per mode with
   `studies.finetune.regularize_run`, exactly as `studies.regularize_study` does
   (``OUT/regularize/finetune/<cell>-s<k>-<mode>/``);
5. **report**: `studies.reproduce_report` on the saved results -> ``report.md`` + PNGs.

Curricula: the paper's schedules are 140,000 steps long (CIFAR-10: 300,000); every run uses
``curriculum_scale = total_steps / 140_000`` (CIFAR-10: ``/ 300_000``), so the whole schedule,
last stage included, fits the run in the paper's proportions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_json
from analysis.pipeline import AnalysisOptions
from analysis.stats import geometric_mean
from memenv.errors import MissingFileError, UsageError
from studies.finetune import EVAL_DELAYS, finetune_preset, regularize_run
from studies.jobs import (
    Job,
    JobOutcome,
    Plan,
    describe_outcome,
    failed_jobs,
    folder_lock,
    read_records,
    report_job,
    run_plan,
)
from studies.provenance import machine_line, short_commit
from studies.regularize_study import MODES, plot_study, study_table, table_markdown
from studies.report import write_report
from studies.run_analysis import analysis_task, analyze_run, vocabulary_function

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
        finetune_overrides: Extra `studies.finetune.RegularizeConfig` fields.
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
        """The `studies.finetune.RegularizeConfig` of one fine-tuning (as in the study)."""
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


def job_key(stage: str, cell: str = "", curriculum: str = "", member: int | None = None,
            mode: str | None = None) -> str:  # fmt: skip
    """A job's name: ``stage cell curriculum [m<member>] [mode]`` (``"analyze gru vocu m1"``);
    its first word is its stage (`STAGES`)."""
    parts = [stage, cell, curriculum]
    parts += [f"m{member}"] if member is not None else []
    parts += [mode] if mode else []
    return " ".join(p for p in parts if p)


def stage_of(key: str) -> str:
    return key.split()[0]


# These errors belong to one network (it learned nothing, its loss diverged, its training
# failed earlier): the job is recorded as failed and retried on the next call; the study goes on.
_JOB_ERRORS = (ValueError, RuntimeError, FileNotFoundError)


def _nonfinite() -> tuple[type[BaseException], ...]:
    from agents.trainer import NonFiniteLossError

    # only a diverged loss is the network's fault: any other training error is a bad setting
    return (NonFiniteLossError,)


def reproduce_plan(
    config: ReproduceConfig,
    out: Path,
    *,
    report_dir: Path | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = False,
) -> Plan:
    """Every job of the study in ``out``, in the order a single worker runs them.

    ``progress``: the trainer's own bar (one job at a time in this process only)."""
    out = Path(out)
    report_dir = report_dir if report_dir is not None else out / "report"
    runs = [(c, u) for c in config.cells for u in config.curricula]
    gpu = config.device != "cpu"
    jobs: list[Job] = []

    def add(kind, stage, action, done, failures, cell, curriculum, member=None, mode=None):
        after = () if stage == "train" else (job_key("train", cell, curriculum),)
        jobs.append(Job(
            job_key(stage, cell, curriculum, member, mode), kind, action, done, after,
            failures, gpu=gpu,
        ))  # fmt: skip

    for c, u in runs:
        add("train", "train", partial(_train, config, out, c, u, progress),
            partial(Path.is_file, train_dir(out, c, u) / "model.pt"), _nonfinite(), c, u)  # fmt: skip
    for c, u in runs:
        add("evaluate", "evaluate", partial(_evaluate, config, out, c, u),
            partial(Path.is_file, eval_file(out, c, u)), _JOB_ERRORS, c, u)  # fmt: skip
    for c, u in runs:
        for k in range(config.n_seeds):
            add("analyze", "analyze", partial(_analyze, config, out, c, u, k),
                partial(Path.is_file, analysis_dir(out, c, u, k) / "summary.json"), _JOB_ERRORS,
                c, u, k)  # fmt: skip
    if config.regularize:
        for u in config.reg_curricula:
            if u not in config.curricula:
                continue
            for k in range(min(config.n_seeds, config.reg_seeds or config.n_seeds)):
                for c in config.cells:
                    for m in config.reg_modes:
                        add("finetune", "regularize", partial(_regularize, config, out, c, u, k, m),
                            partial(Path.is_file, finetune_dir(out, c, u, k, m) / "regularize.json"),
                            _JOB_ERRORS, c, u, k, m)  # fmt: skip
    jobs.append(
        report_job(partial(write_reproduce_report, config, out, Path(report_dir), meta or {}), jobs)
    )
    return Plan("reproduce", out, tuple(jobs))


# ------------------------------------------------------------------------------ stages
def _train(config: ReproduceConfig, out: Path, cell: str, curriculum: str, progress: bool) -> None:
    from agents.trainer import train

    run_dir = train_dir(out, cell, curriculum)
    train(config.train_config(cell, curriculum), run_dir, progress=progress)


def _evaluate(config: ReproduceConfig, out: Path, cell: str, curriculum: str) -> None:
    from agents.checkpoint import checkpoint_step, load_model
    from agents.config import TrainConfig
    from agents.device import resolve_device
    from agents.evaluate import evaluate_delays

    run_dir = _finished_run(out, cell, curriculum)
    train_config = TrainConfig.from_json(run_dir / "config.json")
    n_final = vocabulary_function(run_dir, train_config)(checkpoint_step(run_dir))
    model = load_model(run_dir, device=resolve_device(config.device))
    result = evaluate_delays(
        model, analysis_task(train_config, n_final), delays=config.eval_delays,
        n_trials=config.eval_trials, t_stim=0, seed=EVAL_SEED,
    )  # fmt: skip
    path = eval_file(out, cell, curriculum)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.save(path)


def _analyze(config: ReproduceConfig, out: Path, cell: str, curriculum: str, member: int) -> None:
    from agents.checkpoint import write_json

    folder = analysis_dir(out, cell, curriculum, member)
    run_dir = _finished_run(out, cell, curriculum)
    result = analyze_run(run_dir, config.analysis_options(curriculum), member=member)
    folder.mkdir(parents=True, exist_ok=True)
    if result.lineage is not None:
        result.lineage.save(folder / "lineage.npz")
    # written last: its presence means the job is finished
    write_json(folder / "summary.json", result.summary_dict())


def _regularize(
    config: ReproduceConfig, out: Path, cell: str, curriculum: str, seed: int, mode: str
) -> None:
    before = f"{run_name(cell, curriculum)}-s{seed}.json"
    regularize_run(
        _finished_run(out, cell, curriculum), config.finetune_config(mode, seed),
        finetune_dir(out, cell, curriculum, seed, mode), member=seed, progress=False,
        figures=False, before_file=out / "regularize" / "before" / before,
    )  # fmt: skip


def _finished_run(out: Path, cell: str, curriculum: str) -> Path:
    run_dir = train_dir(out, cell, curriculum)
    if not (run_dir / "model.pt").is_file():
        raise MissingFileError(f"training of {run_name(cell, curriculum)} is not finished")
    return run_dir


def run_reproduce(
    config: ReproduceConfig,
    out_dir: str | Path,
    *,
    report_dir: str | Path | None = None,
    progress: bool = True,
    stop_after: str | None = None,
    meta: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    executor: Any = None,
    jobs: int = 1,
    threads: int | None = None,
    report_only: bool = False,
) -> dict[str, Any]:
    """Runs (or resumes) the study in ``out_dir`` and writes the report.

    Args:
        config: The protocol. ``out_dir/config.json`` keeps it; a later call on the same folder
            must agree on every field but `RESUME_FREE_FIELDS` (ValueError naming the others).
        out_dir: The study's folder (on Ray: storage every worker sees).
        report_dir: Where the report goes (default ``out_dir/report``).
        progress: One tqdm bar over the jobs (and, run serially, the trainer's own bar).
        stop_after: Stop after this stage (one of `STAGES`), as if interrupted there.
        meta: Extra report metadata (e.g. the command line).
        log: Gets one line per finished, failed or skipped job (default: nothing; the bar
            shows failures).
        executor: `studies.executors.SerialExecutor` or `RayExecutor` (default:
            ``make_executor(jobs, threads=threads)``: serial for ``jobs=1``, else a local Ray
            instance with ``jobs`` CPUs). The results do not depend on it.
        jobs, threads: See ``executor``; ``threads``: torch threads per job on Ray (default
            1); run serially, this process's threads are the caller's.
        report_only: Run no job: write the report from the results the folder holds (jobs
            not run are missing from it, as after an interruption).

    Returns:
        ``{"out_dir", "report_dir", "paths" (report files; empty if stopped before the
        report), "failures" (job, error) of this call, "ran" (jobs done in this call)}``.
    """
    from studies.executors import make_executor

    if stop_after is not None and stop_after not in STAGES:
        raise UsageError(f"stop_after must be one of {STAGES}, got {stop_after!r}")
    if executor is None:
        executor = make_executor(jobs, threads=threads if jobs > 1 else None)
    out = Path(out_dir)
    report = Path(report_dir) if report_dir is not None else out / "report"
    started = time.perf_counter()
    # the report adds this call's time so far to the folder's (wall.json is updated after it)
    meta = {**(meta or {}), "call_started": time.time()}
    serial = getattr(executor, "name", "") == "serial"
    study = reproduce_plan(config, out, report_dir=report, meta=meta, progress=progress and serial)
    if report_only:
        study = study.only(lambda job: job.kind == "report")
    elif stop_after is not None:
        last = STAGES.index(stop_after)
        study = study.only(lambda job: STAGES.index(stage_of(job.key)) <= last)
    with folder_lock(out):  # before the folder's config is checked or written
        _check_config(config, out)
        try:
            outcomes = run_plan(
                study, executor, progress=progress, lock=False,
                on_outcome=(lambda o: log(describe_outcome(o))) if log is not None else None,
            )  # fmt: skip
        finally:
            _add_wall(out, time.perf_counter() - started)
    order = {job.key: i for i, job in enumerate(study.jobs)}
    outcomes.sort(key=lambda o: order[o.key])  # Ray's workers finish in any order
    report_outcome = [o for o in outcomes if o.key == "report" and o.status == "done"]
    return {
        "out_dir": out,
        "report_dir": report,
        "paths": report_outcome[0].value if report_outcome else {},
        "failures": [(o.key, str(o.error)) for o in outcomes if o.status != "done"],
        "ran": [o.key for o in outcomes if o.status == "done"],
    }


def job_commits(out: Path) -> dict[str, list[str]]:
    """The commits that ran the study's finished jobs: ``{commit: [stages]}``."""
    commits: dict[str, list[str]] = {}
    for line in read_records(out):
        if line["status"] != "done":
            continue
        stages = commits.setdefault(line["commit"], [])
        if stage_of(line["job"]) not in stages:
            stages.append(stage_of(line["job"]))
    return commits


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
    """The saved results, as the plain data `studies.reproduce_report` works on."""
    from agents.evaluate import DelayAccuracy
    from analysis.backtrack import Lineage
    from analysis.claims import lineage_metrics
    from studies.reproduce_report import long_delay_accuracy

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


def write_reproduce_report(
    config: ReproduceConfig,
    out: Path,
    report_dir: Path,
    meta: dict[str, Any],
    needed: Sequence[JobOutcome] = (),
) -> dict[str, Path]:
    """Writes ``report.md``, ``report.html`` (self-contained: figures embedded),
    ``results.json`` (claims and per-network numbers) and the PNGs.

    The failures it lists: the jobs whose latest attempt failed (``jobs.jsonl``) and, of this
    call, ``needed`` (the outcomes of the report job's prerequisites) that did not finish."""
    from analysis.claims import claims_table, regularized_groups
    from analysis.plots import plot_lineage
    from studies.reproduce_report import (
        plot_accuracy,
        plot_speed_vs_accuracy,
        report_markdown,
    )

    results = load_results(config, out)
    wall = out / "wall.json"
    meta = dict(meta)
    this_call = time.time() - meta.pop("call_started", time.time())
    train_config = config.train_config(config.cells[0], "none")
    study = reproduce_plan(config, out)
    failures = dict(failed_jobs(out, study))
    failures.update({o.key: str(o.error) for o in needed if o.status != "done"})
    results["failures"] = [f"{j.key}: {failures[j.key]}" for j in study.jobs if j.key in failures]
    results["meta"] = {
        "preset": config.preset,
        "dataset": config.dataset,
        "n_seeds": config.n_seeds,
        "commit": short_commit(),
        "machine": machine_line(config.device),
        "wall_s": round((read_json(wall)["wall_s"] if wall.is_file() else 0.0) + this_call, 1),
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
    names = {name: f"{name}.png" for name in figures}
    serialisable = {k: v for k, v in results.items() if k != "lineages"}
    return write_report(
        report_dir,
        markdown=("report.md", report_markdown(results, rows, names, regularize_md)),
        figures=figures,
        data={
            "results.json": {
                "config": config.to_dict(), "claims": [r.to_dict() for r in rows], **serialisable
            }
        },
    )  # fmt: skip


def _unrecorded_jobs(config: ReproduceConfig, out: Path) -> str:
    """Finished jobs that ``jobs.jsonl`` does not name (run by code that predates it), e.g.
    ``train gru vocu, train gru decu``; '' when every finished job is recorded."""
    recorded = {line["job"] for line in read_records(out) if line["status"] == "done"}
    return ", ".join(
        job.key
        for job in reproduce_plan(config, out).jobs
        if not job.always and job.done() and job.key not in recorded
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
