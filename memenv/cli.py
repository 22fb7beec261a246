"""The ``memenv`` command line: the one place that wires the layers together.

Subcommands are found through the ``memenv.commands`` entry points (pyproject.toml), so this
module names no upper layer: ``train = "agents.commands"`` says that ``memenv train`` lives in
``agents.commands``, which exposes ``add_train_arguments``, ``run_train`` and a one-line
``HELP["train"]``. A package installed next to memenv adds a subcommand the same way. The
command modules import torch only when their subcommand runs, so ``memenv --help`` stays fast
and ``import memenv`` never pulls in the agents or the analysis.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from memenv.errors import MemenvError

ENTRY_POINTS = "memenv.commands"
ORDER = ("demo", "rollout", "train", "eval", "analyze", "regularize", "bench", "reproduce")
"""Where the built-in subcommands come in ``--help`` (the order of a study); others follow,
sorted by name."""


def subcommands() -> dict[str, str]:
    """``{subcommand: module}`` of the installed ``memenv.commands`` entry points."""
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}
    if not found:
        raise MemenvError(
            "no memenv subcommands are installed (no 'memenv.commands' entry points): install "
            "memenv with pip (pip install -e . in a checkout)"
        )
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memenv",
        description="Delayed-recall memory tasks (Haviv, Rivkind & Barak, ICML 2019).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in subcommands().items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise
            continue  # an entry point left by an uninstalled package
        help_text = module.HELP[name]
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module_name, _name=name)
        getattr(module, f"add_{name}_arguments")(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except MemenvError as error:
        print(f"memenv: error: {error}", file=sys.stderr)
        return 2
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
