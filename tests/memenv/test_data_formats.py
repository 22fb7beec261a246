"""Data files are checked before use: pickles cannot run code, the Theano-tutorial
``mnist.pkl.gz`` is read and validated, IDX headers and frame sizes are checked, and a cache
entry of the wrong type or shape is rebuilt."""

import builtins
import gzip
import os
import pickle
import re
import struct

import gymnasium as gym
import numpy as np
import pytest

from memenv import data, data_readers  # importing memenv registers the environments
from memenv.data import load_images
from memenv.errors import CorruptFileError, UnsafeFileError
from tests.conftest import make_idx_dataset, write_idx
from tests.memenv.data_files import (
    CodeRunner,
    cifar_batch,
    dumps_like_python2,
    make_mnist_parts,
    pickle_globals,
    write_cifar_batches,
    write_gzip_pickle,
    write_mnist_pickle,
)

# ------------------------------------------------------------------ pickles cannot run code


def payloads(marker):
    """Objects whose unpickling would create ``marker``, by three routes."""
    return {
        "os.system": CodeRunner(os.system, f"touch {marker}"),
        "builtins.eval": CodeRunner(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "Path.touch": CodeRunner(type(marker).touch, marker),
    }


@pytest.mark.parametrize("route", ["os.system", "builtins.eval", "Path.touch"])
def test_the_payloads_really_run_code_under_plain_pickle(route, tmp_path):
    """The premise of the refusal tests: pickle.loads of these files creates the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(payloads(marker)[route]))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("route", ["os.system", "builtins.eval", "Path.touch"])
def test_a_cifar_batch_that_runs_code_is_refused_before_it_runs(
    route, protocol, cifar_root, tmp_path
):
    marker = tmp_path / "pwned"
    batch = cifar_batch(3)
    batch[b"filenames"] = payloads(marker)[route]  # after a genuine data array
    path = cifar_root / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    with pytest.raises(UnsafeFileError, match=f"^refused to load .* from {path}: ") as caught:
        load_images("cifar10", "train", root=cifar_root)
    assert not marker.exists()
    assert isinstance(caught.value, CorruptFileError)
    assert "Nothing of it was run" in str(caught.value)


def test_the_refusal_names_the_global(cifar_root, tmp_path):
    path = cifar_root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(CodeRunner(os.system, f"touch {tmp_path / 'pwned'}")))
    with pytest.raises(UnsafeFileError, match=f"refused to load {os.name}.system from {path}"):
        load_images("cifar10", "test", root=cifar_root)


def test_gym_make_refuses_a_crafted_cifar_batch(cifar_root, tmp_path):
    marker = tmp_path / "pwned"
    path = cifar_root / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps(CodeRunner(os.system, f"touch {marker}"), protocol=2))
    with pytest.raises(UnsafeFileError):
        gym.make("DelayedRecall-CIFAR10-v0", root=cifar_root)
    assert not marker.exists()


def test_bytes_may_be_encoded_only_as_latin1(cifar_root):
    """Protocol 2 from Python 3 spells bytes as _codecs.encode(text, "latin1"); any other use
    of that global is refused as damage."""
    path = cifar_root / "cifar-10-batches-py" / "test_batch"
    raw = pickle.dumps({b"data": b"x"}, protocol=2).replace(b"latin1", b"utf_16")
    path.write_bytes(raw)
    with pytest.raises(CorruptFileError, match="_codecs.encode with str, 'utf_16'"):
        load_images("cifar10", "test", root=cifar_root)


@pytest.mark.parametrize("writer", ["python2", "protocol2", "protocol5", "str_keys"])
def test_real_format_cifar_batches_load(writer, tmp_path):
    """Batches as the real files hold them (batch_label, labels list, uint8 data, filenames),
    written as Python 2 did and as Python 3 does."""
    batches = {}
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batch = cifar_batch(2 + (i == 5), seed=i, str_keys=writer == "str_keys")
        protocol = 5 if writer == "protocol5" else 2
        raw = dumps_like_python2(batch) if writer == "python2" else pickle.dumps(batch, protocol)
        batches[name] = raw
    if writer == "python2":
        assert pickle_globals(batches["test_batch"]) == {
            "numpy.core.multiarray _reconstruct",
            "numpy ndarray",
            "numpy dtype",
        }
    write_cifar_batches(tmp_path, batches)
    train = load_images("cifar10", "train", root=tmp_path)
    test = load_images("cifar10", "test", root=tmp_path)
    assert (train.n_per_class, test.n_per_class) == (10, 3)
    assert train.images_nxp.shape == (100, 3072)
    # class k's pixels are 20k + 0..9, so the class-sorted rows show the labels were kept
    assert (train.images_nxp.reshape(10, -1).min(axis=1) // 20).tolist() == list(range(10))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([1, 2, 3], "holds a list .*, not a dict"),
        ({b"labels": [0]}, "no 'data' entry"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "float32 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "found 0 to 10"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "N integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[0], [1, 2]]}, "labels"),
    ],
)
def test_a_malformed_cifar_batch_names_the_file(content, match, cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_4"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(CorruptFileError, match=match) as caught:
        load_images("cifar10", "train", root=cifar_root)
    assert str(path) in str(caught.value)


def test_a_truncated_cifar_batch_is_corrupt_not_unsafe(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptFileError, match=f"{path} is not a readable CIFAR-10 batch"):
        load_images("cifar10", "test", root=cifar_root)


# --------------------------------------------------------------------- mnist.pkl.gz (Theano)

# a few images per class, unequal so that balancing shows; train + valid smallest: class 3 (5)
COUNTS = {
    "train": [4, 5, 4, 3, 4, 4, 4, 4, 4, 6],
    "valid": [2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
    "test": [3, 3, 3, 3, 3, 3, 3, 3, 2, 3],
}


@pytest.fixture
def mnist_parts():
    return make_mnist_parts(COUNTS)


@pytest.mark.parametrize("python2", [True, False])
def test_mnist_pickle_train_is_train_plus_valid_and_pixels_are_exact(
    python2, mnist_parts, tmp_path
):
    write_mnist_pickle(tmp_path / "mnist.pkl.gz", mnist_parts, python2=python2)
    train = load_images("mnist", "train", root=tmp_path)
    test = load_images("mnist", "test", root=tmp_path)
    assert "mnist pickle" in train.source and str(tmp_path / "mnist.pkl.gz") in train.source
    assert (train.n_per_class, test.n_per_class) == (5, 2)
    # expected: every class's first images in file order, train part before valid part
    pixels = np.concatenate([mnist_parts["train"][0], mnist_parts["valid"][0]])
    labels = np.concatenate([mnist_parts["train"][1], mnist_parts["valid"][1]])
    expected = np.concatenate([pixels[labels == k][:5] for k in range(10)])
    np.testing.assert_array_equal(train.images_nxp, expected)
    assert train.images_nxp.dtype == np.uint8


def test_mnist_pickle_keeps_every_byte_value(tmp_path):
    """x = byte / 256 (as in the real file) comes back as the byte, for all 256 values."""
    parts = make_mnist_parts({part: [1] * 10 for part in ("train", "valid", "test")})
    pixels, labels = parts["train"]
    pixels[:] = np.arange(784 * 10).reshape(10, 784) % 256
    write_mnist_pickle(tmp_path / "mnist.pkl.gz", parts)
    images = load_images("mnist", "train", root=tmp_path).images_nxp
    order = np.argsort(labels, kind="stable")
    np.testing.assert_array_equal(images[::2], pixels[order])


def test_idx_files_come_before_the_pickle(mnist_root, mnist_parts):
    write_mnist_pickle(mnist_root / "mnist.pkl.gz", mnist_parts)
    images = load_images("mnist", "train", root=mnist_root)
    assert "IDX" in images.source and images.n_per_class == 12


def test_a_crafted_mnist_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_gzip_pickle(tmp_path / "mnist.pkl.gz", CodeRunner(os.system, f"touch {marker}"))
    with pytest.raises(UnsafeFileError, match=f"from {path}"):
        load_images("mnist", "train", root=tmp_path)
    assert not marker.exists()


def broken(parts, part, index, value):
    """``parts`` as written by write_mnist_pickle's content, one entry replaced."""
    content = [[(p / np.float32(256)).astype(np.float32), y] for p, y in (parts[n] for n in parts)]
    content[part][index] = value
    return tuple(tuple(pair) for pair in content)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda parts: gzip.compress(b"not a pickle"), "is not a readable gzipped MNIST pickle"),
        (lambda parts: b"plain bytes, not gzip", "is not a readable gzipped MNIST pickle"),
        (lambda parts: None, "is not a readable gzipped MNIST pickle"),  # truncated, see below
        (lambda parts: ({"train": 1},), "expected \\(\\(train_x, train_y\\)"),
        (lambda parts: broken(parts, 0, 0, np.zeros((42, 100), np.float32)), "\\[N, 784\\]"),
        (lambda parts: broken(parts, 0, 0, np.zeros((42, 784), np.uint8)), "float array"),
        (lambda parts: broken(parts, 1, 0, np.full((20, 784), 2.0, np.float32)), "in \\[0, 1\\]"),
        (lambda parts: broken(parts, 1, 0, np.full((20, 784), np.nan, np.float32)), "\\[0, 1\\]"),
        (lambda parts: broken(parts, 0, 1, np.arange(42) % 11), "found 0 to 10"),
        (lambda parts: broken(parts, 0, 1, np.arange(42) - 1), "found -1 to 40"),
        (lambda parts: broken(parts, 1, 1, np.zeros(19, np.int64)), "expected 20 integer"),
        (lambda parts: broken(parts, 0, 1, np.zeros(42, np.float64)), "integer MNIST labels"),
    ],
)
def test_a_bad_mnist_pickle_is_corrupt_and_named(make, match, mnist_parts, tmp_path):
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz", mnist_parts)
    content = make(mnist_parts)
    if content is None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a download cut short
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write_gzip_pickle(path, content)
    with pytest.raises(CorruptFileError, match=match) as caught:
        load_images("mnist", "train", root=tmp_path)
    assert str(path) in str(caught.value) and not isinstance(caught.value, UnsafeFileError)


# ------------------------------------------------------------------------ IDX format checks


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_idx_images_must_be_28x28(dataset, tmp_path):
    labels = np.repeat(np.arange(10), 2)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((20, 10, 10), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(CorruptFileError, match="10x10-pixel images") as caught:
        load_images(dataset, "train", root=tmp_path)
    assert f"{path} holds" in str(caught.value) and "are 28x28" in str(caught.value)


def write_raw_idx(path, dims, body=b""):
    path.write_bytes(struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims))
    with open(path, "ab") as stream:
        stream.write(body)
    return path


def test_a_header_whose_size_overflows_int64_is_refused_before_reading(tmp_path, monkeypatch):
    dims = (2**31, 2**31, 2)  # 2**63 bytes: np.prod wraps to a negative int64
    assert np.prod(dims) < 0
    path = write_raw_idx(tmp_path / "train-images-idx3-ubyte", dims)
    monkeypatch.setattr(data_readers, "_read_at_most", lambda *_: pytest.fail("read the body"))
    with pytest.raises(CorruptFileError, match="header dims") as caught:
        data_readers.read_idx(path, n_dims=3)
    message = str(caught.value)
    assert message.startswith(str(path)) and str(dims) in message and f"{2**63:,} bytes" in message
    assert not re.search(r"-\d", message.replace(str(path), ""))  # no negative size anywhere


def test_a_header_claiming_gigabytes_is_refused_before_reading(tmp_path, monkeypatch):
    path = write_raw_idx(tmp_path / "images", (60000, 300, 300))  # 5.4 GB, within uint32
    monkeypatch.setattr(data_readers, "_read_at_most", lambda *_: pytest.fail("read the body"))
    with pytest.raises(CorruptFileError, match="5,400,000,000 bytes"):
        data_readers.read_idx(path)


@pytest.mark.parametrize(
    ("which", "array", "match"),
    [
        ("images", np.zeros(20, np.uint8), "1 dimension\\(s\\) in its header but must hold 3"),
        ("labels", np.zeros((20, 1, 1), np.uint8), "3 dimension\\(s\\) .* must hold labels"),
    ],
)
def test_idx_files_must_have_their_number_of_dimensions(which, array, match, tmp_path):
    make_idx_dataset(tmp_path, {"train": 2})
    path = write_idx(tmp_path / f"train-{which}-idx{3 if which == 'images' else 1}-ubyte", array)
    with pytest.raises(CorruptFileError, match=match) as caught:
        load_images("mnist", "train", root=tmp_path)
    assert str(caught.value).startswith(str(path))


def test_idx_labels_out_of_range_name_the_labels_file(tmp_path):
    make_idx_dataset(tmp_path, {"train": 2})
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(20) % 12)
    with pytest.raises(CorruptFileError, match=f"^{path}: labels must lie in 0..9, found 0 to 11"):
        load_images("mnist", "train", root=tmp_path)


def test_idx_image_and_label_counts_must_agree(tmp_path):
    make_idx_dataset(tmp_path, {"train": 2})
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(19) % 10)
    with pytest.raises(CorruptFileError, match="holds 20 images but .*labels-idx1.* 19 labels"):
        load_images("mnist", "train", root=tmp_path)


def test_trailing_bytes_after_an_idx_body_are_damage(tmp_path):
    path = write_raw_idx(tmp_path / "labels", (3,), b"\x00\x01\x02\x03")
    with pytest.raises(
        CorruptFileError, match="has 12\\+ bytes but its header dims \\(3,\\) imply 11"
    ):
        data_readers.read_idx(path)
    np.testing.assert_array_equal(
        data_readers.read_idx(write_raw_idx(path, (4,), b"\0\1\2\3")), range(4)
    )


# --------------------------------------------------------------------------- the .npy cache


@pytest.mark.parametrize(
    "stale",
    [
        np.zeros((120, 784), np.float64),  # right shape, wrong dtype
        np.zeros((120, 10), np.uint8),  # wrong width
        np.zeros((120, 3072), np.uint8),  # CIFAR-10's width
        np.zeros((119, 784), np.uint8),  # not 10 classes
        np.zeros((0, 784), np.uint8),  # empty
        np.zeros((120, 28, 28), np.uint8),  # not flat
        np.array([{"x": 1}] * 10, dtype=object),  # needs pickle to load
    ],
    ids=["float64", "10-columns", "3072-columns", "119-rows", "empty", "3-d", "object"],
)
def test_a_cache_entry_unlike_the_source_is_rebuilt(stale, mnist_root):
    fresh = load_images("mnist", "train", root=mnist_root)
    (cache,) = data._cache_dir().glob("mnist-train-*.npy")
    np.save(cache, stale, allow_pickle=True)
    data._load_cached.cache_clear()
    again = load_images("mnist", "train", root=mnist_root)
    np.testing.assert_array_equal(again.images_nxp, fresh.images_nxp)
    assert again.n_per_class == 12 and again.images_nxp.dtype == np.uint8
    np.testing.assert_array_equal(np.load(cache, allow_pickle=False), fresh.images_nxp)


def test_a_damaged_cache_file_is_rebuilt(mnist_root):
    fresh = load_images("mnist", "train", root=mnist_root)
    (cache,) = data._cache_dir().glob("mnist-train-*.npy")
    cache.write_bytes(cache.read_bytes()[:1000])
    data._load_cached.cache_clear()
    np.testing.assert_array_equal(
        load_images("mnist", "train", root=mnist_root).images_nxp, fresh.images_nxp
    )
    np.testing.assert_array_equal(np.load(cache), fresh.images_nxp)
