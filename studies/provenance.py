"""Which code produced a result, and where: the one provenance helper of every study.

`provenance` is what each job records (commit, dirty state, host, machine, versions), asked
once per process: edits to the checkout made while a long study runs are not the code that
ran it. Git is asked in the package's own folder (``Path(studies.__file__).parent``), not in
the working directory, and only when that folder is at a checkout's root: an installed copy
inside some other repository (a virtual environment there, say) is not that repository's code.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

NOT_A_CHECKOUT = "not a git checkout"


def code_version(source: str | Path | None = None) -> dict[str, Any]:
    """The commit of the code that runs (of ``source``, a package folder, when given).

    Returns:
        ``{"commit": sha or None, "working_tree_modified": bool or None, "code_dir": folder}``;
        None when the code is not a git checkout (`commit_label` says so).
    """
    folder = Path(source if source is not None else Path(__file__).parent).resolve()
    info: dict[str, Any] = {"commit": None, "working_tree_modified": None, "code_dir": str(folder)}
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != folder.parent:
        return info
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    info["commit"] = _git(folder, "rev-parse", "HEAD")
    info["working_tree_modified"] = None if status is None else bool(status)
    return info


def commit_label(commit: str | None) -> str:
    """A commit as reports write it: its hash, or `NOT_A_CHECKOUT` for None."""
    return NOT_A_CHECKOUT if commit is None else commit


def short_commit(source: str | Path | None = None) -> str:
    """``abc1234`` (``+ uncommitted changes`` when tracked files differ), or the package
    version and `NOT_A_CHECKOUT`: one line for a report's header."""
    from memenv import __version__

    info = code_version(source)
    if info["commit"] is None:
        return f"memenv {__version__} ({NOT_A_CHECKOUT})"
    dirty = " (+ uncommitted changes)" if info["working_tree_modified"] else ""
    return info["commit"][:7] + dirty


def _git(folder: Path, *command: str) -> str | None:
    """Output of a git command run in ``folder``, or None (not a repository, no git)."""
    try:
        done = subprocess.run(
            ["git", *command], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


@functools.cache
def provenance() -> dict[str, Any]:
    """This process's code and machine, asked once: ``commit`` (sha or None), ``commit_label``
    (`short_commit`), ``dirty``, ``host``, ``platform``, ``cpu_count``, ``python``, ``torch``,
    ``numpy``, ``memenv`` versions and ``gpu`` (name or None)."""
    import numpy
    import torch

    from memenv import __version__

    code = code_version()
    return {
        "commit": code["commit"],
        "commit_label": short_commit(),
        "dirty": code["working_tree_modified"],
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "memenv": __version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def machine_line(device: str = "auto") -> str:
    """One line for a report: ``x86_64, cpu, torch 2.14.1, 2 CPU threads`` (the GPU's name
    when ``device`` is not ``cpu`` and one is there)."""
    import torch

    gpu = provenance()["gpu"]
    where = f"cuda: {gpu}" if device != "cpu" and gpu else "cpu"
    return (
        f"{platform.machine()}, {where}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
