"""Run directories, atomic checkpoints and loading trained models.

A run directory (written by `agents.train`)::

    config.json                  the TrainConfig (TrainConfig.from_json reads it back)
    run.json                     data source, model spec, device, versions, status, timings
    metrics.jsonl                one JSON object per log interval
    checkpoints/step_000000.pt   weights at step 0, then every checkpoint_every steps (all kept)
    resume.pt                    full training state at the latest checkpoint (optimizer,
                                 generator and schedule states): what a resumed run starts from
    model.pt                     the final weights

Every file is written to a temporary name in the same folder, flushed to disk and moved into
place with ``os.replace``, so a run killed at any moment leaves either the old or the new file,
never a torn one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "memenv-agents/1"
CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.pt"
FINAL_FILE = "model.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def atomic_write_bytes(path: Path, write) -> None:
    """Calls ``write(stream)`` on a temporary file next to ``path``, then moves it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` made atomic."""
    atomic_write_bytes(path, lambda stream: torch.save(obj, stream))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda stream: stream.write(text.encode()))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:06d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The kept checkpoints of a run, ``[(step, path), ...]`` in increasing step order."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _STEP_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def weights_record(model: nn.Module, step: int, config: dict | None) -> dict[str, Any]:
    """What a checkpoint / ``model.pt`` holds: enough to rebuild the model without its code."""
    from agents.ensemble import EnsembleModel
    from agents.models import RecurrentModel

    if isinstance(model, EnsembleModel):
        spec, n_members = model.model_spec, model.n_members
    elif isinstance(model, RecurrentModel):
        spec, n_members = model.spec(), 1
    else:
        spec, n_members = None, 1  # a user model: load it with load_state(path, model)
    return {
        "format": FORMAT,
        "step": int(step),
        "spec": spec,
        "n_members": n_members,
        "train_config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def _read(path: Path) -> dict[str, Any]:
    record = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a memenv agents checkpoint ({FORMAT})")
    return record


def resolve_model_file(path: str | Path) -> Path:
    """A run directory means its ``model.pt``, else its latest checkpoint; a file is itself."""
    path = Path(path)
    if path.is_dir():
        if (path / FINAL_FILE).is_file():
            return path / FINAL_FILE
        kept = list_checkpoints(path)
        if not kept:
            raise FileNotFoundError(f"{path} holds neither {FINAL_FILE} nor checkpoints")
        return kept[-1][1]
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load_model(path: str | Path, member: int | None = None, device: str | torch.device = "cpu"):
    """Loads a trained reference model.

    Args:
        path: A run directory (its ``model.pt``, else its latest checkpoint), a checkpoint
            file or a ``model.pt``.
        member: For ensembles, the member to export as a single `RecurrentModel`; None returns
            the whole `EnsembleModel` (or the single model of a one-member run).
        device: Where to put it.

    Returns:
        A `RecurrentModel` or `EnsembleModel` in eval mode.
    """
    from agents.ensemble import EnsembleModel
    from agents.models import model_from_spec

    file = resolve_model_file(path)
    record = _read(file)
    if record["spec"] is None:
        raise ValueError(
            f"{file} holds a user-defined model; build it and use load_state({file!s}, model)"
        )
    n_members = int(record["n_members"])
    template = model_from_spec(record["spec"])
    if n_members > 1 or any(k == "weight_ih" for k in record["state_dict"]):
        model = EnsembleModel([template] * n_members)
        model.load_state_dict(record["state_dict"])
        if member is not None:
            model = model.member(member)
    else:
        if member not in (None, 0):
            raise IndexError(f"{file} holds one model; member {member} does not exist")
        model = template
        model.load_state_dict(record["state_dict"])
    return model.to(device).eval()


def load_state(path: str | Path, model: nn.Module) -> int:
    """Loads a checkpoint's weights into ``model`` (any architecture); returns its step."""
    record = _read(resolve_model_file(path))
    model.load_state_dict(record["state_dict"])
    return int(record["step"])


def checkpoint_step(path: str | Path) -> int:
    """The training step a checkpoint file was written at."""
    return int(_read(resolve_model_file(path))["step"])
