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

import io
import json
import os
import pickle
import re
import socket
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memenv.errors import CorruptFileError, MissingFileError, UnsafeFileError, UsageError

FORMAT = "memenv-agents/1"
CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.pt"
FINAL_FILE = "model.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def atomic_write_bytes(path: Path, write) -> None:
    """Calls ``write(stream)`` on a temporary file next to ``path``, then moves it into place.

    The temporary file is named after this process and machine (`temporary_path`), so that
    `remove_stale_temporaries` can tell a dead writer's leftovers from a live writer's file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as error:  # name the file the caller asked for, not the temporary one
        raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` made atomic.

    The object is serialised in memory first, so that a full disk surfaces as the operating
    system's ``OSError`` (ENOSPC, naming the file) rather than as torch's zip-writer error.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, lambda stream: stream.write(buffer.getbuffer()))


_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"
# .<name>.<pid>@<host>.tmp; files of older versions lack "@<host>"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9_-]+))?\.tmp$")


def temporary_path(path: Path) -> Path:
    """Where this process writes ``path`` before moving it into place."""
    return path.with_name(f".{path.name}.{os.getpid()}@{_HOST}.tmp")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Deletes the temporary files that writers on this machine left when they were killed.

    A file is stale when the process named in it no longer runs; files of other machines (a
    run directory on a shared disk) and of live processes are left alone.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or match["host"] not in (None, _HOST):
            continue
        if not _process_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda stream: stream.write(text.encode()))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file of a run directory; a damaged one is a CorruptFileError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(f"{path} is not valid JSON ({error}); it is damaged") from None


def read_jsonl(path: str | Path) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped); a damaged line names the file."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise CorruptFileError(f"{path}, line {number}: not valid JSON ({error})") from None
    return records


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
    """What a checkpoint / ``model.pt`` holds: enough to rebuild the model without its code.

    ``spec`` is one network's ``spec()`` (with its ``family``), ``n_members`` the number of
    stacked networks; None for a user model."""
    from agents.authors import AuthorsModel
    from agents.ensemble import is_ensemble
    from agents.models import RecurrentModel

    if is_ensemble(model):
        spec, n_members = model.model_spec, model.n_members
    elif isinstance(model, RecurrentModel | AuthorsModel):
        spec, n_members = model.spec(), 1
    else:
        spec, n_members = None, 1  # rebuilt from "architecture", else load_state(path, model)
    return {
        "format": FORMAT,
        "step": int(step),
        "spec": spec,
        "architecture": getattr(model, "memenv_architecture", None),
        "n_members": n_members,
        "train_config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


# What torch.load raises on a file that is not a whole PyTorch zip archive varies with where
# the damage is; each of these has been seen on truncated, empty or random files.
_UNREADABLE = (
    RuntimeError,
    EOFError,
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    OverflowError,
    struct.error,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
)
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def refused_object(error: pickle.UnpicklingError) -> str:
    """What ``torch.load(weights_only=True)`` refused, from its message (e.g. ``posix.system``)."""
    found = _UNSUPPORTED_GLOBAL.search(str(error))
    return found.group(1) if found else "objects other than tensors and plain containers"


def load_tensor_file(path: str | Path) -> Any:
    """``torch.load`` of a file that must not run code: tensors and plain containers only.

    Raises:
        MissingFileError: ``path`` does not exist.
        UnsafeFileError: the file holds other objects; loading them could run code they carry.
        CorruptFileError: the file is empty, truncated or not a PyTorch file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no file at {path}")
    with open(path, "rb") as stream:
        magic = stream.read(4)
    if magic != b"PK\x03\x04":
        what = "empty" if not magic else "not a PyTorch file (no zip header)"
        raise CorruptFileError(f"{path} is {what}: it is damaged; delete it or copy it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            what = refused_object(error)
            raise UnsafeFileError(
                f"refused to load {path}: it holds {what}, and loading it could run code the file "
                "carries. memenv writes only tensors and plain containers; do not use a file "
                "from a source you do not trust"
            ) from None
        raise CorruptFileError(f"{path} is damaged ({error}); delete it or copy it again") from None
    except OSError as error:
        if error.filename is not None:  # the file could not be read (permissions, I/O)
            raise
        first_line = str(error)  # torch's seek on a cut-off archive
        raise CorruptFileError(
            f"{path} is truncated or damaged ({first_line}); delete it or copy it again"
        ) from None
    except _UNREADABLE as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        first_line = text.split(". ")[0]  # torch appends paragraphs of advice
        raise CorruptFileError(
            f"{path} is truncated or damaged ({first_line}); delete it or copy it again"
        ) from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's record, its fields checked."""
    record = load_tensor_file(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CorruptFileError(f"{path} is not a memenv agents checkpoint ({FORMAT})")
    state = record.get("state_dict")
    problems = []
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        problems.append("state_dict is not a mapping of names to tensors")
    if not (record.get("spec") is None or isinstance(record.get("spec"), dict)):
        problems.append(f"spec is {type(record.get('spec')).__name__}, not a dict")
    for key, minimum in (("n_members", 1), ("step", 0)):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problems.append(f"{key} = {value!r} is not an integer >= {minimum}")
    if problems:
        raise CorruptFileError(f"{path} is a damaged checkpoint: {'; '.join(problems)}")
    return record


def resolve_model_file(path: str | Path) -> Path:
    """A run directory means its ``model.pt``, else its latest checkpoint; a file is itself."""
    path = Path(path)
    if path.is_dir():
        if (path / FINAL_FILE).is_file():
            return path / FINAL_FILE
        kept = list_checkpoints(path)
        if not kept:
            raise MissingFileError(f"{path} holds neither {FINAL_FILE} nor checkpoints")
        return kept[-1][1]
    if not path.is_file():
        raise MissingFileError(f"no checkpoint at {path}")
    return path


def load_model(path: str | Path, member: int | None = None, device: str | torch.device = "cpu"):
    """Loads a trained reference model.

    Args:
        path: A run directory (its ``model.pt``, else its latest checkpoint), a checkpoint
            file or a ``model.pt``.
        member: For ensembles, the member to export as a single model; None returns the whole
            ensemble (or the single model of a one-member run).
        device: Where to put it.

    Returns:
        In eval mode, of the family the checkpoint's spec names (``torch`` when it names none):
        a `RecurrentModel` or `EnsembleModel`, or an `AuthorsModel` or `AuthorsEnsemble`.
    """
    file = resolve_model_file(path)
    return model_from_record(read_checkpoint(file), file, member).to(device).eval()


def model_from_record(record: dict[str, Any], file: Path, member: int | None = None) -> nn.Module:
    """The model a checkpoint record (`read_checkpoint` of ``file``) holds; see `load_model`
    (this is it without reading the file, for callers that need the record too)."""
    from agents.ensemble import stack_members
    from agents.models import model_from_spec

    if record["spec"] is None:
        return _load_architecture(file, record, member)
    n_members = record["n_members"]
    try:
        template = model_from_spec(record["spec"])
    except (UsageError, KeyError, TypeError) as error:
        raise CorruptFileError(f"{file}: its model spec is damaged ({error})") from None
    ensemble = n_members > 1 or not _fits(template, record["state_dict"])
    if ensemble:  # a one-member ensemble's tensors carry a member axis: they fit no single model
        model = stack_members([template] * n_members)
    elif member not in (None, 0):
        raise UsageError(f"{file} holds one model; member {member} does not exist (use 0)")
    else:
        model = template
    _load_weights(model, record["state_dict"], file)
    if ensemble and member is not None:
        model = model.member(member)
    return model


def _fits(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` has exactly ``model``'s tensor names and shapes."""
    own = model.state_dict()
    return own.keys() == state_dict.keys() and all(
        own[name].shape == state_dict[name].shape for name in own
    )


def _load_architecture(file: Path, record: dict[str, Any], member: int | None) -> nn.Module:
    """A model that `agents.architectures.build_architecture` made (a bench built-in or a
    plug-in ``package.module:factory``), rebuilt from the ``architecture`` its file records."""
    from agents.architectures import build_architecture

    arch = record.get("architecture")
    if not isinstance(arch, dict) or not {"spec", "hidden_size", "obs_dim"} <= set(arch):
        raise UsageError(
            f"{file} holds a user-defined model and does not say how to build it (runs made "
            f"before memenv recorded it); build it and use load_state({str(file)!r}, model)"
        )
    if member not in (None, 0):
        raise UsageError(f"{file} holds one model; member {member} does not exist (use 0)")
    try:
        model = build_architecture(
            arch["spec"], arch["hidden_size"], arch["obs_dim"], options=arch.get("options")
        )
    except UsageError as error:
        raise UsageError(
            f"{file} holds a model built by {arch['spec']!r}, which cannot be rebuilt here: "
            f"{error}. Put the folder of its module on PYTHONPATH"
        ) from None
    _load_weights(model, record["state_dict"], file)
    return model


def _load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], file: Path) -> None:
    """Weights into ``model``; a file whose tensors do not fit, or are not finite, is refused."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:  # torch reports missing keys and size mismatches so
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise CorruptFileError(
            f"{file}: its weights do not fit the model it describes ({'; '.join(lines[1:3])})"
        ) from None
    bad = [name for name, tensor in state_dict.items() if not torch.isfinite(tensor).all()]
    if bad:
        raise CorruptFileError(
            f"{file}: weights {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} hold NaN or "
            "infinite values; the file is damaged or the run diverged, so it cannot be evaluated"
        )


def load_state(path: str | Path, model: nn.Module) -> int:
    """Loads a checkpoint's weights into ``model`` (any architecture); returns its step."""
    file = resolve_model_file(path)
    record = read_checkpoint(file)
    _load_weights(model, record["state_dict"], file)
    return record["step"]


def checkpoint_step(path: str | Path) -> int:
    """The training step a checkpoint file was written at."""
    return int(read_checkpoint(resolve_model_file(path))["step"])
