"""Class centres of mass and trajectories on a tiny on-disk MNIST."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from analysis_toy_models import trigger_reader
from torch import nn

from analysis.centers import ClassCenters, class_centers, state_trajectories
from memenv import DelayedRecallTask, TaskConfig
from tests.protocol_models import ImagePoolModel

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


class FrameCounter(ImagePoolModel):
    """Counts the frames it is shown and notes at which one the image came.

    State ``[B, 4]``: ``(frames seen, index of the image frame or -1, image frames seen, class of
    the image)``. The image frame is recognised by matching the pixels against the task's image
    pool (noise frames match no image). The readout names the image's class, so every trial
    counts as correct and every class has a centre.
    """

    def initial_state(self, batch_size: int) -> torch.Tensor:
        state = self.unused.new_zeros(batch_size, 4)
        state[:, 1] = -1.0
        return state

    def transition(self, state: torch.Tensor, x_bxd: torch.Tensor) -> torch.Tensor:
        is_image, image_class = self.match_image(x_bxd)
        frames, image_at, n_images, label = state.unbind(dim=1)
        return torch.stack(
            [
                frames + 1,
                torch.where(is_image, frames, image_at),  # frames seen before = this frame's index
                n_images + is_image.to(state.dtype),
                torch.where(is_image, image_class.to(state.dtype), label),
            ],
            dim=1,
        )

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        answer = state[:, 3].long() + 1
        return nn.functional.one_hot(answer, 11).to(state.dtype)


def test_settle_steps_default_to_the_authors_15():
    """The authors' protocol: the centre state after 15 steps from the image (literal 15)."""
    from analysis.pipeline import AnalysisOptions
    from studies.finetune import RegularizeConfig

    assert inspect.signature(class_centers).parameters["settle_steps"].default == 15
    assert AnalysisOptions().settle_steps == 15
    assert RegularizeConfig().settle_steps == 15


def test_default_centre_state_is_taken_after_frames_0_to_14(task):
    """15 frames in all, the image frame (t = 0) included: the state after frames 0..14."""
    centers = class_centers(FrameCounter(task), task, n_per_class=2)
    assert centers.settle_steps == 15
    frames, image_at, n_images, label = centers.states.T
    assert (frames == 15).all()  # 15 frames were run
    assert (image_at == 0).all()  # the first of them was the image
    assert (n_images == 1).all()  # and only the first
    np.testing.assert_array_equal(label, centers.trial_labels)
    # every trial answered correctly, so each centre is its class's (15, 0, 1, k)
    assert centers.n_correct.tolist() == [2] * 10
    expected = np.stack([np.full(10, 15.0), np.zeros(10), np.ones(10), np.arange(10.0)], axis=1)
    np.testing.assert_array_equal(centers.centers, expected)


@pytest.mark.parametrize("settle_steps", [1, 4])
def test_settle_steps_counts_the_image_frame(task, settle_steps):
    centers = class_centers(FrameCounter(task), task, n_per_class=1, settle_steps=settle_steps)
    frames, image_at, n_images, _ = centers.states.T
    assert (frames == settle_steps).all() and (image_at == 0).all() and (n_images == 1).all()


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

    from memenv.errors import UsageError
    from studies.analyze_commands import add_analyze_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_analyze_arguments(parser)
    options = options_from_args(parser.parse_args([str(tmp_path), "--centers", "authors"]))
    assert options.shared_noise and options.noise_scale == pytest.approx(1 / 3)
    options = options_from_args(parser.parse_args([str(tmp_path)]))
    assert not options.shared_noise and options.noise_scale == 1.0
    assert options.settle_steps == 15  # the authors' protocol, as in AnalysisOptions
    with pytest.raises(UsageError, match="--noise-scale"):
        options_from_args(
            parser.parse_args([str(tmp_path), "--centers", "authors", "--noise-scale", "0.5"])
        )
