"""``memenv bench``: train several memory architectures under one protocol and compare them.

`memenv.cli` wires it in::

    add_bench_arguments(subparser); return run_bench(args)

Every (architecture, seed) trains in its own run directory ``OUT/<arch>/seed<k>`` and saves its
measurements there (`studies.bench.run_one`); finished runs are skipped, so an interrupted
benchmark continues where it stopped. A run made with other settings than the requested ones
is refused before anything trains (``--redo-mismatched`` deletes and redoes it). ``--jobs N`` runs N of them at once in separate
processes (each with ``--threads`` torch threads). The report (``bench_table.md``,
``bench_table.json``, ``accuracy_vs_delay.png``) is written into ``--report`` (default: OUT)
from the saved results once every run is done. Heavy imports happen inside `run_bench`, so
``memenv --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from memenv.cli_args import device, int_list, positive_float, positive_int
from memenv.errors import UsageError
from studies.cli_options import add_executor_arguments, executor_from_args
from studies.jobs import Job, Plan, report_job
from studies.provenance import NOT_A_CHECKOUT, code_version, commit_label
from studies.report import write_report

HELP = {
    "bench": "benchmark memory architectures on delayed recall",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""

DEFAULT_ARCHS = (
    "rnn,gru,lstm,indrnn,slstm,lru,mingru,lmu,s4d,mamba,transformer,linear-attention,"
    "framestack,memoryless"
)
AUTHORS_VARIANTS = {"gru": "authors-gru", "lstm": "authors-lstm"}
"""Built-in names ``--model-family authors`` swaps for the authors' networks."""


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv bench``."""
    parser.add_argument(
        "--archs",
        default=DEFAULT_ARCHS,
        help=f"comma-separated built-in architectures (default: {DEFAULT_ARCHS}); "
        "'' for none (with --model)",
    )
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=[],
        metavar="[NAME=]PKG.MOD:FACTORY",
        help="your own model: factory(hidden_size=..., obs_dim=...) returning an nn.Module that "
        "follows agents.RecurrentAgent (repeatable)",
    )
    parser.add_argument(
        "--model-family",
        choices=("torch", "authors"),
        default="torch",
        help="authors: the gru and lstm of --archs are the authors' networks (authors-gru, "
        "authors-lstm: their equations, initialisation, readout and loss); other architectures "
        "are unaffected (default: torch)",
    )
    parser.add_argument(
        "--seeds", type=int_list(0), default=(0, 1, 2), help="comma-separated seeds (default 0,1,2)"
    )
    parser.add_argument(
        "--preset", choices=("fast", "paper"), default="fast", help="training preset (default fast)"
    )
    parser.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    parser.add_argument("--curriculum", default="none", help="none, decu, vocu, adaptive-...")
    parser.add_argument(
        "--curriculum-scale", type=positive_float, default=1.0, help="curriculum stretch"
    )
    parser.add_argument(
        "--hidden-size", type=positive_int, default=None, help="units (default: preset's)"
    )
    parser.add_argument(
        "--steps",
        "--total-steps",
        dest="total_steps",
        metavar="STEPS",
        type=positive_int,
        default=None,
        help="training steps, as for train and regularize (default: preset's; --total-steps is "
        "the same option)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="trials per training step"
    )
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    parser.add_argument("--data-root", default=None, help="data folder (else $MEMENV_DATA)")
    parser.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--n-trials",
        type=positive_int,
        default=1000,
        help="evaluation trials per delay (default 1000)",
    )
    parser.add_argument(
        "--eval-batch-size", type=positive_int, default=100, help="evaluation trials run at once"
    )
    parser.add_argument(
        "--anchor-trials",
        type=positive_int,
        default=100,
        help="trials per class for the class centres",
    )
    parser.add_argument(
        "--out", default="runs/bench", help="folder of the run directories (default runs/bench)"
    )
    parser.add_argument("--report", default=None, help="folder of the report (default: --out)")
    add_executor_arguments(parser)
    parser.add_argument(
        "--tune",
        action="store_true",
        help="first tune each architecture's learning rate (and what it declares tunable) on a "
        "validation split carved from the training images, the same budget for all; the final "
        "runs use the chosen values (docs/bench.md)",
    )
    parser.add_argument(
        "--tune-trials", type=positive_int, default=8, help="settings tried per architecture"
    )
    parser.add_argument(
        "--tune-steps",
        type=positive_int,
        default=None,
        help="training steps of each tuning trial (default: the runs' own)",
    )
    parser.add_argument(
        "--tune-rungs",
        type=positive_int,
        default=1,
        help="successive halving: R rungs; every setting first trains --tune-steps / 2^(R-1) "
        "steps, the better half go on to twice as many, ... (default 1: no halving)",
    )
    parser.add_argument(
        "--tune-eval-trials",
        type=positive_int,
        default=300,
        help="validation trials per delay of each tuning trial (default 300)",
    )
    parser.add_argument(
        "--match-params",
        type=positive_int,
        default=None,
        metavar="N",
        help="size every architecture to about N parameters (its hidden size is chosen; "
        "plug-ins too)",
    )
    parser.add_argument(
        "--redo-mismatched",
        action="store_true",
        help="delete and redo the runs under --out made with other settings than these (by "
        "default such runs are refused, naming the differing settings)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def builtin_names(archs: str, model_family: str) -> list[str]:
    """The built-in architectures of ``--archs``; with the ``authors`` family their ``gru`` and
    ``lstm`` are the authors' networks (`AUTHORS_VARIANTS`)."""
    names = [name.strip() for name in archs.split(",") if name.strip()]
    if model_family == "authors":
        names = [AUTHORS_VARIANTS.get(name, name) for name in names]
    return names


def protocol_from_args(args: argparse.Namespace):
    """The `BenchProtocol` of parsed arguments (ValueError naming a bad value)."""
    from studies.bench import BenchProtocol

    return BenchProtocol(
        preset=args.preset, dataset=args.dataset, curriculum=args.curriculum,
        curriculum_scale=args.curriculum_scale, seeds=tuple(args.seeds),
        hidden_size=args.hidden_size, total_steps=args.total_steps, batch_size=args.batch_size,
        lr=args.lr, data_root=args.data_root, device=args.device, n_trials=args.n_trials,
        eval_batch_size=args.eval_batch_size, anchor_trials=args.anchor_trials,
    )  # fmt: skip


def run_bench(args: argparse.Namespace) -> int:
    """Runs the missing runs, then writes the report; prints what it wrote. Returns 0, or 1
    when the report is not written (runs without a result)."""
    from studies.bench import check_architectures, resolve_architectures
    from studies.jobs import folder_lock, run_plan

    protocol = protocol_from_args(args)
    archs = resolve_architectures(builtin_names(args.archs, args.model_family), args.models)
    check_architectures(archs, protocol)
    if args.match_params is not None:
        archs = matched(archs, protocol, args.match_params)
    out = Path(args.out).resolve()  # the same path for workers on other machines
    report = Path(args.report).resolve() if args.report else out
    executor = executor_from_args(args)
    invocation = {
        "command": canonical_command(args),
        "argv": shlex.join(sys.argv),
        # the code a run uses is the one imported when it starts: record the commit now
        **code_version(),
        "started_at": time.time(),
    }
    progress = not args.no_progress
    code = 1

    def came_in(outcome) -> None:
        nonlocal code
        if outcome.key == "report" and outcome.status == "done":
            code, text = outcome.value
            print(text, file=sys.stderr if code else sys.stdout)
        elif outcome.status == "done":
            print(describe_run(outcome.value), flush=True)

    with folder_lock(out):  # before any run directory is deleted
        if args.tune:
            archs = tune(archs, protocol, out, args, executor, invocation)
        study = bench_plan(
            archs,
            protocol,
            out,
            report,
            invocation,
            progress=progress and executor.name == "serial",
        )
        runs = [job for job in study.jobs if not job.always]
        redo_mismatched(archs, protocol, out, getattr(args, "redo_mismatched", False))
        todo = sum(not job.done() for job in runs)
        print(
            f"benchmark: {len(runs)} runs ({todo} to do) in {out}/, report in {report}/",
            flush=True,
        )
        run_plan(study, executor, progress=progress, on_outcome=came_in, lock=False)
    return code


def matched(archs: list[Any], protocol: Any, n_params: int) -> list[Any]:
    """Every architecture with the hidden size that gives it about ``n_params`` parameters."""
    from agents.architectures import match_hidden_size
    from studies.bench import obs_dim_of

    obs_dim = obs_dim_of(protocol.dataset)
    return [
        a.with_settings(hidden_size=match_hidden_size(a.spec, n_params, obs_dim)) for a in archs
    ]


def tune(archs, protocol, out: Path, args, executor, invocation: dict[str, Any]) -> list[Any]:
    """Runs (or resumes) the tuning jobs, writes ``OUT/tuning.json``, puts the tuning section
    into ``invocation`` for the report, and returns the tuned architectures."""
    from agents.checkpoint import write_json
    from studies.bench_tune import TuneBudget, tune_plan, tuned, tuning_markdown, tuning_results
    from studies.jobs import run_plan

    budget = TuneBudget(
        trials=args.tune_trials,
        steps=args.tune_steps or protocol.train_config(protocol.seeds[0]).total_steps,
        eval_trials=args.tune_eval_trials,
        rungs=args.tune_rungs,
    )
    print(f"tuning: {budget.trials} settings x {len(archs)} architectures", flush=True)
    run_plan(tune_plan(archs, protocol, out, budget), executor, progress=not args.no_progress,
             lock=False)  # fmt: skip
    results = tuning_results(archs, out, budget)
    write_json(out / "tuning.json", {"budget": dataclasses.asdict(budget), "results": results})
    invocation["tuning"] = tuning_markdown(results, budget)
    return tuned(archs, results)


def bench_plan(
    archs: list[Any],
    protocol: Any,
    out: Path,
    report: Path,
    invocation: dict[str, Any],
    progress: bool = False,
) -> Plan:
    """One job per (architecture, seed), seed-major (every architecture's first seed comes
    early, and run in parallel the long runs of one architecture do not all queue at the
    end), then the report."""
    from studies.bench import is_finished, run_dir_of, run_one

    code = {k: invocation[k] for k in ("commit", "working_tree_modified", "code_dir")}
    jobs = [
        Job(
            f"bench {arch.name} seed {seed}",
            "train",
            partial(run_one, arch, seed, protocol, out, progress=progress, meta=code),
            partial(is_finished, run_dir_of(out, arch, seed)),
            gpu=protocol.device != "cpu",
        )  # fmt: skip
        for seed in protocol.seeds
        for arch in archs
    ]
    jobs.append(
        report_job(partial(write_bench_report, archs, protocol, out, report, invocation), jobs)
    )
    return Plan("bench", out, tuple(jobs))


def redo_mismatched(archs, protocol, out: Path, redo: bool) -> None:
    """Refuses (UsageError naming the run directories and the differing settings) the runs
    under ``out`` made with other settings than ``protocol``, before anything trains; with
    ``redo``, deletes them instead (they are then redone) and says so."""
    from studies.bench import describe_mismatch, mismatch_message, run_dir_of, run_mismatch

    mismatched = []
    for seed in protocol.seeds:
        for arch in archs:
            differences = run_mismatch(out, arch, seed, protocol)
            if differences:
                mismatched.append((run_dir_of(out, arch, seed), differences))
    if not mismatched:
        return
    if not redo:
        raise UsageError(
            mismatch_message(
                mismatched,
                "pass --redo-mismatched to delete and redo them, or choose another --out",
            )
        )
    for run_dir, _ in mismatched:
        shutil.rmtree(run_dir)
    runs = "1 run" if len(mismatched) == 1 else f"{len(mismatched)} runs"
    print(
        f"--redo-mismatched: deleted {runs} made with another protocol, to redo with the "
        f"requested one: {describe_mismatch(mismatched)}",
        flush=True,
    )


def describe_run(result) -> str:
    """One line on a finished run: its time and its accuracy at the shortest and longest
    delay (or why it has none)."""
    if result.status != "done":
        return f"  {result.arch} seed {result.seed}: {result.status} ({result.error})"
    evaluation = result.evaluation
    accuracy = dict(zip(evaluation["delays"], evaluation["accuracy"][0], strict=True))
    longest = max(accuracy)
    return (
        f"  {result.arch} seed {result.seed}: trained in {result.train_s:.0f} s, accuracy "
        f"{accuracy[min(accuracy)]:.3f} at delay {min(accuracy)}, {accuracy[longest]:.3f} at "
        f"{longest}"
    )


def write_bench_report(
    archs, protocol, out: Path, report: Path, invocation: dict[str, Any], needed=()
) -> tuple[int, str]:
    """Writes the table (markdown, JSON) and the figure from the runs saved under ``out``
    (the report job). Returns ``(0, the table and the files written)``, or ``(1, why not)``
    when some runs have no result yet."""
    from studies.bench import load_results
    from studies.bench_report import aggregate, plot_bench

    results, missing = load_results(out, archs, protocol.seeds, protocol)
    if missing:
        return 1, f"not written: {len(missing)} runs have no result yet: {missing}"
    table = aggregate(results, protocol.table_delays(), protocol.trained_delays,
                      order=[a.name for a in archs])  # fmt: skip
    table.meta = run_metadata(invocation, protocol, time.time() - invocation["started_at"], results)
    paths = write_report(
        report,
        markdown=("bench_table.md", _markdown_report(table, protocol)),
        figures={"accuracy_vs_delay": plot_bench(table)},
        data={"bench_table.json": table.to_dict()},
        dpi=120,
    )
    return 0, "\n".join([table.markdown(), *(f"wrote {path}" for path in paths.values())])


def canonical_command(args: argparse.Namespace) -> str:
    """``memenv bench`` with every option this run used, spelled out."""
    parts = ["memenv", "bench", "--archs", args.archs]
    for spec in args.models:
        parts += ["--model", spec]
    options = ("model_family", "seeds", "preset", "dataset", "curriculum", "curriculum_scale", "hidden_size",
               "total_steps", "batch_size", "lr", "data_root", "device", "n_trials",
               "eval_batch_size", "anchor_trials", "out", "report", "jobs", "threads",
               "match_params")  # fmt: skip
    spelled = {"total_steps": "--steps"}
    for name in options:
        value = getattr(args, name)
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        if value is not None:
            parts += [spelled.get(name, f"--{name.replace('_', '-')}"), str(value)]
    if args.tune:
        parts += ["--tune", "--tune-trials", str(args.tune_trials)]
        parts += ["--tune-steps", str(args.tune_steps)] if args.tune_steps else []
        parts += ["--tune-rungs", str(args.tune_rungs)] if args.tune_rungs > 1 else []
        parts += ["--tune-eval-trials", str(args.tune_eval_trials)]
    return shlex.join(parts)


def _run_commit(result) -> str:
    return commit_label(result.meta["commit"]) if "commit" in result.meta else "not recorded"


def run_metadata(invocation: dict[str, Any], protocol, wall_s: float, results) -> dict[str, Any]:
    """Command, commits, machine and timings of this benchmark (recorded with the table).

    ``invocation``: the command, argv and the commit (and whether tracked files differed from
    it) when this invocation started (`code_version`); ``run_commits`` lists the commits every run's code came from (runs
    of earlier, interrupted invocations may differ). ``settings``: the train config (seed
    aside) and evaluation settings shared by the results the table is made of
    (`studies.bench.shared_settings`): the report's protocol line states them.
    """
    import torch

    from studies.bench import shared_settings

    return {
        "command": invocation["command"],
        "argv": invocation["argv"],
        "tuning": invocation.get("tuning"),
        **{k: invocation[k] for k in ("commit", "working_tree_modified", "code_dir")},
        "run_commits": sorted({_run_commit(r) for r in results}),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads_per_run": sorted(
                {r.meta.get("torch_threads") for r in results if r.meta.get("torch_threads")}
            ),
        },  # fmt: skip
        "wall_s_this_invocation": round(wall_s, 1),
        "train_s_total": round(sum(r.train_s for r in results), 1),
        "eval_s_total": round(sum(r.eval_s for r in results), 1),
        "protocol": protocol.to_dict(),
        "settings": shared_settings(results),
        "data_source": (results[0].evaluation or {}).get("meta", {}).get("data_source")
        if results
        else None,
    }


def _markdown_report(table, protocol) -> str:
    meta = table.meta
    config = meta["settings"]  # what the results used (all equal to the requested protocol)
    machine = meta["machine"]
    low, high = table.trained_delays
    code = (
        f"commit `{meta['commit']}`" if meta["commit"] else f"{NOT_A_CHECKOUT} ({meta['code_dir']})"
    )
    seeds = sorted({seed for row in table.rows for seed in row.seeds + row.diverged})
    lines = [
        "# memenv bench",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Code: {code} when this invocation started"
        + (", with uncommitted changes" if meta["working_tree_modified"] else "")
        + f" (runs' commits: {', '.join(meta['run_commits'])}); {meta['date']}; "
        f"{machine['platform']}, {machine['cpu_count']} CPUs, torch {machine['torch']}, "
        f"{machine['torch_threads_per_run']} thread(s) per run.",
        "",
        f"Protocol: preset `{protocol.preset}` ({config.get('hidden_size')} units, "
        f"{config.get('total_steps')} steps, batch {config.get('batch_size')}, Adam lr "
        f"{config.get('lr')}, lr / 10 at step {config.get('lr_decay_step')}), "
        f"{config.get('dataset')} ({meta['data_source']}), curriculum "
        f"`{config.get('curriculum')}`, seeds {seeds}; trained delays {low}..{high}. "
        f"Evaluation: {config.get('n_trials')} held-out trials per delay, image at t = 0. "
        "Accuracy: mean ± 95% t-interval half-width over seeds. Slowest anchor q: median over "
        "seeds of the minimum over classes of the speed at the class centre of mass. Every "
        "run of the table was made with these settings (checked).",
        "",
        f"Wall time: {meta['wall_s_this_invocation'] / 60:.1f} min for this invocation; training "
        f"{meta['train_s_total'] / 60:.1f} min and evaluation {meta['eval_s_total'] / 60:.1f} min "
        "summed over runs.",
        "",
        table.markdown(),
        "",
        "![accuracy vs delay](accuracy_vs_delay.png)",
        "",
    ]
    if meta.get("tuning"):
        lines += [meta["tuning"]]
    return "\n".join(lines)
