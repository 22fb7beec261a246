"""``memenv analyze RUN_DIR [RUN_DIR ...]``: the slow-point analysis of trained runs.

`memenv.cli` wires it in::

    add_analyze_arguments(subparser); return run_analyze(args)

For every run it writes, into ``RUN_DIR/analysis`` (or ``--out/<run name>`` with several runs):
``slow_points.npz``, ``centers.npz``, ``lineage.npz`` (backtracking), ``analysis.json``,
``summary.md`` and the figures (``pca.png``, ``speed_accuracy.png``,
``speed_accuracy_centres.png``, ``spectra.png``, ``lineage.png``). With several runs it also
writes the across-network speed-accuracy table and figure into ``--out``. It prints every path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from memenv.cli_args import (
    add_threads_option,
    apply_threads,
    nonnegative_float,
    nonnegative_int,
    positive_int,
)
from memenv.errors import MissingFileError, UsageError

HELP = {
    "analyze": "slow points, centres of mass and figures of a run",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv analyze``."""
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories")
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: RUN_DIR/analysis; with several runs: "
        "OUT/<run name> per run and the across-network table in OUT, default runs/analysis)",
    )
    parser.add_argument(
        "--method",
        choices=("newton", "adam"),
        default="newton",
        help="slow-point search: newton (batched Levenberg-Marquardt, seconds) or adam "
        "(the paper's, 100,000 iterations: slow); default: newton",
    )
    parser.add_argument(
        "--adam-iterations", type=positive_int, default=None, help="Adam iterations (paper: 100000)"
    )
    parser.add_argument(
        "--member", type=nonnegative_int, default=None, help="ensemble member (default 0)"
    )
    parser.add_argument(
        "--trials", type=positive_int, default=100, help="trials per class for centres"
    )
    parser.add_argument(
        "--settle-steps",
        type=positive_int,
        default=15,
        help="steps from the image to the centre state",
    )
    parser.add_argument(
        "--centers",
        choices=("task", "authors"),
        default="task",
        help="noise of the centre-of-mass trials: task (the task's own, independent per trial; "
        "default) or authors (1/3 of the std, one noise sequence shared by all trials, as the "
        "authors' BlackBoxMNIST.py)",
    )
    parser.add_argument(
        "--noise-scale",
        type=nonnegative_float,
        default=None,
        help="noise std for the centres in pixel-std units (default 1: the task's)",
    )
    parser.add_argument(
        "--extra-per-class",
        type=nonnegative_int,
        default=5,
        help="searches from single trials per class",
    )
    parser.add_argument(
        "--long-delay", type=positive_int, default=60, help="delay of the per-class accuracy"
    )
    parser.add_argument(
        "--accuracy-trials", type=positive_int, default=1000, help="trials per accuracy measurement"
    )
    parser.add_argument(
        "--no-backtrack", action="store_true", help="skip backtracking through checkpoints"
    )
    parser.add_argument(
        "--max-checkpoints", type=positive_int, default=12, help="checkpoints used for backtracking"
    )
    parser.add_argument(
        "--cell-speed",
        choices=("tanh", "raw"),
        default="tanh",
        help="LSTM cell state in the speed: tanh(c) as the paper (default), or raw c, which "
        "keeps searches from running off along saturated cell coordinates",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of trials and noise")
    parser.add_argument("--no-figures", action="store_true", help="write no figures")
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def options_from_args(args: argparse.Namespace) -> Any:
    """The `AnalysisOptions` of parsed ``memenv analyze`` arguments."""
    from analysis.centers import AUTHORS_CENTERS
    from analysis.pipeline import AnalysisOptions

    search_options: dict[str, Any] = {}
    if args.adam_iterations is not None:
        if args.method != "adam":
            raise UsageError("--adam-iterations needs --method adam")
        search_options["iterations"] = int(args.adam_iterations)
        search_options["lr_drop_at"] = int(0.4 * args.adam_iterations)
    noise = {"noise_scale": 1.0 if args.noise_scale is None else args.noise_scale}
    if args.centers == "authors":
        if args.noise_scale is not None:
            raise UsageError("--centers authors sets the noise scale (1/3); drop --noise-scale")
        noise = dict(AUTHORS_CENTERS)
    return AnalysisOptions(
        method=args.method,
        n_per_class=args.trials,
        settle_steps=args.settle_steps,
        **noise,
        extra_per_class=args.extra_per_class,
        long_delay=args.long_delay,
        accuracy_trials=args.accuracy_trials,
        backtrack=not args.no_backtrack,
        max_checkpoints=args.max_checkpoints,
        seed=args.seed,
        cell_speed=args.cell_speed,
        search_options=search_options,
    )


def run_analyze(args: argparse.Namespace) -> int:
    """Runs the analysis of every run; prints where everything went. Returns 0."""
    from analysis.plots import plot_speed_accuracy
    from analysis.speed_accuracy import from_class_tables
    from studies.run_analysis import (
        CONVERGED_MEANS,
        PREDICTED_SIGN,
        analyze_run,
        coarse_backtracking_note,
        write_analysis,
    )

    options = options_from_args(args)
    apply_threads(args.threads)
    run_dirs = [Path(d) for d in args.run_dirs]
    for run_dir in run_dirs:
        if not (run_dir / "config.json").is_file():
            raise MissingFileError(f"{run_dir} is not a run directory (no config.json)")
    several = len(run_dirs) > 1
    base_out = Path(args.out) if args.out else (Path("runs/analysis") if several else None)
    tables, names = [], []
    for run_dir in run_dirs:
        out = (base_out / run_dir.name) if several else (base_out or run_dir / "analysis")
        print(f"analysing {run_dir} ...", flush=True)
        result = analyze_run(run_dir, options, member=args.member, progress=not args.no_progress)
        written = write_analysis(result, out, figures=not args.no_figures)
        tables.append(result.table_points)
        names.append(run_dir.name)
        converged = int(result.points.converged.sum())
        print(f"  searches: {len(result.points)}, converged: {converged}"
              + ("" if converged == len(result.points) else f" ({CONVERGED_MEANS})"))  # fmt: skip
        print(f"  distinct slow points per readout label (-1 = null): {result.points_per_class()}")
        print(f"  per class speed vs accuracy at delay {options.long_delay}: "
              f"{result.table_points.correlation}; {PREDICTED_SIGN}")  # fmt: skip
        if result.lineage is not None:
            coarse = coarse_backtracking_note(result.lineage.steps.size)
            if coarse:
                print(f"  {coarse}")
        for path in written.values():
            print(f"  wrote {path}")
    if several:
        network = from_class_tables(tables, names)
        base_out.mkdir(parents=True, exist_ok=True)
        table_file = base_out / "networks_speed_accuracy.json"
        table_file.write_text(json.dumps(network.to_dict(), indent=2) + "\n")
        print(f"across networks, mean speed vs accuracy: {network.correlation}; {PREDICTED_SIGN}")
        print(f"wrote {table_file}")
        if not args.no_figures:
            figure_file = base_out / "networks_speed_accuracy.png"
            plot_speed_accuracy(network).savefig(figure_file, dpi=120)
            print(f"wrote {figure_file}")
    return 0
