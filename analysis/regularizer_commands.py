"""``memenv regularize``: speed-regularised fine-tuning of a run, or training with the penalty.

`memenv.cli` wires it in::

    add_regularize_arguments(subparser); return run_regularize(args)

Two forms::

    memenv regularize RUN_DIR --mode center|slow|control [--preset paper|fast] [--out DIR]
    memenv regularize --from-scratch NEW_RUN_DIR --mode center [--cell gru] [--anchor-every 250]

The first never modifies RUN_DIR: it writes a new run directory (default ``RUN_DIR-<mode>``)
and evaluates accuracy vs delay before and after (`analysis.finetune.regularize_run`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memenv.cli_args import (
    add_threads_option,
    apply_threads,
    device,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from memenv.errors import MissingFileError


def add_regularize_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv regularize``."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="trained run to fine-tune (with --from-scratch: the new run directory)",
    )
    parser.add_argument(
        "--mode",
        required=True,
        choices=("center", "slow", "control"),
        help="anchors: class centres of mass (paper's choice), slow points, or control "
        "(lambda = 0)",
    )
    parser.add_argument(
        "--preset",
        choices=("paper", "fast"),
        default="paper",
        help="paper: 5,000 steps, lr 1e-5 (CIFAR-10 1e-4); fast: 1,000 steps, lr 1e-4 "
        "(for fast-preset runs); default: paper",
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
        "--member", type=nonnegative_int, default=None, help="ensemble member to fine-tune"
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the fine-tuning trials"
    )
    parser.add_argument("--out", default=None, help="new run directory (default RUN_DIR-<mode>)")
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
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_regularize(args: argparse.Namespace) -> int:
    """Runs one of the two forms and prints what it wrote."""
    apply_threads(args.threads)
    if args.from_scratch:
        return _from_scratch(args)
    from agents.config import TrainConfig
    from analysis.finetune import finetune_preset, regularize_run

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise MissingFileError(f"{run_dir} is not a run directory (no config.json)")
    dataset = TrainConfig.from_json(run_dir / "config.json").dataset
    overrides = {
        "mode": args.mode,
        "lam": args.lam,
        "seed": args.seed,
        "eval_trials": args.eval_trials,
        "evaluate": not args.no_eval,
        "device": args.device,
        "recompute_every": args.anchor_every,
    }
    for option, name in (("lr", "lr"), ("steps", "total_steps"), ("noise_draws", "n_noise")):
        if getattr(args, option) is not None:
            overrides[name] = getattr(args, option)
    config = finetune_preset(args.preset, dataset, **overrides)
    result = regularize_run(
        run_dir, config, args.out, member=args.member, progress=not args.no_progress
    )
    print((result.out_dir / "summary.md").read_text())
    print(f"wrote {result.out_dir}/ (the source {run_dir} is unchanged)")
    print("  regularize.json (summary), anchors.npz, summary.md, model.pt, metrics.jsonl")
    if result.accuracy_before is not None:
        print("  accuracy_before.json, accuracy_after.json, accuracy_before_after.png")
    return 0


def _from_scratch(args: argparse.Namespace) -> int:
    from agents.config import preset
    from agents.trainer import NonFiniteLossError
    from analysis.finetune import train_with_speed_penalty

    overrides = {"seed": args.seed, "device": args.device}
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
            config, args.run_dir, mode=args.mode, lam=args.lam,
            recompute_every=args.anchor_every or 250,
            n_noise=args.noise_draws or 10, progress=not args.no_progress,
        )  # fmt: skip
    except NonFiniteLossError as error:
        print(f"memenv regularize: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.run_dir}/ ({result.step} steps with the speed penalty, mode {args.mode})")
    print("  penalty.json, config.json, metrics.jsonl (column 'penalty'), model.pt")
    print(f"evaluate with: memenv eval {result.run_dir}")
    return 0
