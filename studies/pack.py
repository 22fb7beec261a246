"""A study's results in a few files of bounded size, to bring back from a machine that returns
only a handful of files (a lent GPU: at most 8 files of 16 MiB each).

`pack_study(out, report_dir, dest)` writes into ``dest``:

* ``report.tar.gz``: the report folder (report.md, report.html, results.json, figures) and the
  study's ``config.json``, ``wall.json`` and ``jobs.jsonl``;
* ``weights.tar.xz`` (or ``weights.tar.xz.part00``, ``.part01``, ... when it is larger than
  ``max_bytes``): every run's final ``model.pt`` (``train/<cell>-<curriculum>/model.pt``,
  exact float32, as written by `agents.train`). ``cat weights.tar.xz.part* > weights.tar.xz``
  joins the parts; `unpack_weights` does it in Python.

Nothing else is needed to rebuild the report's numbers and figures; the checkpoints of the
backtracking and the fine-tuned networks stay behind.

`copy_results(out, dest)` copies a study folder without its weights (every ``*.pt``): what a
report and a resumed study read, small enough to commit or share. The benchmark counts a run
whose ``bench.json`` is there as finished, so a study resumed from such a copy redoes only
what was not finished.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from memenv.errors import UsageError

MAX_FILE_BYTES = 16 * 2**20
"""Default size limit of one packed file."""
STUDY_FILES = ("config.json", "wall.json", "jobs.jsonl")


def pack_study(
    out: str | Path, report_dir: str | Path, dest: str | Path, *, max_bytes: int = MAX_FILE_BYTES
) -> list[Path]:
    """Packs the study in ``out`` (report in ``report_dir``) into ``dest``; returns the files.

    Raises:
        ValueError: ``report_dir`` has no report.md, ``max_bytes`` < 1 MiB, or the report
            archive alone exceeds ``max_bytes``.
    """
    out, report_dir, dest = Path(out), Path(report_dir), Path(dest)
    if max_bytes < 2**20:
        raise UsageError(f"max_bytes must be at least 1 MiB, got {max_bytes}")
    if not (report_dir / "report.md").is_file():
        raise UsageError(f"{report_dir} holds no report.md: write the report first")
    dest.mkdir(parents=True, exist_ok=True)
    report = dest / "report.tar.gz"
    with tarfile.open(report, "w:gz") as archive:
        archive.add(report_dir, arcname="report")
        for name in STUDY_FILES:
            if (out / name).is_file():
                archive.add(out / name, arcname=f"study/{name}")
    if report.stat().st_size > max_bytes:
        raise UsageError(
            f"{report} is {report.stat().st_size:,} bytes, over the {max_bytes:,}-byte limit"
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for model in sorted((out / "train").glob("*/model.pt")):
            archive.add(model, arcname=f"train/{model.parent.name}/model.pt")
    return [report, *_write_parts(buffer.getvalue(), dest / "weights.tar.xz", max_bytes)]


def copy_results(out: str | Path, dest: str | Path) -> list[Path]:
    """Copies the folder ``out`` into ``dest`` (created; files already there are replaced)
    without its weights and checkpoints (``*.pt``), its lock and its running-job markers
    (`studies.jobs`); returns the files copied."""
    from studies.jobs import LOCK_FILE, RUNNING_DIR

    out, dest = Path(out), Path(dest)
    if not out.is_dir():
        raise UsageError(f"{out} is not a folder")
    copied = []
    for source in sorted(out.rglob("*")):
        inside = source.relative_to(out).parts
        if not source.is_file() or source.suffix == ".pt" or {LOCK_FILE, RUNNING_DIR} & set(inside):
            continue
        target = dest / source.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(target)
    return copied


def _write_parts(data: bytes, path: Path, max_bytes: int) -> list[Path]:
    if len(data) <= max_bytes:
        path.write_bytes(data)
        return [path]
    parts = []
    for index, start in enumerate(range(0, len(data), max_bytes)):
        part = path.with_name(f"{path.name}.part{index:02d}")
        part.write_bytes(data[start : start + max_bytes])
        parts.append(part)
    return parts


def unpack_weights(folder: str | Path, dest: str | Path) -> list[Path]:
    """Extracts ``weights.tar.xz`` (or its parts, joined in order) from ``folder`` into
    ``dest``; returns the model files."""
    folder, dest = Path(folder), Path(dest)
    whole = folder / "weights.tar.xz"
    parts = sorted(folder.glob("weights.tar.xz.part*"))
    if not whole.is_file() and not parts:
        raise UsageError(f"{folder} holds no weights.tar.xz nor its parts")
    joined = io.BytesIO()
    for source in [whole] if whole.is_file() else parts:
        with open(source, "rb") as handle:
            shutil.copyfileobj(handle, joined)
    joined.seek(0)
    with tarfile.open(fileobj=joined, mode="r:xz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith("model.pt")]
        archive.extractall(dest, members=members, filter="data")
    return [dest / m.name for m in members]
