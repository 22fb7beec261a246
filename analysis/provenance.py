"""Which code produced a result: the git commit of the checkout memenv runs from.

Git is asked in the package's own folder (``Path(analysis.__file__).parent``), not in the
working directory, and only when that folder is the ``analysis`` folder at a checkout's root:
an installed copy inside some other repository (a virtual environment there, say) is not that
repository's code. Reports, bench tables and study summaries all record it this way.
"""

from __future__ import annotations

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
