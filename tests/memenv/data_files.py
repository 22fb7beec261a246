"""Small data files in the formats of the real downloads, and hostile ones, for the data tests.

The real CIFAR-10 batches and the Theano-tutorial ``mnist.pkl.gz`` were written by Python 2
with pickle protocol 2: their byte strings are ``BINSTRING`` opcodes and numpy's reconstructor
is named ``numpy.core.multiarray._reconstruct``. `dumps_like_python2` writes the same opcodes
from Python 3, so the tests read files like the real ones, not only what Python 3 writes.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ``str`` and ``bytes`` both as byte strings."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_byte_string(self, obj):
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_byte_string
    dispatch[str] = _save_byte_string


def dumps_like_python2(obj: object) -> bytes:
    """``obj`` pickled as Python 2 with numpy 1 would have (protocol 2, byte strings)."""
    stream = io.BytesIO()
    _Python2Pickler(stream, protocol=2).dump(obj)
    # numpy 2 names its reconstructor numpy._core...; numpy 1 (the real files) numpy.core...
    return stream.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def pickle_globals(raw: bytes) -> set[str]:
    """The globals a pickle names (``module name``), read without loading it."""
    import pickletools

    names, strings = set(), []
    for op, arg, _ in pickletools.genops(raw):
        if op.name == "GLOBAL":
            names.add(arg)
        elif op.name == "STACK_GLOBAL":
            names.add(" ".join(strings[-2:]))
        elif isinstance(arg, str):
            strings.append(arg)
    return names


def class_images(labels: np.ndarray, rng: np.random.Generator, width: int) -> np.ndarray:
    """uint8 images whose pixels are 20 * label + a random offset 0..9 (classes tell apart)."""
    offsets = rng.integers(0, 10, (len(labels), width))
    return (np.asarray(labels)[:, None] * 20 + offsets).astype(np.uint8)


def make_mnist_parts(counts: dict[str, list[int]], seed: int = 0) -> dict[str, tuple]:
    """uint8 images [N, 784] and int64 labels per part (train, valid, test), shuffled;
    ``counts[part][k]`` images of class k."""
    rng = np.random.default_rng(seed)
    parts = {}
    for part, per_class in counts.items():
        labels = np.repeat(np.arange(10), per_class).astype(np.int64)
        rng.shuffle(labels)
        parts[part] = (class_images(labels, rng, 784), labels)
    return parts


def write_mnist_pickle(path: Path, parts: dict[str, tuple], python2: bool = True) -> Path:
    """Writes ``parts`` (uint8 pixels, labels) as the Theano-tutorial ``mnist.pkl.gz`` does:
    gzip of a pickle of ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``, x
    float32 pixel / 256, y int64."""
    content = tuple(
        ((pixels / np.float32(256)).astype(np.float32), labels.astype(np.int64))
        for pixels, labels in (parts["train"], parts["valid"], parts["test"])
    )
    return write_gzip_pickle(path, content, python2)


def write_gzip_pickle(path: Path, obj: object, python2: bool = True) -> Path:
    raw = dumps_like_python2(obj) if python2 else pickle.dumps(obj, protocol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw))
    return path


def cifar_batch(n_per_class: int, seed: int = 0, str_keys: bool = False) -> dict:
    """A batch as in the real CIFAR-10 files: ``batch_label``, ``labels`` (a list of ints),
    ``data`` (uint8 [N, 3072]) and ``filenames``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    rng.shuffle(labels)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(k) for k in labels],
        b"data": class_images(labels, rng, 3072),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(labels))],
    }
    return {key.decode(): value for key, value in batch.items()} if str_keys else batch


def write_cifar_batches(root: Path, batches: dict[str, bytes]) -> Path:
    """Writes raw pickles under ``root/cifar-10-batches-py``; returns root."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in batches.items():
        (folder / name).write_bytes(raw)
    return root


class CodeRunner:
    """An object whose unpickling runs ``function(*args)``: what an attacker's file does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args
