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

_TRAIN_OPTIONS = {
    # option: (TrainConfig field, type, help)
    "--dataset": ("dataset", str, "mnist, fashion-mnist or cifar10"),
    "--cell": ("cell", str, "gru, lstm or rnn"),
    "--hidden-size": ("hidden_size", int, "units of the cell"),
    "--curriculum": ("curriculum", str, "none, vocu, decu, adaptive-vocu, adaptive-decu"),
    "--curriculum-scale": ("curriculum_scale", float, "stretch of the curriculum's steps"),
    "--steps": ("total_steps", int, "optimizer steps"),
    "--lr": ("lr", float, "Adam learning rate"),
    "--batch-size": ("batch_size", int, "trials per step per network"),
    "--seed": ("seed", int, "seed (weights: seed + member; trials)"),
    "--members": ("n_members", int, "independent networks trained as one batched ensemble"),
    "--checkpoint-every": ("checkpoint_every", int, "steps between kept checkpoints"),
    "--log-every": ("log_every", int, "steps between metrics.jsonl lines"),
    "--device": ("device", str, "auto, cpu or cuda"),
    "--data-root": ("data_root", str, "folder with the data files (else $MEMENV_DATA)"),
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv train``."""
    parser.add_argument(
        "--preset",
        choices=("fast", "paper"),
        default="fast",
        help="hyperparameters: 'fast' (CPU, minutes) or 'paper' (PAPER.md exactly); default: fast",
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
    _add_threads(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; 1 is often faster on a busy shared CPU)",
    )


def _set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


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
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in names:
            raise ValueError(f"--set: unknown TrainConfig field {key!r}")
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
                    raise ValueError(f"expected true/false, got {text!r}")
                return text.lower() in ("true", "1")
            try:
                return kind(text)
            except ValueError:
                continue
    raise ValueError(f"cannot read {text!r} as {annotation}")


def default_run_dir(config) -> Path:
    """``runs/<dataset>-<cell><units>-<curriculum>-s<seed>[-k<members>]-<steps>``."""
    name = (
        f"{config.dataset}-{config.cell}{config.hidden_size}-{config.curriculum}"
        f"-s{config.seed}"
        + (f"-k{config.n_members}" if config.n_members > 1 else "")
        + f"-{config.total_steps}"
    )
    return Path("runs") / name


def run_train(args: argparse.Namespace) -> int:
    """``memenv train``: trains (or resumes) a run and prints where it wrote it."""
    try:
        config = train_config_from_args(args)
    except ValueError as error:
        print(f"memenv train: {error}", file=sys.stderr)
        return 2
    from agents.checkpoint import list_checkpoints
    from agents.trainer import NonFiniteLossError, train

    _set_threads(args)
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
    except ValueError as error:
        print(f"memenv train: {error}", file=sys.stderr)
        return 2
    kept = list_checkpoints(run_dir)
    metrics = result.last_metrics or {}
    print(f"data: {result.data_source}")
    print(f"wrote {run_dir}/")
    print("  config.json, run.json, metrics.jsonl")
    print(f"  checkpoints/ ({len(kept)} kept, steps {kept[0][0]}..{kept[-1][0]})")
    print(f"  model.pt (final weights, step {result.step})")
    if metrics:
        print(
            f"last interval: loss {metrics['loss']}, training-batch accuracy {metrics['accuracy']}"
        )
    print(f"evaluate with: memenv eval {run_dir}")
    return 0


def _describe(config) -> str:
    return (
        f"{config.cell.upper()}-{config.hidden_size} on {config.dataset}, curriculum "
        f"{config.curriculum}, {config.total_steps} steps, batch {config.batch_size}, "
        f"lr {config.lr:g}, seed {config.seed}"
        + (f", {config.n_members} members" if config.n_members > 1 else "")
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memenv eval``."""
    parser.add_argument("path", help="run directory or checkpoint file")
    parser.add_argument("--member", type=int, default=None, help="ensemble member (default: all)")
    parser.add_argument("--split", default="test", choices=("train", "test"), help="image split")
    parser.add_argument(
        "--delays",
        default=None,
        help="comma-separated delays (default: 4..2000, log-spaced)",
    )
    parser.add_argument("--n-trials", type=int, default=1000, help="trials (used at every delay)")
    parser.add_argument("--batch-size", type=int, default=500, help="trials run at once")
    parser.add_argument(
        "--t-stim",
        default="0",
        help="stimulus step of every trial, or 'random' (as in training); default 0",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation trials")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--data-root", default=None, help="data folder (else the run's)")
    parser.add_argument(
        "--out", default=None, help="output folder (default: <run dir>/eval, or beside the file)"
    )
    _add_threads(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_eval(args: argparse.Namespace) -> int:
    """``memenv eval``: accuracy vs delay on held-out images; writes JSON, PNG, markdown."""
    try:
        delays = _parse_delays(args.delays)
        t_stim = None if str(args.t_stim).lower() == "random" else int(args.t_stim)
    except ValueError as error:
        print(f"memenv eval: {error}", file=sys.stderr)
        return 2
    from agents.evaluate import DEFAULT_DELAYS
    from agents.report import evaluate_run, write_evaluation

    _set_threads(args)
    path = Path(args.path)
    try:
        evaluation = evaluate_run(
            path, member=args.member, split=args.split, delays=delays or DEFAULT_DELAYS,
            n_trials=args.n_trials, batch_size=args.batch_size, t_stim=t_stim, seed=args.seed,
            device=args.device, data_root=args.data_root, progress=not args.no_progress,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, IndexError) as error:
        print(f"memenv eval: {error}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (path / "eval" if path.is_dir() else path.parent)
    name = "delay_accuracy" if args.member is None else f"delay_accuracy_member{args.member}"
    paths = write_evaluation(evaluation, out, name=name)
    print(paths["summary"].read_text())
    print(
        f"wrote {paths['json']} (result), {paths['figure']} (figure), {paths['summary']} (summary)"
    )
    return 0


def _parse_delays(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        delays = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"--delays must be comma-separated integers, got {text!r}") from error
    if not delays or min(delays) < 1:
        raise ValueError(f"--delays must be positive integers, got {text!r}")
    return delays


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo (train `fast` on MNIST, evaluate, figure, summary)."""
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument(
        "--cells", default="gru", help="comma-separated cells to train (default: gru)"
    )
    parser.add_argument("--n-trials", type=int, default=500, help="evaluation trials")
    _add_threads(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_demo(args: argparse.Namespace) -> int:
    """Runs `agents.demo.demo` with the options of `add_demo_arguments`."""
    from agents.demo import demo

    _set_threads(args)
    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    try:
        demo(args.out, cells=cells, n_trials=args.n_trials, progress=not args.no_progress)
    except ValueError as error:
        print(f"memenv demo: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.commands {train,eval,demo} ...`` (the same as ``memenv train`` etc.)."""
    parser = argparse.ArgumentParser(prog="python -m agents.commands")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train", help="train or resume a run"))
    add_eval_arguments(sub.add_parser("eval", help="accuracy vs delay of a trained run"))
    add_demo_arguments(sub.add_parser("demo", help="train fast, evaluate, figure, summary"))
    args = parser.parse_args(argv)
    return {"train": run_train, "eval": run_eval, "demo": run_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
