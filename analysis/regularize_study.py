"""The regularisation experiment: does the speed penalty make memories last longer?

For every cell and seed, train a base network, then fine-tune it once per mode (``center``,
``slow``, ``control``) with `analysis.finetune.regularize_run`, evaluating every network on the
same held-out trials before and after. `study_table` compares the modes over seeds (mean and
95% t-interval, and the paired difference to the control), `plot_study` draws accuracy vs delay.

Run it (resumable: finished runs are read back, not redone)::

    python -m analysis.regularize_study --runs runs/regularize-study --report docs/regularize
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from analysis.finetune import DEFINITIONS, EVAL_DELAYS, finetune_preset, regularize_run
from analysis.intervals import t_interval
from analysis.provenance import short_commit
from memenv.errors import UsageError

MODES = ("center", "slow", "control")


@dataclass(frozen=True)
class StudyConfig:
    """The experiment's protocol.

    Attributes:
        cells: Recurrent cells.
        n_seeds: Base networks per cell (weights seeds ``0 .. n_seeds - 1``).
        modes: Fine-tuning modes (`analysis.regularizer.ANCHOR_MODES`).
        preset: Base training preset (`agents.preset`).
        finetune: Fine-tuning preset (`analysis.finetune.finetune_preset`).
        lam: Penalty weight (None: the paper's).
        ensemble: Train each cell's seeds as one batched ensemble (fast on a GPU; the members
            share the trial stream, their weights are independent).
        eval_delays: Delays of the before/after evaluation.
        eval_trials: Trials per delay.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        data_root: Data folder (None: ``$MEMENV_DATA`` or the embedded MNIST).
        train_overrides: Extra `agents.TrainConfig` fields of the base runs (tests shrink them).
        finetune_overrides: Extra `analysis.finetune.RegularizeConfig` fields.
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


def train_bases(study: StudyConfig, runs_dir: Path, progress: bool) -> dict[tuple[str, int], Any]:
    """Trains (or finds) the base networks: ``{(cell, seed): (run_dir, member)}``."""
    from agents.trainer import train

    sources: dict[tuple[str, int], Any] = {}
    for cell in study.cells:
        if study.ensemble:
            run_dir = runs_dir / "base" / f"{cell}-k{study.n_seeds}"
            if not (run_dir / "model.pt").is_file():
                train(_base_config(study, cell, 0, study.n_seeds), run_dir, progress=progress)
            for seed in range(study.n_seeds):
                sources[cell, seed] = (run_dir, seed)
            continue
        for seed in range(study.n_seeds):
            run_dir = runs_dir / "base" / f"{cell}-s{seed}"
            if not (run_dir / "model.pt").is_file():
                train(_base_config(study, cell, seed, 1), run_dir, progress=progress)
            sources[cell, seed] = (run_dir, None)
    return sources


def run_study(
    study: StudyConfig,
    runs_dir: str | Path,
    progress: bool = True,
    on_seed_done: Callable[[list[dict[str, Any]]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Runs (or resumes) the whole experiment; returns one record per fine-tuning.

    The jobs run seed by seed (every cell and mode of seed 0 first), so an interrupted study
    still has complete comparisons; ``on_seed_done(records so far)`` is called after each seed
    (e.g. to write an interim report); ``log`` gets one line per finished fine-tuning.
    """
    runs_dir = Path(runs_dir)
    sources = train_bases(study, runs_dir, progress)
    return finetune_sources(
        study, sources, runs_dir, progress=progress, on_seed_done=on_seed_done, log=log
    )


def member_sources(run_dir: str | Path, n_seeds: int) -> tuple[str, dict[tuple[str, int], Any]]:
    """Members ``0 .. n_seeds - 1`` of a trained ensemble run as the study's base networks:
    ``(cell, {(cell, k): (run_dir, k)})`` (what `train_bases` returns for ``ensemble=True``).

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


def finetune_sources(
    study: StudyConfig,
    sources: dict[tuple[str, int], Any],
    runs_dir: str | Path,
    *,
    progress: bool = True,
    on_seed_done: Callable[[list[dict[str, Any]]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tunes every base network ``sources[cell, seed] = (run_dir, member)`` once per mode
    of ``study`` into ``runs_dir/finetune/<cell>-s<seed>-<mode>/``; returns one record per
    fine-tuning (`analysis.finetune.RegularizeResult.to_dict` with ``cell``, ``seed``,
    ``mode``).

    The fine-tunings of one base network share its trial seed (``seed``) and its
    before-evaluation (``runs_dir/before/<cell>-s<seed>.json``), so the modes are compared
    paired. The fine-tuning preset is read for each source's data set."""
    from agents.config import TrainConfig

    runs_dir = Path(runs_dir)
    records = []
    jobs = [(cell, seed, mode) for seed in range(study.n_seeds) for cell in study.cells
            for mode in study.modes]  # fmt: skip
    bar = tqdm(jobs, desc="fine-tune", unit="run", disable=not progress)
    for cell, seed, mode in bar:
        bar.set_postfix_str(f"{cell} seed {seed} {mode}")
        source, member = sources[cell, seed]
        overrides = {
            "eval_delays": tuple(study.eval_delays), "eval_trials": study.eval_trials,
            "device": study.device, "seed": seed, "lam": study.lam,
            **study.finetune_overrides,
        }  # fmt: skip
        if mode == "control":
            overrides["lam"] = None  # the control's weight is 0 by definition
        dataset = TrainConfig.from_json(Path(source) / "config.json").dataset
        config = finetune_preset(study.finetune, dataset, mode=mode, **overrides)
        result = regularize_run(
            source, config, runs_dir / "finetune" / f"{cell}-s{seed}-{mode}", member=member,
            progress=False, figures=False,
            before_file=runs_dir / "before" / f"{cell}-s{seed}.json",
        )  # fmt: skip
        records.append({"cell": cell, "seed": seed, "mode": mode, **result.to_dict()})
        if log is not None:
            after = result.to_dict()["accuracy_after"] or {}
            log(
                f"{cell} seed {seed} {mode}: speed {_g(result.to_dict()['mean_speed_before'])} -> "
                f"{_g(result.to_dict()['mean_speed_after'])}, accuracy after "
                + ", ".join(f"d{d}={a:.3f}" for d, a in after.items())
                + f" ({result.info.get('wall_s')} s)"
            )
        if on_seed_done is not None and len(records) % (len(study.cells) * len(study.modes)) == 0:
            on_seed_done(records)
    return records


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


def write_report(
    records: list[dict[str, Any]],
    report_dir: str | Path,
    meta: dict[str, Any],
    notes: list[str] | tuple[str, ...] = (),
) -> dict[str, Path]:
    """Writes ``results.json`` (every record), ``table.json``, ``table.md`` (``notes``, one
    paragraph each, at its end) and ``accuracy.png`` (accuracy and the paired difference to the
    control per delay)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    table = study_table(records)
    paths = {
        "records": report_dir / "results.json",
        "table_json": report_dir / "table.json",
        "table": report_dir / "table.md",
        "figure": report_dir / "accuracy.png",
    }
    slim = [{k: v for k, v in r.items() if k != "info"} | {"wall_s": r["info"].get("wall_s")}
            for r in records]  # fmt: skip
    paths["records"].write_text(json.dumps({"meta": meta, "records": slim}, indent=1) + "\n")
    paths["table_json"].write_text(json.dumps({"meta": meta, **table}, indent=1) + "\n")
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
    paths["table"].write_text("\n".join(header) + table_markdown(table) + "\n" + footer)
    plot_study(table, differences=True).savefig(paths["figure"], dpi=120)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.regularize_study", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", default="runs/regularize-study", help="run directories")
    parser.add_argument("--report", default="docs/regularize", help="report folder")
    parser.add_argument("--cells", default="gru,lstm", help="comma-separated cells")
    parser.add_argument("--seeds", type=int, default=5, help="base networks per cell")
    parser.add_argument("--modes", default="center,slow,control", help="comma-separated modes")
    parser.add_argument("--lam", type=float, default=None, help="penalty weight (paper's)")
    parser.add_argument("--ensemble", action="store_true", help="train each cell's seeds batched")
    parser.add_argument("--eval-trials", type=int, default=1000, help="trials per delay")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
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
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
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
    import torch

    started = time.perf_counter()
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"

    def report(records: list[dict[str, Any]], final: bool = False) -> dict[str, Path]:
        meta = {
            "command": "python -m analysis.regularize_study " + " ".join(argv or sys.argv[1:]),
            "commit": short_commit(),
            "machine": f"{platform.machine()}, {device}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} CPU threads",
            "wall_s": round(time.perf_counter() - started, 1),
            "complete": final,
            "study": asdict(study),
        }
        return write_report(records, args.report, meta)

    records = run_study(
        study, args.runs, progress=not args.no_progress, on_seed_done=report,
        log=(lambda line: print(line, flush=True)) if args.no_progress else None,
    )  # fmt: skip
    paths = report(records, final=True)
    print(paths["table"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
