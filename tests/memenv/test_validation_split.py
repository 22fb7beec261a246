"""The training images cut in two for tuning: validation and fit never overlap, and together
they are the training pool; test images are untouched."""

from __future__ import annotations

import numpy as np
import pytest

from memenv import DelayedRecallTask, TaskConfig
from memenv.data import carve_validation, load_images
from memenv.errors import UsageError


def test_fit_and_validation_partition_the_training_images():
    train = load_images("mnist", "train")
    fit, validation = load_images("mnist", "fit"), load_images("mnist", "validation")
    n = train.n_per_class
    assert validation.n_per_class == n // 10 and fit.n_per_class == n - n // 10
    per_class = train.images_nxp.reshape(10, n, -1)
    np.testing.assert_array_equal(
        validation.images_nxp.reshape(10, -1, train.n_pixels), per_class[:, n - n // 10 :]
    )
    np.testing.assert_array_equal(
        fit.images_nxp.reshape(10, -1, train.n_pixels), per_class[:, : n - n // 10]
    )
    assert (fit.pixel_mean, fit.pixel_std) == (train.pixel_mean, train.pixel_std)
    assert validation.split == "validation" and "validation" in validation.source
    task = DelayedRecallTask(TaskConfig(split="validation"))
    assert task.images.n_per_class == n // 10


def test_a_pool_too_small_to_cut_is_refused():
    train = load_images("mnist", "train")
    one = train.__class__(**{**train.__dict__, "images_nxp": train.images_nxp[::train.n_per_class],
                             "n_per_class": 1})  # fmt: skip
    with pytest.raises(UsageError, match="1 image per class: too few"):
        carve_validation(one, "validation")
    with pytest.raises(UsageError, match="unknown split 'valid'"):
        load_images("mnist", "valid")
