"""``memenv reproduce``: the paper's whole study, resumable, ending in one report.

`memenv.cli` wires it in::

    add_reproduce_arguments(subparser); return run_reproduce(args)

Heavy imports happen inside `run_reproduce`, so ``memenv --help`` does not import torch. Bad
values raise ValueError naming the value (the CLI prints ``memenv reproduce: error: ...`` and
exits with status 2).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from memenv.cli_args import device, positive_int
from memenv.errors import UsageError
from studies.cli_options import add_executor_arguments, executor_from_args

HELP = {
    "reproduce": "reproduce the paper's study end to end",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv reproduce``."""
    parser.add_argument(
        "--preset",
        default="fast",
        help="fast (CPU, 5 seeds), paper (the authors' protocol, 10 seeds), demo (a few minutes on 2 cores), "
        "tiny (seconds; for tests) (default fast)",
    )
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or cifar10")
    parser.add_argument(
        "--seeds", type=positive_int, default=None, help="networks per (cell, curriculum)"
    )
    parser.add_argument(
        "--cells", default=None, help="comma-separated cells (default gru,lstm; demo: gru)"
    )
    parser.add_argument("--curricula", default="none,vocu,decu", help="comma-separated curricula")
    parser.add_argument("--out", default=None, help="study folder (runs/reproduce-PRESET-DATASET)")
    parser.add_argument("--report", default=None, help="report folder (default OUT/report)")
    parser.add_argument("--no-regularize", action="store_true", help="skip the regularisation")
    parser.add_argument(
        "--reg-modes", default=None, help="fine-tuning modes (default center,slow,control)"
    )
    parser.add_argument(
        "--reg-curricula",
        default=None,
        help="runs to fine-tune (default decu,vocu,none: the authors' two, then no curriculum)",
    )
    parser.add_argument(
        "--search-iterations",
        type=positive_int,
        default=None,
        help="Levenberg-Marquardt iterations per slow-point search, the speed budget "
        "(default 50; may change until the first analysis finished)",
    )
    parser.add_argument(
        "--backtrack-iterations",
        type=positive_int,
        default=None,
        help="the same for the backtracking searches (default: --search-iterations)",
    )
    parser.add_argument(
        "--reg-seeds",
        type=positive_int,
        default=None,
        help="fine-tune only the first N members of each run (default: all)",
    )
    parser.add_argument("--data-root", default=None, help="data folder ($MEMENV_DATA)")
    parser.add_argument(
        "--model-family",
        choices=("torch", "authors"),
        default=None,
        help="networks: authors (their equations, initialisation, readout and loss) or torch "
        "(PyTorch's cells); default: the preset's (paper on MNIST: authors; others: torch)",
    )
    parser.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    add_executor_arguments(parser)
    parser.add_argument(
        "--stop-after", default=None, help="stop after this stage (train, evaluate, analyze, ...)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run no job: write the report from the results the study folder holds",
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the report's protocol section (repeatable), e.g. what was left out",
    )
    parser.add_argument(
        "--pack",
        default=None,
        help="after the report, pack it and the final weights into this folder as files of "
        "at most 16 MiB (report.tar.gz, weights.tar.xz[.partNN])",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and a time estimate from a short measured warm-up; run nothing",
    )


def _names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError(f"{option} needs at least one name, got {text!r}")
    return names


def config_from_args(args: argparse.Namespace):
    """The `studies.reproduce.ReproduceConfig` of the command line (ValueError if bad)."""
    from studies.reproduce import ReproduceConfig

    return ReproduceConfig(
        preset=args.preset,
        dataset=args.dataset,
        cells=None if args.cells is None else _names(args.cells, "--cells"),
        curricula=_names(args.curricula, "--curricula"),
        n_seeds=args.seeds,
        regularize=not args.no_regularize,
        search_iterations=args.search_iterations,
        backtrack_iterations=args.backtrack_iterations,
        reg_seeds=args.reg_seeds,
        **{
            name: _names(value, option)
            for name, value, option in (
                ("reg_modes", args.reg_modes, "--reg-modes"),
                ("reg_curricula", args.reg_curricula, "--reg-curricula"),
            )
            if value is not None
        },
        model_family=args.model_family,
        device=args.device,
        data_root=args.data_root,
    )


def canonical_command(config, out: Path) -> str:
    """The command line that reruns (or resumes) this study, every protocol option explicit."""
    parts = [
        "memenv reproduce", f"--preset {config.preset}", f"--dataset {config.dataset}",
        f"--seeds {config.n_seeds}", f"--cells {','.join(config.cells)}",
        f"--curricula {','.join(config.curricula)}", f"--out {shlex.quote(str(out))}",
    ]  # fmt: skip
    family = config.train_config(config.cells[0], "none").model_family
    parts.append(f"--model-family {family}")
    if not config.regularize:
        parts.append("--no-regularize")
    else:
        parts.append(f"--reg-modes {','.join(config.reg_modes)}")
        parts.append(f"--reg-curricula {','.join(config.reg_curricula)}")
    for name in ("search_iterations", "backtrack_iterations", "reg_seeds"):
        if getattr(config, name) is not None:
            parts.append(f"--{name.replace('_', '-')} {getattr(config, name)}")
    return " ".join(parts)


def run_reproduce(args: argparse.Namespace) -> int:
    """Runs (or resumes) the study and prints where everything went."""
    config = config_from_args(args)
    from studies.reproduce import run_reproduce as run

    # resolved: workers on other machines must see the same path
    out = Path(args.out or f"runs/reproduce-{config.preset}-{config.dataset}").resolve()
    if args.dry_run:
        from studies.reproduce_estimate import estimate_study, plan_text

        print(plan_text(config, estimate_study(config, out, jobs=args.jobs), args.jobs))
        return 0
    command = canonical_command(config, out)
    progress = not args.no_progress
    executor = executor_from_args(args)
    result = run(
        config, out, report_dir=args.report, progress=progress, stop_after=args.stop_after,
        meta={"command": command, "notes": list(args.note)}, log=None if progress else (lambda line: print(line, flush=True)),
        executor=executor, report_only=args.report_only,
    )  # fmt: skip
    print(f"study folder: {result['out_dir']}")
    for job, error in result["failures"]:
        print(f"not finished (retried next time): {job}: {error}")
    if result["paths"]:
        print(f"report: {result['paths']['report']}")
        for name, path in result["paths"].items():
            if name != "report":
                print(f"  {name}: {path}")
        if args.pack:
            from studies.pack import pack_study

            packed = pack_study(out, result["report_dir"], args.pack)
            print(f"packed: {', '.join(f'{p} ({p.stat().st_size:,} bytes)' for p in packed)}")
    else:
        print(f"stopped after stage {args.stop_after!r}; rerun to continue")
    return 1 if result["failures"] else 0
