"""Command-line options shared by the studies: where their jobs run (``--jobs``,
``--ray-address``, ``--threads``)."""

from __future__ import annotations

import argparse
from typing import Any

from memenv.cli_args import positive_int


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--ray-address`` and ``--threads``."""
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="jobs at once: above 1, on a local Ray instance started for the run with this "
        "many CPUs (pip install 'memenv[ray]'); default 1, one after the other in this process",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="run the jobs on a running Ray cluster ('auto' or HOST:PORT; the output folder "
        "must be storage every node sees); the cluster's resources set how many run at once",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads per job (on Ray also the CPUs each job asks for; default: "
        "torch's run serially, 1 on Ray)",
    )


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor of parsed `add_executor_arguments` options. Serially, ``--threads`` is
    applied to this process now."""
    from memenv.cli_args import apply_threads
    from studies.executors import make_executor

    if args.jobs == 1 and args.ray_address is None:
        apply_threads(args.threads)
        return make_executor()
    return make_executor(args.jobs, args.ray_address, args.threads)
