"""Shared fixtures: small data files in the real on-disk formats, an isolated cache, one torch
thread, and class centres for tiny networks."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from memenv import data


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own converted-array cache and a fresh in-memory cache."""
    monkeypatch.setenv("MEMENV_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("MEMENV_DATA", raising=False)
    data._load_cached.cache_clear()
    yield
    data._load_cached.cache_clear()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as stream:
            stream.write(raw)
    else:
        path.write_bytes(raw)
    return path


def make_idx_dataset(folder: Path, per_class: dict[str, int], seed: int = 0) -> None:
    """Writes train/test IDX files with ``per_class[split]`` images per class (class k's images
    have every pixel equal to 20 * k + a small random offset, so tests can tell classes apart)."""
    rng = np.random.default_rng(seed)
    names = {"train": "train", "test": "t10k"}
    for split, n in per_class.items():
        labels = np.repeat(np.arange(10), n)
        rng.shuffle(labels)
        images = (labels[:, None, None] * 20 + rng.integers(0, 10, (len(labels), 28, 28))).astype(
            np.uint8
        )
        write_idx(folder / f"{names[split]}-images-idx3-ubyte", images)
        write_idx(folder / f"{names[split]}-labels-idx1-ubyte", labels)


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    """A folder holding a tiny full-format MNIST in torchvision's layout (ROOT/MNIST/raw)."""
    make_idx_dataset(tmp_path / "MNIST" / "raw", {"train": 12, "test": 5})
    return tmp_path


@pytest.fixture(scope="session")
def session_mnist_root(tmp_path_factory) -> Path:
    """Like `mnist_root`, made once per session, for fixtures that train once and are copied."""
    root = tmp_path_factory.mktemp("session-mnist")
    make_idx_dataset(root / "MNIST" / "raw", {"train": 12, "test": 5})
    return root


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    """A folder holding a tiny CIFAR-10 in the python-pickle format (ROOT/cifar-10-batches-py)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = list(np.repeat(np.arange(10), 3))
        batch = {
            b"data": rng.integers(0, 256, (len(labels), 3072)).astype(np.uint8),
            b"labels": labels,
        }
        with open(folder / name, "wb") as stream:
            pickle.dump(batch, stream)
    return tmp_path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tests' networks are tiny: one thread is quick, deterministic and avoids OpenMP
    spin-waits on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def every_trial_counts(monkeypatch):
    """A network trained for a few steps answers hardly any trial correctly; count every trial
    so that every class has a centre of mass, in the analysis (slow points, backtracking) and
    in the regulariser's anchors alike (centre semantics: tests/analysis/test_centers.py)."""
    import analysis.pipeline as pipeline
    import analysis.regularizer as regularizer

    real = pipeline.class_centers

    def lenient(*args, **kwargs):
        centers = real(*args, **kwargs)
        for k in centers.classes:
            centers.centers[k] = centers.states[centers.trial_labels == k].mean(axis=0)
        centers.n_correct[:] = centers.n_trials
        centers.correct[:] = True
        return centers

    monkeypatch.setattr(pipeline, "class_centers", lenient)
    monkeypatch.setattr(regularizer, "class_centers", lenient)
