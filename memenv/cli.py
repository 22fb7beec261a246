"""The ``memenv`` command line: the one place that wires the layers together.

Each subcommand lives in its layer's ``commands`` module, exposing ``add_<name>_arguments``
and ``run_<name>``; they are imported only when that subcommand runs, so ``memenv --help``
stays fast and ``import memenv`` never pulls in the agents or the analysis.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("agents.commands", "train the fast preset on the embedded MNIST, evaluate, report"),
    "rollout": ("memenv.commands", "step the environment with a scripted policy and print it"),
    "train": ("agents.commands", "train a recurrent agent (presets: fast, paper)"),
    "eval": ("agents.commands", "accuracy vs delay of a trained run"),
    "analyze": ("analysis.commands", "slow points, centres of mass and figures of a run"),
    "regularize": ("analysis.regularizer_commands", "fine-tune a run with the speed regulariser"),
    "bench": ("analysis.bench_commands", "benchmark memory architectures on delayed recall"),
    "reproduce": ("analysis.reproduce_commands", "reproduce the paper's study end to end"),
}


def _available(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None and (
        importlib.util.find_spec(module) is not None
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memenv",
        description="Delayed-recall memory tasks (Haviv, Rivkind & Barak, ICML 2019).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        if not _available(module):
            continue
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module, _name=name)
        adder = getattr(importlib.import_module(module), f"add_{name}_arguments")
        adder(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runner = getattr(importlib.import_module(args._module), f"run_{args._name}")
    try:
        return int(runner(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"memenv {args._name}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
