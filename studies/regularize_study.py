"""The regularisation experiment: does the speed penalty make memories last longer?

For every cell and seed, train a base network, then fine-tune it once per mode (``center``,
``slow``, ``control``) with `studies.finetune.regularize_run`, evaluating every network on the
same held-out trials before and after. `study_table` compares the modes over seeds (mean and
95% t-interval, and the paired difference to the control), `plot_study` draws accuracy vs delay.

Run it (resumable: finished runs are read back, not redone)::

    python -m studies.regularize_study --runs runs/regularize-study --jobs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from analysis.intervals import t_interval
from memenv.errors import UsageError
from studies.finetune import DEFINITIONS, EVAL_DELAYS, finetune_preset, load_result, regularize_run
from studies.jobs import Job, JobOutcome, Plan, describe_outcome, report_job, run_plan
from studies.provenance import short_commit
from studies.report import write_report

MODES = ("center", "slow", "control")


@dataclass(frozen=True)
class StudyConfig:
    """The experiment's protocol.

    Attributes:
        cells: Recurrent cells.
        n_seeds: Base networks per cell (weights seeds ``0 .. n_seeds - 1``).
        modes: Fine-tuning modes (`analysis.regularizer.ANCHOR_MODES`).
        preset: Base training preset (`agents.preset`).
        finetune: Fine-tuning preset (`studies.finetune.finetune_preset`).
        lam: Penalty weight (None: the paper's).
        ensemble: Train each cell's seeds as one batched ensemble (fast on a GPU; the members
            share the trial stream, their weights are independent).
        eval_delays: Delays of the before/after evaluation.
        eval_trials: Trials per delay.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        data_root: Data folder (None: ``$MEMENV_DATA`` or the embedded MNIST).
        train_overrides: Extra `agents.TrainConfig` fields of the base runs (tests shrink them).
        finetune_overrides: Extra `studies.finetune.RegularizeConfig` fields.
    """

    cells: tuple[str, ...] = ("gru", "lstm")
    n_seeds: int = 5
    modes: tuple[str, ...] = MODES
    preset: str = "fast"
    finetune: str = "fast"
    lam: float | None = None
    ensemble: bool = False
    eval_delays: tuple[int, ...] = EVAL_DELAYS
    eval_trials: int = 1000
    device: str = "auto"
    data_root: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)
    finetune_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.n_seeds, bool) or not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise UsageError(f"n_seeds must be a positive integer, got {self.n_seeds!r}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise UsageError(f"modes must be among {MODES}, got {list(self.modes)!r}")


def _base_config(study: StudyConfig, cell: str, seed: int, n_members: int) -> Any:
    from agents.config import preset

    return preset(
        study.preset, cell=cell, seed=seed, n_members=n_members, device=study.device,
        data_root=study.data_root, **study.train_overrides,
    )  # fmt: skip


def base_runs(study: StudyConfig, runs_dir: Path) -> dict[tuple[str, int], tuple[Path, int | None]]:
    """Where the study trains its base networks: ``{(cell, seed): (run_dir, member)}``
    (``runs_dir/base/<cell>-k<n>`` for an ensemble, else ``runs_dir/base/<cell>-s<seed>``)."""
    sources: dict[tuple[str, int], tuple[Path, int | None]] = {}
    for cell in study.cells:
        for seed in range(study.n_seeds):
            if study.ensemble:
                sources[cell, seed] = (runs_dir / "base" / f"{cell}-k{study.n_seeds}", seed)
            else:
                sources[cell, seed] = (runs_dir / "base" / f"{cell}-s{seed}", None)
    return sources


def study_plan(
    study: StudyConfig,
    runs_dir: str | Path,
    sources: dict[tuple[str, int], Any] | None = None,
    *,
    report: tuple[Path, dict[str, Any], list[str]] | None = None,
    progress: bool = False,
) -> Plan:
    """The experiment's jobs: the base trainings (none when ``sources``, trained networks
    ``{(cell, seed): (run_dir, member)}``, are given), one fine-tuning per (seed, cell, mode)
    into ``runs_dir/finetune/<cell>-s<seed>-<mode>/`` (seed by seed, so an interrupted study
    still has complete comparisons), and, given ``report = (folder, meta, notes)``, the
    report."""
    from agents.trainer import NonFiniteLossError

    runs_dir = Path(runs_dir)
    jobs: list[Job] = []
    base_job: dict[tuple[str, int], str] = {}
    gpu = study.device != "cpu"
    if sources is None:
        sources = base_runs(study, runs_dir)
        for (cell, seed), (run_dir, member) in sources.items():
            key = f"train {cell} {run_dir.name.split('-')[-1]}"
            base_job[cell, seed] = key
            if member is not None and member > 0:
                continue  # the ensemble's one job
            n = study.n_seeds if member is not None else 1
            jobs.append(Job(
                key, "train", partial(_train_base, study, cell, seed, n, run_dir, progress),
                partial(Path.is_file, run_dir / "model.pt"), failures=(NonFiniteLossError,), gpu=gpu,
            ))  # fmt: skip
    for seed in range(study.n_seeds):
        for cell in study.cells:
            for mode in study.modes:
                source, member = sources[cell, seed]
                out_dir = finetune_dir(runs_dir, cell, seed, mode)
                jobs.append(Job(
                    f"finetune {cell} s{seed} {mode}", "finetune",
                    partial(_finetune_one, study, Path(source), member, runs_dir, cell, seed, mode),
                    partial(Path.is_file, out_dir / "regularize.json"),
                    after=(base_job[cell, seed],) if (cell, seed) in base_job else (),
                    failures=(NonFiniteLossError,), gpu=gpu,
                ))  # fmt: skip
    if report is not None:
        folder, meta, notes = report
        jobs.append(
            report_job(partial(_report_job, study, runs_dir, folder, meta, list(notes)), jobs)
        )
    return Plan("regularize", runs_dir, tuple(jobs))


def finetune_dir(runs_dir: Path, cell: str, seed: int, mode: str) -> Path:
    return Path(runs_dir) / "finetune" / f"{cell}-s{seed}-{mode}"


def _train_base(
    study: StudyConfig, cell: str, seed: int, n_members: int, run_dir: Path, progress: bool
) -> None:
    from agents.trainer import train

    train(_base_config(study, cell, seed, n_members), run_dir, progress=progress)


def _finetune_one(
    study: StudyConfig,
    source: Path,
    member: int | None,
    runs_dir: Path,
    cell: str,
    seed: int,
    mode: str,
) -> str:
    """One fine-tuning; returns its line for the log. The fine-tunings of one base network
    share its trial seed (``seed``) and its before-evaluation (``runs_dir/before/...``), so the
    modes are compared paired. The fine-tuning preset is read for the source's data set."""
    from agents.config import TrainConfig

    overrides = {
        "eval_delays": tuple(study.eval_delays), "eval_trials": study.eval_trials,
        "device": study.device, "seed": seed, "lam": study.lam, **study.finetune_overrides,
    }  # fmt: skip
    if mode == "control":
        overrides["lam"] = None  # the control's weight is 0 by definition
    dataset = TrainConfig.from_json(source / "config.json").dataset
    config = finetune_preset(study.finetune, dataset, mode=mode, **overrides)
    result = regularize_run(
        source, config, finetune_dir(runs_dir, cell, seed, mode), member=member,
        progress=False, figures=False, before_file=runs_dir / "before" / f"{cell}-s{seed}.json",
    ).to_dict()  # fmt: skip
    after = result["accuracy_after"] or {}
    return (
        f"{cell} seed {seed} {mode}: speed {_g(result['mean_speed_before'])} -> "
        f"{_g(result['mean_speed_after'])}, accuracy after "
        + ", ".join(f"d{d}={a:.3f}" for d, a in after.items())
        + f" ({result['info'].get('wall_s')} s)"
    )


def load_records(study: StudyConfig, runs_dir: str | Path) -> list[dict[str, Any]]:
    """One record per finished fine-tuning of the study (`RegularizeResult.to_dict` with
    ``cell``, ``seed``, ``mode``), seed by seed."""
    records = []
    for seed in range(study.n_seeds):
        for cell in study.cells:
            for mode in study.modes:
                out_dir = finetune_dir(Path(runs_dir), cell, seed, mode)
                if (out_dir / "regularize.json").is_file():
                    result = load_result(out_dir).to_dict()
                    records.append({"cell": cell, "seed": seed, "mode": mode, **result})
    return records


def run_study(
    study: StudyConfig,
    runs_dir: str | Path,
    sources: dict[tuple[str, int], Any] | None = None,
    *,
    executor: Any = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    report: tuple[Path, dict[str, Any], list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Runs (or resumes) the experiment (`study_plan`) on ``executor`` (default: serially);
    returns one record per finished fine-tuning (`load_records`). ``log`` gets one line per
    finished fine-tuning."""
    runs_dir = Path(runs_dir)
    serial = executor is None or getattr(executor, "name", "") == "serial"
    plan = study_plan(study, runs_dir, sources, report=report, progress=progress and serial)

    def came_in(outcome: JobOutcome) -> None:
        if log is not None and outcome.key.startswith("finetune") and outcome.status == "done":
            log(outcome.value)
        elif log is not None and outcome.status != "done":
            log(describe_outcome(outcome))

    run_plan(plan, executor, progress=progress, on_outcome=came_in)
    return load_records(study, runs_dir)


def unfinished(
    study: StudyConfig, runs_dir: str | Path, sources: dict[tuple[str, int], Any] | None = None
) -> list[str]:
    """The jobs of the study (report aside) whose output does not exist: after `run_study`,
    those that failed (or were skipped); a caller exits non-zero on them."""
    return [job.key for job in study_plan(study, runs_dir, sources).jobs if not job.done()]


def member_sources(run_dir: str | Path, n_seeds: int) -> tuple[str, dict[tuple[str, int], Any]]:
    """Members ``0 .. n_seeds - 1`` of a trained ensemble run as the study's base networks:
    ``(cell, {(cell, k): (run_dir, k)})`` (what `base_runs` gives for ``ensemble=True``).

    Raises:
        UsageError: ``run_dir`` is no finished run, or has fewer than ``n_seeds`` members.
    """
    from agents.config import TrainConfig
    from memenv.errors import MissingFileError

    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file() or not (run_dir / "config.json").is_file():
        raise MissingFileError(f"{run_dir} holds no finished run (no model.pt / config.json)")
    config = TrainConfig.from_json(run_dir / "config.json")
    if config.n_members < n_seeds:
        what = "a single network" if config.n_members == 1 else f"{config.n_members} members"
        raise UsageError(
            f"seeds {n_seeds} needs an ensemble run of at least {n_seeds} members; {run_dir} "
            f"has {what} (train one with memenv train --members {n_seeds})"
        )
    return config.cell, {(config.cell, k): (run_dir, k) for k in range(n_seeds)}


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# ------------------------------------------------------------------------------ analysis
def study_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per cell and mode: accuracy per delay (mean, 95% t-CI over seeds), the paired
    difference to the control, the anchor speeds before and after, and a paired t-test."""
    cells = sorted({r["cell"] for r in records})
    modes = [m for m in MODES if any(r["mode"] == m for r in records)]
    delays = sorted({int(d) for r in records for d in (r["accuracy_after"] or {})})
    by = {(r["cell"], r["mode"], r["seed"]): r for r in records}
    table: dict[str, Any] = {"delays": delays, "cells": {}}
    for cell in cells:
        seeds = sorted({s for (c, _, s) in by if c == cell})
        entry: dict[str, Any] = {}

        def acc(mode: str, seed: int, key: str, cell: str = cell) -> np.ndarray:
            record = by[cell, mode, seed]
            return np.array([record[key][str(d)] for d in delays], dtype=np.float64)

        before = np.stack([acc(modes[0], s, "accuracy_before") for s in seeds])
        entry["before"] = {"accuracy": _summary(before), "n_seeds": len(seeds)}
        for mode in modes:
            have = [s for s in seeds if (cell, mode, s) in by]
            after = np.stack([acc(mode, s, "accuracy_after") for s in have])
            speed_b = np.array([by[cell, mode, s]["mean_speed_before"] for s in have], dtype=float)
            speed_a = np.array([by[cell, mode, s]["mean_speed_after"] for s in have], dtype=float)
            slow_b = [by[cell, mode, s].get("mean_slow_speed_before") for s in have]
            slow_a = [by[cell, mode, s].get("mean_slow_speed_after") for s in have]
            row: dict[str, Any] = {
                "n_seeds": len(have),
                "accuracy": _summary(after),
                "speed_before": t_interval(speed_b)[0],
                "speed_after": t_interval(speed_a)[0],
                "speed_ratio": float(np.exp(np.mean(np.log(speed_a / speed_b)))),
                "slow_speed_before": _mean(slow_b),
                "slow_speed_after": _mean(slow_a),
                "penalty_first": _mean([by[cell, mode, s]["penalty_first"] for s in have]),
                "penalty_last": _mean([by[cell, mode, s]["penalty_last"] for s in have]),
                "penalty_before": _mean([by[cell, mode, s].get("penalty_before") for s in have]),
                "penalty_after": _mean([by[cell, mode, s].get("penalty_after") for s in have]),
            }
            paired = [s for s in have if (cell, "control", s) in by]
            if mode != "control" and len(paired) >= 2:
                diff = np.stack(
                    [acc(mode, s, "accuracy_after") - acc("control", s, "accuracy_after")
                     for s in paired]
                )  # fmt: skip
                row["minus_control"] = _summary(diff)
                row["minus_control_p"] = [_paired_p(diff[:, i]) for i in range(len(delays))]
            entry[mode] = row
        table["cells"][cell] = entry
    return table


def _summary(values_sxd: np.ndarray) -> dict[str, list[float]]:
    parts = [t_interval(values_sxd[:, i]) for i in range(values_sxd.shape[1])]
    return {
        "mean": [p[0] for p in parts],
        "ci_low": [p[1] for p in parts],
        "ci_high": [p[2] for p in parts],
    }


def _paired_p(diff: np.ndarray) -> float | None:
    if np.allclose(diff, diff[0]):
        return None  # no spread: the t-test is undefined
    return float(stats.ttest_1samp(diff, 0.0).pvalue)


def _mean(values: list[Any]) -> float | None:
    finite = [float(v) for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def table_markdown(table: dict[str, Any], delays: list[int] | None = None) -> str:
    """The experiment's table: accuracy (mean [95% CI] over seeds) per delay and mode."""
    all_delays = table["delays"]
    delays = delays or all_delays
    index = [all_delays.index(d) for d in delays]
    lines = []
    for cell, entry in table["cells"].items():
        with_s = any(
            entry[m].get("penalty_after") is not None for m in MODES if m in entry
        )  # results made before S was measured have no S column
        lines += [
            f"### {cell.upper()} ({entry['before']['n_seeds']} seeds)",
            "",
            "| mode | "
            + " | ".join(f"delay {d}" for d in delays)
            + " | q at anchors before -> after | slow-point q before -> after |"
            + (" S before -> after |" if with_s else ""),
            "|---|" + "---:|" * len(delays) + "---|---|" + ("---|" if with_s else ""),
        ]
        rows = [("before fine-tuning", entry["before"])] + [
            (m, entry[m]) for m in MODES if m in entry
        ]
        for name, row in rows:
            acc = row["accuracy"]
            cells = [
                f"{acc['mean'][i]:.3f} [{acc['ci_low'][i]:.3f}, {acc['ci_high'][i]:.3f}]"
                for i in index
            ]
            speed = (
                f"{row['speed_before']:.3g} -> {row['speed_after']:.3g} (x{row['speed_ratio']:.2f})"
                if "speed_after" in row
                else ""
            )
            slow = (
                f"{_g(row['slow_speed_before'])} -> {_g(row['slow_speed_after'])}"
                if "slow_speed_after" in row
                else ""
            )
            penalty = (
                f" {_g(row['penalty_before'])} -> {_g(row['penalty_after'])} |"
                if "penalty_after" in row
                else " |"
            )
            lines.append(
                f"| {name} | "
                + " | ".join(cells)
                + f" | {speed} | {slow} |"
                + (penalty if with_s else "")
            )
        lines.append("")
        diffs = [(m, entry[m]) for m in MODES if m in entry and "minus_control" in entry[m]]
        if diffs:
            lines += [
                "| paired difference to control | "
                + " | ".join(f"delay {d}" for d in delays)
                + " |",
                "|---|" + "---:|" * len(delays),
            ]
            for mode, row in diffs:
                diff, p = row["minus_control"], row["minus_control_p"]
                cells = [
                    f"{diff['mean'][i]:+.3f} [{diff['ci_low'][i]:+.3f}, {diff['ci_high'][i]:+.3f}]"
                    f" p={_p(p[i])}"
                    for i in index
                ]
                lines.append(f"| {mode} - control | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def plot_study(table: dict[str, Any], differences: bool = False) -> Any:
    """Accuracy vs delay after fine-tuning, one panel per cell, one curve per mode (and the
    networks before fine-tuning), with 95% t-interval bands over seeds; with ``differences``
    a second row: each mode minus the control (paired by seed), mean and 95% t-interval.
    Returns the Figure."""
    from matplotlib.figure import Figure

    from analysis.plots import style_delay_axes

    cells = list(table["cells"])
    rows = 2 if differences else 1
    fig = Figure(figsize=(5.2 * len(cells), 4.0 * rows), layout="constrained")
    grid = fig.subplots(rows, len(cells), squeeze=False)
    axes = grid[0]
    delays = np.asarray(table["delays"])
    styles = {"before fine-tuning": ("0.3", "--"), "center": ("C0", "-"),
              "slow": ("C1", "-"), "control": ("C2", "-")}  # fmt: skip
    for ax, cell in zip(axes, cells, strict=True):
        entry = table["cells"][cell]
        rows = [("before fine-tuning", entry["before"])] + [
            (m, entry[m]) for m in MODES if m in entry
        ]
        for name, row in rows:
            color, line = styles[name]
            acc = row["accuracy"]
            ax.plot(delays, acc["mean"], line, color=color, marker="o", ms=3, label=name)
            low = np.nan_to_num(np.asarray(acc["ci_low"], dtype=float), nan=np.nan)
            ax.fill_between(delays, low, acc["ci_high"], color=color, alpha=0.15, lw=0)
        title = f"{cell.upper()}: {entry['before']['n_seeds']} seeds, mean and 95% CI"
        style_delay_axes(ax, 19, title)
    for ax, cell in zip(grid[1], cells, strict=True) if differences else ():
        entry = table["cells"][cell]
        ax.axhline(0.0, color="0.3", lw=1)
        for mode in MODES:
            if mode not in entry or "minus_control" not in entry[mode]:
                continue
            color, line = styles[mode]
            diff = entry[mode]["minus_control"]
            ax.plot(delays, diff["mean"], line, color=color, marker="o", ms=3,
                    label=f"{mode} - control")  # fmt: skip
            ax.fill_between(delays, diff["ci_low"], diff["ci_high"], color=color, alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("delay (steps)")
        ax.set_ylabel("accuracy difference to the control")
        ax.set_title(f"{cell.upper()}: paired difference, mean and 95% CI")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    return fig


def _report_job(
    study: StudyConfig,
    runs_dir: Path,
    folder: Path,
    meta: dict[str, Any],
    notes: list[str],
    needed: list[JobOutcome],
) -> dict[str, Path]:
    """The report job: every finished fine-tuning so far (``meta["started_at"]``, a
    `time.time`, becomes the wall time)."""
    meta = dict(meta)
    if "started_at" in meta:
        meta["wall_s"] = round(time.time() - meta.pop("started_at"), 1)
    meta["complete"] = all(o.status == "done" for o in needed)
    return write_study_report(load_records(study, runs_dir), folder, meta, notes)


def write_study_report(
    records: list[dict[str, Any]],
    report_dir: str | Path,
    meta: dict[str, Any],
    notes: list[str] | tuple[str, ...] = (),
) -> dict[str, Path]:
    """Writes ``table.md`` (``notes``, one paragraph each, at its end; key ``report``) and its
    HTML page, ``results.json`` (every record), ``table.json`` and ``accuracy.png``
    (accuracy and the paired difference to the control per delay), through
    `studies.report.write_report`."""
    table = study_table(records)
    slim = [{k: v for k, v in r.items() if k != "info"} | {"wall_s": r["info"].get("wall_s")}
            for r in records]  # fmt: skip
    header = [
        "# Speed regularisation experiment",
        "",
        f"Command: `{meta.get('command', '')}`",
        f"Commit: {meta.get('commit', 'unknown')}; machine: {meta.get('machine', '')}; "
        f"wall time {meta.get('wall_s', 'n/a')} s.",
        "",
        "Accuracy on held-out images: mean over seeds [95% t-interval]. Paired difference to "
        "control: per seed (base network), the mode's accuracy minus the control's, both "
        "fine-tuned from that network on the same trials; mean [95% t-interval] and the paired "
        "(one-sample) t-test's p per delay. q at anchors: mean "
        "over classes of ||F(h*, x_bar) - h*||^2 at the fixed anchors h* of the mode "
        "(geometric-mean ratio after/before). Slow-point q: mean over classes of the speed of "
        "the slow point found from each network's own class centre (before: the base network; "
        "after: the fine-tuned one). S: the penalty at the same anchors, its expected value "
        "over noise frames (mean over seeds).",
        "",
        *[f"* {sentence}" for sentence in DEFINITIONS],
        "",
        "",
    ]
    footer = "".join(f"\n{note}\n" for note in notes)
    figure = "\n\n![accuracy](accuracy.png)\n" if table["cells"] else "\nNo fine-tuning finished.\n"
    text = "\n".join(header) + table_markdown(table) + figure + footer
    return write_report(
        report_dir,
        markdown=("table.md", text),
        figures={"accuracy": plot_study(table, differences=True)} if table["cells"] else {},
        data={
            "results.json": {"meta": meta, "records": slim},
            "table.json": {"meta": meta, **table},
        },
        dpi=120,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m studies.regularize_study``: parse, build the plan, run it."""
    from studies.cli_options import add_executor_arguments, executor_from_args
    from studies.provenance import machine_line

    parser = argparse.ArgumentParser(
        prog="python -m studies.regularize_study", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", default="runs/regularize-study", help="run directories")
    parser.add_argument("--report", default=None, help="report folder (default: RUNS/report)")
    parser.add_argument("--cells", default="gru,lstm", help="comma-separated cells")
    parser.add_argument("--seeds", type=int, default=5, help="base networks per cell")
    parser.add_argument("--modes", default="center,slow,control", help="comma-separated modes")
    parser.add_argument("--lam", type=float, default=None, help="penalty weight (paper's)")
    parser.add_argument("--ensemble", action="store_true", help="train each cell's seeds batched")
    parser.add_argument("--eval-trials", type=int, default=1000, help="trials per delay")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_executor_arguments(parser)
    parser.add_argument(
        "--base-steps", type=int, default=None, help="base training steps (preset's default)"
    )
    parser.add_argument(
        "--finetune-steps", type=int, default=None, help="fine-tuning steps (preset's default)"
    )
    parser.add_argument(
        "--anchor-every",
        type=int,
        default=None,
        help="recompute the anchors every N fine-tuning steps (default: fixed, as in the paper)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    executor = executor_from_args(args)
    study = StudyConfig(
        cells=tuple(c for c in args.cells.split(",") if c),
        n_seeds=args.seeds,
        modes=tuple(m for m in args.modes.split(",") if m),
        lam=args.lam,
        ensemble=args.ensemble,
        eval_trials=args.eval_trials,
        device=args.device,
        train_overrides={} if args.base_steps is None else {"total_steps": args.base_steps},
        finetune_overrides={
            name: value
            for name, value in (
                ("total_steps", args.finetune_steps),
                ("recompute_every", args.anchor_every),
            )
            if value is not None
        },
    )
    meta = {
        "command": "python -m studies.regularize_study " + " ".join(argv or sys.argv[1:]),
        "commit": short_commit(),
        "machine": machine_line(args.device),
        "started_at": time.time(),
        "study": asdict(study),
    }
    runs = Path(args.runs).resolve()  # the same path for workers on other machines
    report = Path(args.report).resolve() if args.report else runs / "report"
    run_study(
        study, runs, executor=executor, progress=not args.no_progress,
        log=(lambda line: print(line, flush=True)) if args.no_progress else None,
        report=(report, meta, []),
    )  # fmt: skip
    print((report / "table.md").read_text())
    print(f"wrote {report}/: table.md, table.html, table.json, results.json, accuracy.png")
    missing = unfinished(study, runs)
    for key in missing:
        print(f"not finished (retried next time): {key}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
