"""Command-line front ends: ``memenv train``, ``memenv eval`` and the demo.

`memenv.cli` wires these in::

    add_train_arguments(subparser); return run_train(args)
    add_eval_arguments(subparser);  return run_eval(args)
    add_demo_arguments(subparser);  return run_demo(args)

Heavy imports (torch, the trainer) happen inside the ``run_*`` functions. Each command prints
what it wrote and where. Exit codes: 0 success, 1 training diverged (non-finite loss),
2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from memenv.cli_args import (
    add_threads_option,
    apply_threads,
    device,
    int_list,
    name_list,
    nonnegative_int,
    positive_float,
    positive_int,
)
from memenv.errors import UsageError

HELP = {
    "demo": "train the fast preset on the embedded MNIST, evaluate, report",
    "train": "train a recurrent agent (presets: fast, paper)",
    "eval": "accuracy vs delay of a trained run",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""

MODEL_FAMILIES = ("authors", "torch")
"""`agents.protocol.MODEL_FAMILIES`, repeated here so that ``memenv --help`` needs no torch."""


def _model_family(text: str) -> str:
    """``authors`` or ``torch`` (argparse refuses anything else while parsing)."""
    if text not in MODEL_FAMILIES:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(MODEL_FAMILIES)}, got {text!r}"
        )
    return text


_model_family.__name__ = "model family"

_TRAIN_OPTIONS = {
    # option: (TrainConfig field, type, help)
    "--dataset": ("dataset", str, "mnist, fashion-mnist or cifar10"),
    "--model-family": (
        "model_family",
        _model_family,
        "authors (the authors' GRU/LSTM, sigmoid readout and loss; paper preset on MNIST) or "
        "torch (PyTorch's cells; fast preset, CIFAR-10)",
    ),
    "--cell": ("cell", str, "gru, lstm or rnn (rnn: torch family only)"),
    "--hidden-size": ("hidden_size", positive_int, "units of the cell"),
    "--curriculum": ("curriculum", str, "none, vocu, decu, recu, adaptive-vocu, adaptive-decu"),
    "--curriculum-scale": ("curriculum_scale", positive_float, "stretch of the curriculum's steps"),
    "--steps": ("total_steps", positive_int, "optimizer steps"),
    "--lr": ("lr", positive_float, "Adam learning rate"),
    "--batch-size": ("batch_size", positive_int, "trials per step per network"),
    "--seed": ("seed", nonnegative_int, "seed (weights: seed + member; trials)"),
    "--members": (
        "n_members",
        positive_int,
        "independent networks trained as one batched ensemble",
    ),
    "--checkpoint-every": ("checkpoint_every", positive_int, "steps between kept checkpoints"),
    "--log-every": ("log_every", positive_int, "steps between metrics.jsonl lines"),
    "--device": ("device", device, "auto, cpu or cuda"),
    "--data-root": ("data_root", str, "folder with the data files (else $MEMENV_DATA)"),
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv train``."""
    parser.add_argument(
        "--preset",
        choices=("fast", "paper"),
        default="fast",
        help="hyperparameters: 'fast' (CPU, minutes) or 'paper' (the authors', docs/paper.md); default: fast",
    )
    parser.add_argument("--run-dir", default=None, help="run directory (default: runs/<name>)")
    for option, (field, kind, text) in _TRAIN_OPTIONS.items():
        parser.add_argument(option, dest=field, type=kind, default=None, help=text)
    parser.add_argument(
        "--download", action="store_true", default=None, help="let torchvision download data"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other TrainConfig field (repeatable), e.g. --set lr_decay_step=none",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="refuse to resume: fail if the run directory already holds a run",
    )
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_config_from_args(args: argparse.Namespace):
    """The `TrainConfig` an ``args`` namespace of `add_train_arguments` describes."""
    from agents.config import TrainConfig, preset

    overrides: dict[str, Any] = {}
    for field, _, _ in _TRAIN_OPTIONS.values():
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "download", None):
        overrides["download"] = True
    types = typing.get_type_hints(TrainConfig)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for item in args.overrides:
        if "=" not in item:
            raise UsageError(f"--set takes FIELD=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in names:
            raise UsageError(f"--set: unknown TrainConfig field {key!r}")
        overrides[key] = _parse_value(text.strip(), types[key])
    dataset = overrides.pop("dataset", "mnist")
    return preset(args.preset, dataset=dataset, **overrides)


def _parse_value(text: str, annotation: Any) -> Any:
    if text.lower() in ("none", "null"):
        return None
    kinds = typing.get_args(annotation) or (annotation,)
    for kind in (bool, int, float, str):
        if kind in kinds:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise UsageError(f"expected true/false, got {text!r}")
                return text.lower() in ("true", "1")
            try:
                return kind(text)
            except ValueError:
                continue
    raise UsageError(f"cannot read {text!r} as {annotation}")


def default_run_dir(config) -> Path:
    """``runs/<dataset>[-authors]-<cell><units>-<curriculum>-s<seed>[-k<members>]-<steps>``."""
    family = "-authors" if config.model_family == "authors" else ""
    name = (
        f"{config.dataset}{family}-{config.cell}{config.hidden_size}-{config.curriculum}"
        f"-s{config.seed}"
        + (f"-k{config.n_members}" if config.n_members > 1 else "")
        + f"-{config.total_steps}"
    )
    return Path("runs") / name


def run_train(args: argparse.Namespace) -> int:
    """``memenv train``: trains (or resumes) a run and prints where it wrote it."""
    config = train_config_from_args(args)
    from agents.checkpoint import list_checkpoints
    from agents.trainer import NonFiniteLossError, train

    apply_threads(args.threads)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
    resuming = (run_dir / "resume.pt").is_file() and not args.restart
    print(f"{'resuming' if resuming else 'training'} {run_dir} ({_describe(config)})")
    try:
        result = train(
            config, run_dir, resume=False if args.restart else "auto",
            progress=not args.no_progress,
        )  # fmt: skip
    except NonFiniteLossError as error:
        print(f"memenv train: {error}", file=sys.stderr)
        return 1
    kept = list_checkpoints(run_dir)
    metrics = result.last_metrics or {}
    print(f"data: {result.data_source}")
    print(f"wrote {run_dir}/")
    print("  config.json, run.json, metrics.jsonl")
    print(f"  checkpoints/ ({len(kept)} kept, steps {kept[0][0]}..{kept[-1][0]})")
    print(f"  model.pt (final weights, step {result.step})")
    if result.steps_run:
        print(
            f"this call: {result.steps_run} steps in {result.seconds:.1f} s "
            f"({result.steps_per_second:.1f} steps/s, checkpoints included)"
        )
    if metrics:
        print(
            f"last interval: loss {_rounded(metrics['loss'], 4)}, training-batch accuracy "
            f"{_rounded(metrics['accuracy'], 3)}"
        )
    print(f"evaluate with: memenv eval {run_dir}")
    return 0


def _rounded(value: float | list[float], digits: int) -> str:
    """A metric (or an ensemble's per-member list) with ``digits`` decimals."""
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.{digits}f}" for v in value) + "] (per member)"
    return f"{value:.{digits}f}"


def _describe(config) -> str:
    family = "the authors' " if config.model_family == "authors" else ""
    return (
        f"{family}{config.cell.upper()}-{config.hidden_size} on {config.dataset}, curriculum "
        f"{config.curriculum}, {config.total_steps} steps, batch {config.batch_size}, "
        f"lr {config.lr:g}, seed {config.seed}"
        + (f", {config.n_members} members" if config.n_members > 1 else "")
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv eval``."""
    parser.add_argument("path", help="run directory or checkpoint file")
    parser.add_argument(
        "--member", type=nonnegative_int, default=None, help="ensemble member (default: all)"
    )
    parser.add_argument("--split", default="test", choices=("train", "test"), help="image split")
    parser.add_argument(
        "--delays",
        type=int_list(1),
        default=None,
        help="comma-separated delays (default: 4..2000, log-spaced)",
    )
    parser.add_argument(
        "--n-trials", type=positive_int, default=1000, help="trials (used at every delay)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=500, help="trials run at once")
    parser.add_argument(
        "--t-stim",
        type=_t_stim,
        default=0,
        help="stimulus step of every trial, or 'random' (as in training); default 0",
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the evaluation trials"
    )
    parser.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--data-root", default=None, help="data folder (else the run's)")
    parser.add_argument(
        "--out", default=None, help="output folder (default: <run dir>/eval, or beside the file)"
    )
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _t_stim(text: str) -> int | None:
    """``random`` (None: drawn as in training) or a step >= 0."""
    return None if text.strip().lower() == "random" else nonnegative_int(text)


def run_eval(args: argparse.Namespace) -> int:
    """``memenv eval``: accuracy vs delay on held-out images; writes JSON, PNG, markdown."""
    from agents.evaluate import DEFAULT_DELAYS
    from agents.report import evaluate_run, write_evaluation

    apply_threads(args.threads)
    path = Path(args.path)
    evaluation = evaluate_run(
        path, member=args.member, split=args.split, delays=args.delays or DEFAULT_DELAYS,
        n_trials=args.n_trials, batch_size=args.batch_size, t_stim=args.t_stim, seed=args.seed,
        device=args.device, data_root=args.data_root, progress=not args.no_progress,
    )  # fmt: skip
    out = Path(args.out) if args.out else (path / "eval" if path.is_dir() else path.parent)
    name = "delay_accuracy" if args.member is None else f"delay_accuracy_member{args.member}"
    paths = write_evaluation(evaluation, out, name=name)
    print(paths["summary"].read_text())
    print(
        f"wrote {paths['json']} (result), {paths['figure']} (figure), {paths['summary']} (summary)"
    )
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo (train `fast` on MNIST, evaluate, figure, summary)."""
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument(
        "--cells",
        type=name_list(),
        default=("gru",),
        help="comma-separated cells to train: gru, lstm, rnn (default: gru)",
    )
    parser.add_argument("--n-trials", type=positive_int, default=500, help="evaluation trials")
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_demo(args: argparse.Namespace) -> int:
    """Runs `agents.demo.demo` with the options of `add_demo_arguments`."""
    from agents.demo import demo

    apply_threads(args.threads)
    demo(args.out, cells=args.cells, n_trials=args.n_trials, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    from memenv.cli import main

    sys.exit(main(sys.argv[1:]))
