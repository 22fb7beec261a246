"""The ``memenv`` command line: the one place that wires the layers together.

Each subcommand lives in its layer's ``commands`` module, exposing ``add_<name>_arguments``
and ``run_<name>``; they are imported only when that subcommand runs, so ``memenv --help``
stays fast and ``import memenv`` never pulls in the agents or the analysis.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

from memenv.errors import MemenvError

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
    return run_guarded(args._name, runner, args)


def run_guarded(name: str, runner: Callable[[argparse.Namespace], int | None], args) -> int:
    """Runs one subcommand inside the error boundary of the command line.

    Anticipated failures become one line on stderr, ``memenv NAME: error: ...``, and exit
    status 2: a `MemenvError` (bad value, missing, corrupt or unsafe file) or an `OSError` on a
    named file (unwritable, full or missing location). Ctrl-C exits 130 with a word on resuming.
    Anything else is a bug in memenv and keeps its traceback.
    """
    try:
        return int(runner(args) or 0)
    except MemenvError as error:
        print(f"memenv {name}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:
            raise
        print(f"memenv {name}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"memenv {name}: interrupted; run the same command again to resume where it stopped",
            file=sys.stderr,
        )
        return 130


def describe_os_error(error: OSError) -> str:
    """One line naming the file, what went wrong and what to do about it."""
    where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    reason = error.strerror or type(error).__name__
    advice = _OS_ADVICE.get(error.errno, "")
    return f"{where}: {reason}" + (f"; {advice}" if advice else "")


_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space or choose another output location; a stopped "
    "run resumes from its last checkpoint",
    errno.EDQUOT: "the disk quota is used up: free space or choose another output location",
    errno.EROFS: "the file system is read-only: choose another output location",
    errno.EACCES: "permission denied: choose a location you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a location you can write to",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "this is a folder where a file was expected",
    errno.EEXIST: "a file of that name is in the way: remove it or choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


if __name__ == "__main__":
    sys.exit(main())
