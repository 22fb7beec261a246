"""Result files: ``.npz`` archives with explicit keys, no pickles.

Every archive carries ``_kind`` (the result class) and ``_format`` (its version), so that a file
is never silently read as the wrong result. Values are numpy arrays, Python numbers or strings;
scalars come back as numpy 0-d arrays (the callers convert them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from memenv.errors import UsageError

FORMAT_VERSION = 1


def save_npz(path: str | os.PathLike, kind: str, arrays: dict[str, Any]) -> None:
    """Writes ``arrays`` plus ``_kind`` / ``_format`` to ``path`` (parents created)."""
    bad = [k for k in arrays if k.startswith("_")]
    if bad:
        raise UsageError(f"keys starting with '_' are reserved: {bad}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    for key, value in payload.items():
        if value.dtype == object:
            raise UsageError(f"{key}: object arrays are not stored (no pickles)")
    with open(target, "wb") as handle:
        np.savez(handle, _kind=np.asarray(kind), _format=np.asarray(FORMAT_VERSION), **payload)


def load_npz(path: str | os.PathLike, kind: str) -> dict[str, np.ndarray]:
    """The arrays of an archive written by `save_npz` for ``kind``.

    Raises:
        ValueError: when the file holds another kind of result or a newer format.
    """
    with np.load(path, allow_pickle=False) as archive:
        found = str(archive["_kind"]) if "_kind" in archive.files else None
        if found != kind:
            raise UsageError(f"{path} holds {found!r}, not {kind!r}")
        version = int(archive["_format"])
        if version > FORMAT_VERSION:
            raise UsageError(f"{path} has format {version}; this memenv reads <= {FORMAT_VERSION}")
        return {key: archive[key] for key in archive.files if not key.startswith("_")}
