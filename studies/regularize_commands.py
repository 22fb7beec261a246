"""``memenv regularize``: speed-regularised fine-tuning of a run, or training with the penalty.

`memenv.cli` wires it in::

    add_regularize_arguments(subparser); return run_regularize(args)

Forms::

    memenv regularize RUN_DIR [--modes center,control] [--preset fast|paper] [--member K] [--out DIR]
    memenv regularize RUN_DIR --seeds N [--modes center,control] [--preset fast|paper] [--out DIR]
    memenv regularize NEW_RUN_DIR --from-scratch [--mode center] [--cell gru] [--anchor-every 250]

The first fine-tunes one network once per mode, by default the paper's ``center`` anchors and
their ``control`` (lambda = 0), on the same trials, and reports the paired difference
(`studies.finetune.regularize_modes`; a single mode, ``--mode X``, writes one run directory,
`studies.finetune.regularize_run`). The second fine-tunes members ``0 .. N-1`` of an ensemble
run and tests the difference over them (`studies.regularize_study`, the code of the
reproduction's regularisation stage). RUN_DIR is never modified.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from memenv.cli_args import (
    apply_threads,
    device,
    name_list,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from memenv.errors import MissingFileError, UsageError
from studies.cli_options import add_executor_arguments, executor_from_args

HELP = {
    "regularize": "fine-tune a run with the speed regulariser",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""

MODE_NAMES = ("center", "slow", "control")
LONG_DELAY_MIN = 100
"""``--seeds``: delays from this one on enter the long-delay test (as `memenv reproduce`'s fast
preset); the longest evaluated delay when none is that long."""


def add_regularize_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv regularize``."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="trained run to fine-tune (with --from-scratch: the new run directory)",
    )
    parser.add_argument(
        "--modes",
        type=name_list(MODE_NAMES),
        default=None,
        metavar="MODE[,MODE...]",
        help="comma-separated anchor modes, each fine-tuned from the same source on the same "
        "trials: center (class centres of mass, the paper's choice), slow (slow points), "
        "control (lambda = 0); default: center,control (--from-scratch: center)",
    )
    parser.add_argument(
        "--mode",
        choices=MODE_NAMES,
        default=None,
        help="a single mode (the same as --modes MODE): no control is run",
    )
    parser.add_argument(
        "--preset",
        choices=("fast", "paper"),
        default="fast",
        help="fine-tuning settings: fast: 1,000 steps, lr 1e-4 (for fast-preset runs, "
        "memenv train's default); paper: 5,000 steps, lr 1e-5 (CIFAR-10 1e-4), for "
        "paper-preset runs; default: fast",
    )
    parser.add_argument(
        "--lam", type=nonnegative_float, default=None, help="penalty weight (paper's default)"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=None, help="learning rate (preset's default)"
    )
    parser.add_argument("--steps", type=positive_int, default=None, help="steps (preset's default)")
    parser.add_argument(
        "--noise-draws", type=positive_int, default=None, help="noise frames per anchor (paper: 10)"
    )
    parser.add_argument(
        "--anchor-every",
        type=positive_int,
        default=None,
        help="recompute the anchors every N steps (default: fixed anchors, as in the paper; "
        "--from-scratch: 250)",
    )
    parser.add_argument(
        "--member",
        type=nonnegative_int,
        default=None,
        metavar="K",
        help="ensemble member to fine-tune (an ensemble run needs --member or --seeds)",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        metavar="N",
        help="fine-tune members 0..N-1 of an ensemble run (N >= 2) in every mode and test the "
        "difference to the control over them (mean [95%% CI], paired t-test per delay)",
    )
    parser.add_argument(
        "--seed",
        type=nonnegative_int,
        default=None,
        help="seed of the fine-tuning trials, the same for every mode (default 0; with "
        "--seeds, member k uses seed k)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default RUN_DIR-regularize, RUN_DIR-m<K>-regularize for a member; "
        "a single --mode: RUN_DIR-<mode>)",
    )
    parser.add_argument(
        "--eval-trials", type=positive_int, default=1000, help="trials per delay for before/after"
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    parser.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="train a new network with the penalty instead (fast preset; see --cell)",
    )
    parser.add_argument("--cell", default=None, help="--from-scratch: gru, lstm or rnn")
    parser.add_argument(
        "--hidden-size", type=positive_int, default=None, help="--from-scratch: units"
    )
    parser.add_argument(
        "--data-root", default=None, help="--from-scratch: data folder (else $MEMENV_DATA)"
    )
    add_executor_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _modes(args: argparse.Namespace) -> tuple[str, ...]:
    if args.mode is not None and args.modes is not None:
        raise UsageError(
            f"give --mode or --modes, not both (got --mode {args.mode} and --modes "
            f"{','.join(args.modes)})"
        )
    if args.mode is not None:
        return (args.mode,)
    if args.modes is not None:
        return tuple(dict.fromkeys(args.modes))
    return ("center",) if args.from_scratch else ("center", "control")


def run_regularize(args: argparse.Namespace) -> int:
    """Runs one of the forms and prints what it found and wrote."""
    modes = _modes(args)
    apply_threads(args.threads)
    if args.from_scratch:
        return _from_scratch(args, modes)
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise MissingFileError(f"{run_dir} is not a run directory (no config.json)")
    if args.seeds is not None:
        return _seeds(args, run_dir, modes)
    from agents.config import TrainConfig
    from studies.finetune import finetune_preset, regularize_modes, regularize_run

    source = TrainConfig.from_json(run_dir / "config.json")
    _check_member(run_dir, source.n_members, args.member)
    dataset = source.dataset
    overrides = {
        # an anchor mode carries --lam; `regularize_modes` gives the control lambda = 0
        "mode": next((m for m in modes if m != "control"), modes[0]),
        "lam": args.lam,
        "seed": 0 if args.seed is None else args.seed,
        "eval_trials": args.eval_trials,
        "evaluate": not args.no_eval,
        "device": args.device,
        "recompute_every": args.anchor_every,
        **_finetune_overrides(args),
    }
    config = finetune_preset(args.preset, dataset, **overrides)
    progress = not args.no_progress
    if len(modes) == 1:
        result = regularize_run(run_dir, config, args.out, member=args.member, progress=progress)
        print((result.out_dir / "summary.md").read_text())
        print(f"wrote {result.out_dir}/ (the source {run_dir} is unchanged)")
        print("  regularize.json (summary), anchors.npz, summary.md, model.pt, metrics.jsonl")
        if result.accuracy_before is not None:
            print("  accuracy_before.json, accuracy_after.json, accuracy_before_after.png")
        if modes[0] != "control":
            print(
                "note: no control was run; before -> after includes what fine-tuning alone "
                "does. Run without --mode (modes center,control) for the paired difference."
            )
        return 0
    comparison = regularize_modes(
        run_dir, config, modes, args.out, member=args.member, progress=progress
    )
    out = comparison.out_dir
    print((out / "summary.md").read_text())
    print(f"wrote {out}/ (the source {run_dir} is unchanged)")
    print(
        "  summary.md, comparison.json, accuracy_before.json"
        + (", accuracy.png" if comparison.delays else "")
    )
    for mode in comparison.results:
        print(f"  {mode}/: the {mode} fine-tuning (a run directory with its own summary.md)")
    return 0


def _check_member(run_dir: Path, n_members: int, member: int | None) -> None:
    if n_members > 1 and member is None:
        raise UsageError(
            f"{run_dir} is an ensemble of {n_members} members: fine-tune one with --member K, "
            f"or members 0..N-1 with --seeds N (a test over them)"
        )
    if member is not None and member >= n_members:
        what = "a single network" if n_members == 1 else f"{n_members} members"
        raise UsageError(f"--member must be < {n_members} ({run_dir} has {what}), got {member}")


def _finetune_overrides(args: argparse.Namespace) -> dict[str, Any]:
    options = (("lr", "lr"), ("steps", "total_steps"), ("noise_draws", "n_noise"))
    return {name: getattr(args, o) for o, name in options if getattr(args, o) is not None}


def _seeds(args: argparse.Namespace, run_dir: Path, modes: tuple[str, ...]) -> int:
    """``--seeds N``: members 0..N-1 of an ensemble, every mode, tested over the members."""
    for given, option in (
        (args.member is not None, "--member"),
        (args.seed is not None, "--seed"),
        (args.no_eval, "--no-eval"),
    ):
        if given:
            raise UsageError(
                f"--seeds {args.seeds} fine-tunes members 0..{args.seeds - 1} (member k with "
                f"trial seed k) and compares their accuracies; it takes no {option}"
            )
    if args.seeds < 2:
        raise UsageError(
            f"--seeds must be >= 2 (a test needs at least two networks), got {args.seeds}; "
            "for one network leave --seeds out"
        )
    from studies.finetune import default_out_dir
    from studies.provenance import machine_line, short_commit
    from studies.regularize_study import (
        StudyConfig,
        member_sources,
        run_study,
        unfinished,
        write_study_report,
    )

    cell, sources = member_sources(run_dir, args.seeds)
    finetune_overrides = _finetune_overrides(args)
    if args.anchor_every is not None:
        finetune_overrides["recompute_every"] = args.anchor_every
    study = StudyConfig(
        cells=(cell,), n_seeds=args.seeds, modes=modes, finetune=args.preset, lam=args.lam,
        eval_trials=args.eval_trials, device=args.device, finetune_overrides=finetune_overrides,
    )  # fmt: skip
    out = Path(args.out) if args.out else default_out_dir(run_dir, "regularize")
    started = time.perf_counter()
    records = run_study(
        study, out, sources, executor=executor_from_args(args), progress=not args.no_progress,
        log=(lambda line: print(line, flush=True)) if args.no_progress else None,
    )  # fmt: skip
    command = (
        f"memenv regularize {run_dir} --seeds {args.seeds} --modes {','.join(modes)} "
        f"--preset {args.preset}"
        + "".join(
            f" --{o.replace('_', '-')} {getattr(args, o)}"
            for o in ("lam", "lr", "steps", "noise_draws", "anchor_every")
            if getattr(args, o) is not None
        )
    )
    meta = {
        "command": command,
        "commit": short_commit(),
        "machine": machine_line(args.device),
        "wall_s": round(time.perf_counter() - started, 1),
        "source": str(run_dir),
        "members": list(range(args.seeds)),
        "study": {"modes": list(modes), "preset": args.preset, "lam": args.lam,
                  "eval_trials": args.eval_trials, "finetune_overrides": finetune_overrides},
    }  # fmt: skip
    notes = [
        f"Base networks: members 0..{args.seeds - 1} of `{run_dir}`; member k was fine-tuned in "
        "every mode with trial seed k, so its modes saw the same trials and are compared "
        "paired.",
        *long_delay_notes(records, cell),
    ]
    paths = write_study_report(records, out, meta, notes=notes)
    print(paths["report"].read_text())
    missing = unfinished(study, out, sources)
    for key in missing:
        print(f"not finished (retried next time): {key}", file=sys.stderr)
    print(f"wrote {out}/ (the source {run_dir} is unchanged)")
    print("  table.md, table.html, table.json, results.json (every fine-tuning), accuracy.png")
    print(f"  finetune/{cell}-s<k>-<mode>/: one run directory per member and mode")
    return 1 if missing else 0


def long_delay_notes(records: list[dict[str, Any]], cell: str) -> list[str]:
    """The long-delay test of ``memenv reproduce`` (`analysis.claims.claim_regularization`) on
    these records, as report lines; none without both ``center`` and ``control``. Here it is
    the only claim tested, a family of one."""
    from analysis.claims import claim_regularization, finalize

    modes = {r["mode"] for r in records}
    if not {"center", "control"} <= modes:
        return []
    delays = sorted({int(d) for r in records for d in (r.get("accuracy_after") or {})})
    if not delays:
        return []
    long_min = LONG_DELAY_MIN if delays[-1] >= LONG_DELAY_MIN else delays[-1]
    row = finalize([claim_regularization(records, cell, long_min)], "on these networks")[0]
    effect = (
        ""
        if row.reason
        else f"{row.statistic}: {row.effect.interval()}, p {row.effect.p_value:.3g}; "
    )
    return [
        f"Long-delay test (the same as `memenv reproduce`'s regularisation claim): {effect}"
        f"{row.numbers}; {row.test}. Verdict: **{row.verdict_text()}** (supported: center "
        "above the control with p < 0.05)."
    ]


def _from_scratch(args: argparse.Namespace, modes: tuple[str, ...]) -> int:
    from agents.config import preset
    from agents.trainer import NonFiniteLossError
    from studies.finetune import train_with_speed_penalty

    if len(modes) != 1:
        raise UsageError(f"--from-scratch trains one network: give one mode, got {','.join(modes)}")
    if args.seeds is not None or args.member is not None:
        raise UsageError("--from-scratch trains a new network: it takes no --seeds or --member")
    mode = modes[0]
    overrides = {"seed": 0 if args.seed is None else args.seed, "device": args.device}
    if args.cell:
        overrides["cell"] = args.cell
    if args.hidden_size:
        overrides["hidden_size"] = args.hidden_size
    if args.steps:
        overrides["total_steps"] = args.steps
    if args.lr:
        overrides["lr"] = args.lr
    if args.data_root:
        overrides["data_root"] = args.data_root
    config = preset("fast", **overrides)
    try:
        result = train_with_speed_penalty(
            config, args.run_dir, mode=mode, lam=args.lam,
            recompute_every=args.anchor_every or 250,
            n_noise=args.noise_draws or 10, progress=not args.no_progress,
        )  # fmt: skip
    except NonFiniteLossError as error:
        print(f"memenv regularize: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.run_dir}/ ({result.step} steps with the speed penalty, mode {mode})")
    print("  penalty.json, config.json, metrics.jsonl (column 'penalty'), model.pt")
    print(f"evaluate with: memenv eval {result.run_dir}")
    return 0
