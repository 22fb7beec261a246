"""Class centres of mass and trajectories on a tiny on-disk MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_toy_models import trigger_reader

from analysis.centers import ClassCenters, class_centers, state_trajectories
from memenv import DelayedRecallTask, TaskConfig

N_HIDDEN = 3  # trigger_reader's units


@pytest.fixture
def task(mnist_root):
    return DelayedRecallTask(TaskConfig(split="test"), root=mnist_root)


def test_centres_use_correct_trials_and_the_trigger_step(task):
    model = trigger_reader(task.obs_dim)
    centers = class_centers(model, task, n_per_class=6, settle_steps=3, noise_scale=0.0)
    assert centers.centers.shape == (10, N_HIDDEN)
    # only class 0 is ever answered (after a trigger step), so only it has a centre
    assert centers.n_correct.tolist() == [6] + [0] * 9
    assert centers.valid.tolist() == [True] + [False] * 9
    assert np.isnan(centers.centers[1:]).all()
    assert centers.accuracy[0] == 1.0
    # noise_scale 0 and no memory: the settled state is B @ mean_frame + b for every trial
    mean_pixel = task.images.pixel_mean
    assert centers.centers[0] == pytest.approx([0.0, mean_pixel, 0.25])
    assert centers.states.shape == (60, N_HIDDEN)
    assert centers.trial_labels.tolist() == sorted(centers.trial_labels.tolist())
    assert centers.correct.sum() == 6


def test_image_is_shown_at_t0_and_noise_follows(task):
    model = trigger_reader(task.obs_dim, memory=1.0)  # unit 1 integrates the mean pixel
    settle = 4
    centers = class_centers(model, task, n_per_class=2, settle_steps=settle, noise_scale=0.0)
    images = task.images.images_nxp.astype(np.float64) / 255
    per_class_means = images.reshape(10, -1, images.shape[1]).mean(axis=2)
    mean_pixel = task.images.pixel_mean
    for b, label in enumerate(centers.trial_labels):
        image_mean = centers.states[b, 1] - (settle - 1) * mean_pixel
        assert np.isclose(image_mean, per_class_means[label], atol=1e-6).any()


def test_save_load_and_validation(task, tmp_path):
    centers = class_centers(trigger_reader(task.obs_dim), task, n_per_class=2, settle_steps=2)
    path = tmp_path / "centers.npz"
    centers.save(path)
    back = ClassCenters.load(path)
    np.testing.assert_array_equal(back.centers, centers.centers)
    assert (back.settle_steps, back.noise_scale) == (2, 1.0)
    with pytest.raises(ValueError, match="settle_steps"):
        class_centers(trigger_reader(task.obs_dim), task, settle_steps=0)
    with pytest.raises(ValueError, match="n_correct"):
        ClassCenters(**{**centers.__dict__, "n_correct": np.zeros(3)})


def test_seeded_and_vocabulary(task):
    model = trigger_reader(task.obs_dim)
    one = class_centers(model, task, n_per_class=3, settle_steps=2, seed=5, n_classes=4)
    two = class_centers(model, task, n_per_class=3, settle_steps=2, seed=5, n_classes=4)
    np.testing.assert_array_equal(one.states, two.states)
    assert one.centers.shape[0] == 4 and set(one.trial_labels.tolist()) == {0, 1, 2, 3}


def test_trajectories(task):
    model = trigger_reader(task.obs_dim, memory=0.5)
    trajectories, labels = state_trajectories(model, task, n_per_class=2, n_steps=5, n_classes=3)
    assert trajectories.shape == (6, 5, N_HIDDEN)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.allclose(trajectories[:, :, 2], 0.25)
    assert np.allclose(trajectories[:, :, 0], 0.0)  # the trigger never comes


def test_authors_centres_share_one_noise_sequence_at_a_third_of_the_std(task):
    from analysis.centers import AUTHORS_CENTERS

    model = trigger_reader(task.obs_dim)  # unit 1: mean pixel of the last frame (a noise frame)
    mean_pixel = task.images.pixel_mean
    shared = class_centers(model, task, n_per_class=4, settle_steps=3, seed=5, **AUTHORS_CENTERS)
    last_frame_means = shared.states[:, 1]
    assert shared.shared_noise and shared.noise_scale == pytest.approx(1 / 3)
    assert np.ptp(last_frame_means) == 0  # every trial saw the same noise frame
    full = class_centers(
        model, task, n_per_class=4, settle_steps=3, seed=5, noise_scale=1.0, shared_noise=True
    )
    # the same draws, scaled: the deviation from the pixel mean is a third
    ratio = (last_frame_means[0] - mean_pixel) / (full.states[0, 1] - mean_pixel)
    assert ratio == pytest.approx(1 / 3, rel=1e-4)
    independent = class_centers(model, task, n_per_class=4, settle_steps=3, seed=5)
    assert np.ptp(independent.states[:, 1]) > 0


def test_analyze_cli_takes_the_authors_centres(tmp_path):
    import argparse

    from analysis.commands import add_analyze_arguments, options_from_args
    from memenv.errors import UsageError

    parser = argparse.ArgumentParser()
    add_analyze_arguments(parser)
    options = options_from_args(parser.parse_args([str(tmp_path), "--centers", "authors"]))
    assert options.shared_noise and options.noise_scale == pytest.approx(1 / 3)
    options = options_from_args(parser.parse_args([str(tmp_path)]))
    assert not options.shared_noise and options.noise_scale == 1.0
    with pytest.raises(UsageError, match="--noise-scale"):
        options_from_args(
            parser.parse_args([str(tmp_path), "--centers", "authors", "--noise-scale", "0.5"])
        )
