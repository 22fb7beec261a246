"""``render()`` of both envs: an upscaled frame over a status strip (t, trigger, label, last
action, timeline), and a terminal frame that shows the stimulus and whether the answer was right."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import memenv  # noqa: F401
from memenv.env import (
    FONT,
    RIGHT_COLOUR,
    STRIP_UNITS,
    TRIGGER_COLOUR,
    WRONG_COLOUR,
    TrialView,
    draw_text,
    frame_image,
    trial_image,
)
from memenv.errors import UsageError

pytestmark = pytest.mark.usefixtures("embedded_images_once")

ID = "DelayedRecall-MNIST-v0"
SIDE = 28 * 8  # the default scale
STRIP = STRIP_UNITS * 2


def make(**kwargs):
    return gym.make(ID, render_mode="rgb_array", **kwargs)


def frame_part(image, side=SIDE):
    return image[:side]


def strip_part(image, side=SIDE):
    return image[side:]


def upscaled(obs, scale=8):
    """The observation's pixels as the old 28x28 grey image, upscaled by repetition."""
    grey = (np.clip(obs[:-1], 0, 1).reshape(28, 28) * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(grey, scale, 0), scale, 1)


def run_to(env, t, action=0):
    info = None
    for _ in range(t):
        _, _, _, _, info = env.step(action)
    return info


def test_shape_dtype_and_nearest_neighbour_upscale():
    env = make()
    obs, info = env.reset(seed=3)
    assert info["t_stim"] > 0  # a noise frame: every pixel value differs
    image = env.render()
    assert image.shape == (SIDE + STRIP, SIDE, 3) == (272, 224, 3)
    assert image.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(frame_part(image)[..., channel], upscaled(obs))
    np.testing.assert_array_equal(
        frame_part(image), np.repeat(np.repeat(frame_image(obs, (1, 28, 28)), 8, 0), 8, 1)
    )
    assert strip_part(image).any()


def test_render_scale_is_an_attribute_checked_on_render():
    env = make()
    obs, _ = env.reset(seed=3)
    env.unwrapped.render_scale = 4
    image = env.render()
    assert image.shape == (112 + STRIP_UNITS * 1, 112, 3)
    np.testing.assert_array_equal(image[:112, :, 0], upscaled(obs, 4))
    env.unwrapped.render_scale = 1
    image = env.render()
    assert image.shape == (28 + STRIP_UNITS, 28, 3)
    np.testing.assert_array_equal(image[:28], frame_image(obs, (1, 28, 28)))  # the old frame
    for bad in (0, 65, 2.0, True, "8"):
        env.unwrapped.render_scale = bad
        with pytest.raises(
            UsageError, match=f"render_scale must be an integer in \\[1, 64\\], got {bad!r}"
        ):
            env.render()


def test_the_strip_shows_the_last_action():
    a, b = make(), make()
    a.reset(seed=5)
    b.reset(seed=5)
    before = a.render()
    np.testing.assert_array_equal(before, b.render())
    a.step(0)
    b.step(6)  # actions never change the frames
    image_a, image_b = a.render(), b.render()
    np.testing.assert_array_equal(frame_part(image_a), frame_part(image_b))
    assert not np.array_equal(strip_part(image_a), strip_part(image_b))
    assert not np.array_equal(strip_part(before), strip_part(image_a))  # "ACT -" -> "ACT 0"


def test_the_strip_is_what_the_trial_says():
    env = make()
    obs, info = env.reset(seed=5)
    obs, _, _, _, info = env.step(7)
    view = TrialView(
        t=1,
        n_steps=20,
        t_stim=info["t_stim"],
        t_resp=info["t_resp"],
        label=info["label"],
        last_action=7,
        answer=None,
    )
    np.testing.assert_array_equal(env.render(), trial_image((1, 28, 28), 8, view, obs))
    wrong_label = TrialView(**{**view.__dict__, "label": (info["label"] + 1) % 10})
    assert not np.array_equal(env.render(), trial_image((1, 28, 28), 8, wrong_label, obs))


def test_the_strip_changes_with_t_and_shows_the_trigger():
    env = make()
    _, info = env.reset(seed=1)
    strips = [strip_part(env.render())]
    line1 = slice(2 * 2, 7 * 2)  # the first text line: T t/n and TRIGGER ON/OFF

    def red_text(image):
        return (strip_part(image)[line1] == TRIGGER_COLOUR).all(axis=-1).sum()

    while info["t"] < info["t_resp"]:
        _, _, _, _, info = env.step(0)
        strips.append(strip_part(env.render()))
        if info["t"] < info["t_resp"]:
            assert red_text(env.render()) == 0
    for earlier, later in zip(strips, strips[1:], strict=False):
        assert not np.array_equal(earlier, later)
    image = env.render()
    assert red_text(image) > 0
    assert (frame_part(image)[:8] == TRIGGER_COLOUR).all()  # the red border, 8 pixels wide


@pytest.mark.parametrize("right", [True, False])
def test_the_terminal_frame_shows_the_stimulus_and_the_verdict(right):
    env = make()
    _, info = env.reset(seed=2)
    terminated, total = False, 0.0
    while not terminated:
        answer = info["label"] + 1 if right else (info["label"] + 2) % 11
        action = answer if info["is_response"] else 0
        _, reward, terminated, _, info = env.step(action)
        total += reward
    assert total == (1.0 if right else 0.0)
    image = env.render()
    assert image.shape == (272, 224, 3) and image.any()
    task = env.unwrapped.task
    stimulus = task.images.images_nxp[int(env.unwrapped._spec.image_index[0])]
    stimulus = stimulus.reshape(28, 28).repeat(8, 0).repeat(8, 1)
    np.testing.assert_array_equal(frame_part(image)[8:-8, 8:-8, 0], stimulus[8:-8, 8:-8])
    colour = RIGHT_COLOUR if right else WRONG_COLOUR
    assert (frame_part(image)[:8] == colour).all() and (frame_part(image)[-8:] == colour).all()
    assert (strip_part(image) == colour).all(axis=-1).any()  # RIGHT / WRONG in that colour


def test_before_reset_a_black_frame_says_so():
    env = make()
    image = env.unwrapped.render()
    assert image.shape == (272, 224, 3)
    assert not frame_part(image).any() and strip_part(image).any()


def test_long_trials_and_cifar_render(cifar_root):
    env = make(n_steps=2000, t_max=20, delay=1500, t_stim=3)
    env.reset(seed=0)
    run_to(env, 1600)
    assert env.render().shape == (272, 224, 3)
    cifar = gym.make("DelayedRecall-CIFAR10-v0", render_mode="rgb_array", root=cifar_root)
    obs, _ = cifar.reset(seed=0)
    image = cifar.render()
    assert image.shape == (256 + STRIP, 256, 3)
    rgb = (np.clip(obs[:-1], 0, 1).reshape(3, 32, 32).transpose(1, 2, 0) * 255).round()
    np.testing.assert_array_equal(image[:256:8, ::8], rgb.astype(np.uint8))


def test_font_draws_its_glyphs_scaled_and_clipped():
    canvas = np.zeros((12, 20, 3), np.uint8)
    x = draw_text(canvas, 1, 1, "1a", (255, 255, 255), 2)
    assert x == 1 + 2 * 8
    ink = canvas[..., 0] > 0
    np.testing.assert_array_equal(ink[1:11, 1:7], FONT["1"].repeat(2, 0).repeat(2, 1))
    np.testing.assert_array_equal(ink[1:11, 9:15], FONT["A"].repeat(2, 0).repeat(2, 1))
    draw_text(canvas, 18, 8, "88", (1, 2, 3), 2)  # past the edges: clipped, no error


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_render_is_one_single_env_frame_per_sub_env(mode):
    n, n_steps = 3, 6
    vec = gym.make_vec(
        ID, num_envs=n, render_mode="rgb_array", autoreset_mode=mode, n_steps=n_steps, t_max=6
    )
    singles = [make(n_steps=n_steps, t_max=6) for _ in range(n)]
    assert len(vec.render()) == n  # before reset: one "no trial" frame each
    obs, info = vec.reset(seed=11)
    for i, env in enumerate(singles):
        env.reset(seed=11 + i)
    rng = np.random.default_rng(0)
    for step in range(n_steps):
        frames = vec.render()
        assert isinstance(frames, tuple) and len(frames) == n
        for i, env in enumerate(singles):
            np.testing.assert_array_equal(frames[i], env.render())
        actions = rng.integers(0, 11, n)
        # Answer right in sub-env 0 and wrong elsewhere at the response step.
        for i in range(n):
            if info["t_resp"][i] == step:
                actions[i] = info["label"][i] + 1 if i == 0 else 0
        obs, _, terminated, _, info = vec.step(actions)
        for i, env in enumerate(singles):
            env.step(int(actions[i]))
    assert terminated.all()
    frames = vec.render()
    if mode == "next_step":  # the terminal frames: stimulus and verdict, as the single env's
        for i, env in enumerate(singles):
            np.testing.assert_array_equal(frames[i], env.render())
        assert (frame_part(frames[0])[:8] == RIGHT_COLOUR).all()
        assert (frame_part(frames[1])[:8] == WRONG_COLOUR).all()
    else:  # the next episodes have started: their first frames
        for i in range(n):
            np.testing.assert_array_equal(frame_part(frames[i])[..., 0], upscaled(obs[i]))


def test_rendering_changes_no_episode():
    watched, plain = make(n_steps=70, t_max=20), make(n_steps=70, t_max=20)  # two frame chunks
    obs_w, _ = watched.reset(seed=8)
    obs_p, _ = plain.reset(seed=8)
    for _ in range(70):
        watched.render()
        np.testing.assert_array_equal(obs_w, obs_p)
        obs_w, *_ = watched.step(0)
        obs_p, *_ = plain.step(0)
    watched.render()
    np.testing.assert_array_equal(watched.reset()[0], plain.reset()[0])
