import gzip
import pickle
import re
import warnings

import numpy as np
import pytest

from memenv import data
from memenv.data import CorruptDataError, DataSetNotFoundError, load_images
from memenv.errors import ArgumentTypeError, CorruptFileError, MissingFileError, UsageError
from tests.conftest import make_idx_dataset, write_idx


def test_embedded_mnist_is_a_stratified_disjoint_split_and_warns():
    with pytest.warns(UserWarning, match="embedded 5,000-image MNIST subset"):
        train = load_images("mnist", "train")
    test = load_images("mnist", "test")
    assert train.is_embedded and "embedded" in train.source
    assert train.images_nxp.shape == (4000, 784) and train.images_nxp.dtype == np.uint8
    assert test.images_nxp.shape == (1000, 784)
    assert (train.n_per_class, test.n_per_class) == (400, 100)
    train_rows = {row.tobytes() for row in train.images_nxp}
    assert not any(row.tobytes() in train_rows for row in test.images_nxp)
    # rows are grouped by class: the mean image of class 1 ("ones") has the least ink
    ink = train.images_nxp.reshape(10, 400, 784).mean(axis=(1, 2))
    assert int(np.argmin(ink)) == 1


def test_full_mnist_from_root_in_torchvision_layout(mnist_root):
    images = load_images("mnist", "train", root=mnist_root)
    assert not images.is_embedded and str(mnist_root) in images.source
    assert images.n_per_class == 12
    per_class_level = images.images_nxp.reshape(10, 12, 784).min(axis=(1, 2))
    assert per_class_level.tolist() == [20 * k for k in range(10)]


def test_memenv_data_environment_variable_is_used(mnist_root, monkeypatch):
    monkeypatch.setenv("MEMENV_DATA", str(mnist_root))
    assert load_images("mnist", "test").n_per_class == 5


def test_classes_are_balanced_by_cutting_to_the_smallest(tmp_path):
    labels = np.array([k for k in range(10) for _ in range(3 if k else 2)])
    images = np.repeat(labels[:, None, None], 28, 1).repeat(28, 2).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, compress=False)
    pool = load_images("mnist", "train", root=tmp_path)
    assert pool.n_per_class == 2 and pool.images_nxp.shape == (20, 784)


def test_truncated_idx_file_is_a_clear_error(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(CorruptDataError, match="truncated"):
        load_images("mnist", "train", root=mnist_root)


def test_damaged_gzip_is_a_clear_error(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CorruptDataError, match="damaged"):
        load_images("mnist", "train", root=mnist_root)


def test_wrong_magic_is_a_clear_error(tmp_path):
    make_idx_dataset(tmp_path, {"train": 2})
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x12\x34\x56\x78" * 9))
    with pytest.raises(CorruptDataError, match="not an IDX file"):
        load_images("mnist", "train", root=tmp_path)


def test_a_folder_without_mnist_is_an_error_listing_where_it_looked(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no fallback warning either
        with pytest.raises(DataSetNotFoundError) as caught:
            load_images("mnist", "train", root=tmp_path)
    message = str(caught.value)
    assert f"in data folder {tmp_path} (from argument root=)" in message
    for looked in (
        f"{tmp_path}/MNIST/raw/{{train-images-idx3-ubyte,train-labels-idx1-ubyte}}[.gz]",
        f"{tmp_path}/{{train-images-idx3-ubyte,train-labels-idx1-ubyte}}[.gz]",
        f"{tmp_path}/mnist.pkl.gz",
    ):
        assert looked in message


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "cifar10"])
def test_a_missing_root_is_an_error_even_where_other_copies_exist(dataset, tmp_path, monkeypatch):
    make_idx_dataset(tmp_path / "debian", {"train": 2})
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataSetNotFoundError, match="does not exist") as caught:
        load_images(dataset, "train", root=missing)
    assert f"data folder {missing} (from argument root=) does not exist" in str(caught.value)
    assert "Looked for: " in str(caught.value)
    assert not missing.exists()


def test_a_root_that_is_a_file_is_an_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"")
    with pytest.raises(DataSetNotFoundError, match="is a file, not a folder"):
        load_images("mnist", "train", root=path)


def test_memenv_data_without_mnist_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMENV_DATA", str(tmp_path))
    with pytest.raises(DataSetNotFoundError, match="from environment variable MEMENV_DATA"):
        load_images("mnist", "test")
    monkeypatch.setenv("MEMENV_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataSetNotFoundError, match="MEMENV_DATA\\) does not exist"):
        load_images("mnist", "test")


def test_an_empty_memenv_data_means_no_folder(monkeypatch):
    monkeypatch.setenv("MEMENV_DATA", "")
    with pytest.warns(UserWarning, match="embedded 5,000-image MNIST subset"):
        assert load_images("mnist", "test").is_embedded


def test_a_failed_mnist_download_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_torchvision_download", lambda *_: "URLError: offline")
    for root in (None, tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(DataSetNotFoundError, match="could not download MNIST .*offline"):
                load_images("mnist", "train", root=root, download=True)


def test_download_creates_a_missing_root(tmp_path, monkeypatch):
    def fake_download(dataset, target):
        make_idx_dataset(target / "MNIST" / "raw", {"train": 3})

    monkeypatch.setattr(data, "_torchvision_download", fake_download)
    images = load_images("mnist", "train", root=tmp_path / "new", download=True)
    assert images.n_per_class == 3 and str(tmp_path / "new") in images.source


@pytest.mark.parametrize("download", ["yes", 1, None, np.array([True])])
def test_download_must_be_a_bool(download):
    with pytest.raises(
        ArgumentTypeError, match=re.escape(f"download must be True or False, got {download!r}")
    ):
        load_images("mnist", "train", download=download)


def test_root_must_be_a_path():
    with pytest.raises(ArgumentTypeError, match="root must be a folder path .* got 5 \\(int\\)"):
        load_images("mnist", "train", root=5)
    with pytest.raises(ArgumentTypeError, match="got b'/data' \\(bytes\\)"):
        load_images("mnist", "train", root=b"/data")

    class BytesPath:
        def __fspath__(self):
            return b"/data"

    with pytest.raises(ArgumentTypeError, match="root must be a text path, got .* -> b'/data'"):
        load_images("mnist", "train", root=BytesPath())
    for bad in ("", "/da\x00ta"):
        with pytest.raises(UsageError, match="root must be a folder path, got"):
            load_images("mnist", "train", root=bad)


def test_a_numpy_bool_is_a_bool(mnist_root):
    assert load_images("mnist", "test", root=mnist_root, download=np.bool_(False)).n_per_class == 5


def test_unknown_dataset_and_split():
    with pytest.raises(UsageError, match="'svhn'"):
        load_images("svhn")
    with pytest.raises(UsageError, match="'dev'"):
        load_images("mnist", "dev")


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nothing-here")
    with pytest.raises(DataSetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist", "train")


def test_fashion_mnist_from_a_debian_style_folder(tmp_path, monkeypatch):
    make_idx_dataset(tmp_path, {"train": 4, "test": 3})
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path)
    images = load_images("fashion-mnist", "test")
    assert images.n_per_class == 3 and images.pixel_mean == pytest.approx(0.2860)


def test_fashion_mnist_from_debian_when_the_root_folder_lacks_it(mnist_root, tmp_path, monkeypatch):
    """The Debian package holds the same data set, so a root without Fashion-MNIST (but with
    MNIST, as in the env tests) reads it there rather than failing."""
    make_idx_dataset(tmp_path / "debian", {"train": 4})
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    images = load_images("fashion-mnist", "train", root=mnist_root)
    assert images.n_per_class == 4 and str(tmp_path / "debian") in images.source


def test_cifar10_from_python_batches(cifar_root):
    images = load_images("cifar10", "train", root=cifar_root)
    assert images.images_nxp.shape == (150, 3072) and images.frame_shape == (3, 32, 32)
    assert load_images("cifar10", "test", root=cifar_root).n_per_class == 3


def test_cifar10_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(DataSetNotFoundError, match="cifar-10-python.tar.gz") as caught:
        load_images("cifar10", "train", root=tmp_path)
    assert f"in data folder {tmp_path} (from argument root=)" in str(caught.value)
    assert f"{tmp_path}/cifar-10-batches-py/{{data_batch_1 ... data_batch_5}}" in str(caught.value)
    with pytest.raises(DataSetNotFoundError, match="no data folder given"):
        load_images("cifar10", "test")


def test_cifar10_corrupt_batch(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps({b"data": np.zeros((3, 5), np.uint8), b"labels": [0, 1, 2]}))
    with pytest.raises(CorruptDataError, match="data_batch_3"):
        load_images("cifar10", "train", root=cifar_root)


def test_second_start_reads_the_converted_cache(mnist_root, monkeypatch):
    first = load_images("mnist", "train", root=mnist_root)
    data._load_cached.cache_clear()

    def no_parsing(path):
        raise AssertionError(f"parsed {path} again instead of reading the cache")

    monkeypatch.setattr(data, "read_idx", no_parsing)
    second = load_images("mnist", "train", root=mnist_root)
    np.testing.assert_array_equal(first.images_nxp, second.images_nxp)


def test_changed_source_file_invalidates_the_cache(mnist_root):
    first = load_images("mnist", "train", root=mnist_root)
    data._load_cached.cache_clear()
    make_idx_dataset(mnist_root / "MNIST" / "raw", {"train": 7}, seed=5)
    assert load_images("mnist", "train", root=mnist_root).n_per_class == 7 != first.n_per_class


def test_error_classes_keep_their_names_and_join_the_memenv_hierarchy():
    assert issubclass(DataSetNotFoundError, MissingFileError)
    assert issubclass(DataSetNotFoundError, FileNotFoundError)
    assert CorruptDataError is CorruptFileError and issubclass(CorruptDataError, ValueError)
