"""`DelayedRecallEnv`: one delayed-recall trial per episode, as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memenv.config import N_LABELS, TaskConfig, short_repr
from memenv.errors import ArgumentTypeError, UsageError
from memenv.task import DelayedRecallTask, TrialSpec

N_ACTIONS = N_LABELS + 1

TASK_ARGUMENTS = tuple(f.name for f in dataclasses.fields(TaskConfig) if f.name != "dataset")
"""The `TaskConfig` fields an env takes as keyword arguments (the data set is in the id)."""

ENV_ARGUMENTS = ("root", "download", "null_penalty", "render_mode")


def make_config(
    dataset: Any, task_kwargs: dict[str, Any], other_arguments: tuple[str, ...] = ENV_ARGUMENTS
) -> TaskConfig:
    """The `TaskConfig` of an env's keyword arguments.

    Raises:
        ArgumentTypeError: an unknown keyword (a TypeError, as Python raises for one).
        UsageError: a bad value (the message names the argument and shows the value).
    """
    unknown = sorted(set(task_kwargs) - set(TASK_ARGUMENTS))
    if unknown:
        allowed = ", ".join(TASK_ARGUMENTS + other_arguments)
        given = ", ".join(f"{name}={short_repr(task_kwargs[name])}" for name in unknown)
        hint = (
            "; episodes last n_steps steps, and a TimeLimit needs per-env wrappers: "
            "gym.make_vec(..., vectorization_mode='sync', max_episode_steps=...)"
            if "max_episode_steps" in unknown
            else ""
        )
        raise ArgumentTypeError(
            f"unknown keyword argument(s) {given}; the delayed-recall envs take {allowed}{hint}"
        )
    return TaskConfig(dataset=dataset, **task_kwargs)


def make_task(config: TaskConfig, root: Any, download: Any) -> DelayedRecallTask:
    """The task of ``config`` (`DelayedRecallTask` checks ``root`` and ``download`` first)."""
    return DelayedRecallTask(config, root=root, download=download)


def check_render_mode(render_mode: Any, render_modes: list[str]) -> str | None:
    # isinstance first: `in` on a numpy array would compare element-wise.
    if render_mode is not None and (
        not isinstance(render_mode, str) or render_mode not in render_modes
    ):
        raise UsageError(f"render_mode must be None or one of {render_modes}, got {render_mode!r}")
    return render_mode


def check_action(action: Any, name: str = "action") -> int:
    """``action`` as an int in ``[0, N_ACTIONS)``; the one action rule of both envs.

    Any integer type is an action: Python ints, numpy signed and unsigned integer scalars,
    0-d integer arrays. Bools (Python or numpy), floats (even 2.0), strings and None are
    refused rather than converted: each is more likely a bug than an answer. Every refusal is
    a `UsageError` (a ValueError, as bad actions always raised) showing the value and type.
    """
    if isinstance(action, np.ndarray) and action.ndim == 0 and action.dtype.kind in "iu":
        action = action[()]
    if isinstance(action, bool | np.bool_) or not isinstance(action, numbers.Integral):
        raise UsageError(
            f"{name} must be an integer in [0, {N_ACTIONS - 1}], got {short_repr(action)} "
            f"({type(action).__name__})"
        )
    if not 0 <= action < N_ACTIONS:
        raise UsageError(
            f"{name} must be an integer in [0, {N_ACTIONS - 1}], got {short_repr(action)}"
        )
    return int(action)


SEED_RULE = "None or a non-negative integer"


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """``seed`` as None or a Python int >= 0 (numpy integers too; bools refused)."""
    if seed is None:
        return None
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be {SEED_RULE}, got {short_repr(seed)} ({type(seed).__name__})"
        )
    if seed < 0:
        raise UsageError(f"{name} must be {SEED_RULE}, got {short_repr(seed)}")
    return int(seed)


def observation_space(task: DelayedRecallTask) -> spaces.Box:
    """Pixels are unbounded (Gaussian noise, unclipped as in the paper); the trigger is in [0, 1]."""
    low = np.full(task.obs_dim, -np.inf, dtype=np.float32)
    high = np.full(task.obs_dim, np.inf, dtype=np.float32)
    low[-1], high[-1] = 0.0, 1.0
    return spaces.Box(low, high, dtype=np.float32)


def check_null_penalty(null_penalty: Any) -> float:
    if isinstance(null_penalty, bool | np.bool_) or not isinstance(null_penalty, numbers.Real):
        raise UsageError(
            f"null_penalty must be a real number, got {null_penalty!r} "
            f"({type(null_penalty).__name__})"
        )
    try:
        penalty = float(null_penalty)
    except OverflowError:  # an int or fraction beyond float64
        penalty = math.inf
    if not (math.isfinite(penalty) and penalty >= 0.0):
        raise UsageError(f"null_penalty must be finite and >= 0, got {null_penalty!r}")
    return penalty


def frame_image(obs: np.ndarray, frame_shape: tuple[int, int, int]) -> np.ndarray:
    """An observation as an RGB uint8 image ``[H, W, 3]``; the trigger draws a red border."""
    channels, height, width = frame_shape
    pixels = np.clip(obs[:-1], 0.0, 1.0).reshape(channels, height, width)
    rgb = np.repeat(pixels, 3, axis=0) if channels == 1 else pixels
    image = (rgb.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    if obs[-1] > 0.5:
        _border(image, TRIGGER_COLOUR)
    return image


# ---------------------------------------------------------------------------------- rendering
RENDER_SCALE = 8
"""Default upscaling of rendered frames (nearest neighbour): MNIST's 28x28 frame -> 224x224."""
MAX_RENDER_SCALE = 64

STRIP_UNITS = 24
"""Height of the status strip under the frame, in font pixels (``max(1, scale // 4)`` image
pixels each): 48 rows at the default scale, so an MNIST image is 272 x 224 (both multiples of
16, as video encoders like)."""

TRIGGER_COLOUR = (255, 0, 0)
RIGHT_COLOUR = (40, 200, 40)
WRONG_COLOUR = (255, 150, 0)
STIMULUS_COLOUR = (70, 150, 255)
TEXT_COLOUR = (235, 235, 235)
DIM_COLOUR = (130, 130, 130)
STRIP_COLOUR = (32, 32, 32)
FUTURE_COLOUR = (64, 64, 64)

_GLYPHS = {
    "0": "### #.# #.# #.# ###",
    "1": ".#. ##. .#. .#. ###",
    "2": "### ..# ### #.. ###",
    "3": "### ..# .## ..# ###",
    "4": "#.# #.# ### ..# ..#",
    "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###",
    "7": "### ..# ..# .#. .#.",
    "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###",
    "A": ".#. #.# ### #.# #.#",
    "B": "##. #.# ##. #.# ##.",
    "C": ".## #.. #.. #.. .##",
    "D": "##. #.# #.# #.# ##.",
    "E": "### #.. ##. #.. ###",
    "F": "### #.. ##. #.. #..",
    "G": ".## #.. #.# #.# .##",
    "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###",
    "J": "..# ..# ..# #.# .#.",
    "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#",
    "N": "##. #.# #.# #.# #.#",
    "O": ".#. #.# #.# #.# .#.",
    "P": "##. #.# ##. #.. #..",
    "Q": ".#. #.# #.# ##. .##",
    "R": "##. #.# ##. #.# #.#",
    "S": ".## #.. .#. ..# ##.",
    "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###",
    "V": "#.# #.# #.# #.# .#.",
    "W": "#.# #.# ### ### #.#",
    "X": "#.# #.# .#. #.# #.#",
    "Y": "#.# #.# .#. .#. .#.",
    "Z": "### ..# .#. #.. ###",
    " ": "... ... ... ... ...",
    "/": "..# ..# .#. #.. #..",
    ":": "... .#. ... .#. ...",
    "-": "... ... ### ... ...",
    "=": "... ### ... ### ...",
    ".": "... ... ... ... .#.",
    "(": ".#. #.. #.. #.. .#.",
    ")": ".#. ..# ..# ..# .#.",
    "?": "### ..# .#. ... .#.",
}
FONT = {
    char: np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool)
    for char, rows in _GLYPHS.items()
}
"""A 3x5 pixel font (digits, capitals, a little punctuation) for the status strip."""


@dataclasses.dataclass(frozen=True)
class TrialView:
    """What the status strip of a rendered frame shows about one trial."""

    t: int
    n_steps: int
    t_stim: int
    t_resp: int
    label: int
    last_action: int | None
    """The action of step ``t - 1`` (None on the episode's first frame)."""
    answer: int | None
    """The action taken at ``t_resp`` (None until then)."""

    @property
    def ended(self) -> bool:
        return self.t >= self.n_steps


def check_render_scale(scale: Any) -> int:
    if (
        isinstance(scale, bool | np.bool_)
        or not isinstance(scale, numbers.Integral)
        or not 1 <= scale <= MAX_RENDER_SCALE
    ):
        raise UsageError(
            f"render_scale must be an integer in [1, {MAX_RENDER_SCALE}], got "
            f"{short_repr(scale)} ({type(scale).__name__})"
        )
    return int(scale)


def draw_text(image: np.ndarray, x: int, y: int, text: str, colour: Any, size: int) -> int:
    """Writes ``text`` (upper-cased) with its top-left corner at ``(x, y)`` in the 3x5 `FONT`,
    each font pixel ``size`` x ``size`` image pixels, clipped at the image's edges; unknown
    characters print as ``?``. Returns the x where the next character would go."""
    for char in text.upper():
        glyph = FONT.get(char, FONT["?"])
        mask = glyph.repeat(size, axis=0).repeat(size, axis=1)
        region = image[y : y + mask.shape[0], x : x + mask.shape[1]]
        region[mask[: region.shape[0], : region.shape[1]]] = colour
        x += 4 * size
    return x


def action_text(action: int) -> str:
    return "0 (NULL)" if action == 0 else f"{action} (CLASS {action - 1})"


def stimulus_obs(task: DelayedRecallTask, image_index: int) -> np.ndarray:
    """The stimulus frame of a trial as an observation (pixels in [0, 1], trigger off)."""
    obs = np.zeros(task.obs_dim, np.float32)
    obs[:-1] = task.images.images_nxp[image_index] * np.float32(1 / 255)
    return obs


def trial_image(
    frame_shape: tuple[int, int, int],
    scale: int,
    view: TrialView | None,
    obs: np.ndarray | None = None,
) -> np.ndarray:
    """A rendered frame: ``obs`` upscaled ``scale`` times over a status strip.

    While the trial runs, ``obs`` is the current observation (red border while the trigger is
    on) and the strip reads ``T t/n_steps``, ``TRIGGER ON`` (red) or ``OFF``, ``LABEL`` (the
    stimulus class) and ``ACT`` (the last action taken, with the class it names), above a
    timeline of the trial (past steps light, the stimulus step blue, the response step red, a
    white mark under the current step). Once the trial has ended, ``obs`` is the stimulus frame,
    bordered green if the answer at ``t_resp`` was right and orange if not, and the strip reads
    ``END``, ``RIGHT`` or ``WRONG``, the label and ``ANS`` (the action taken at ``t_resp``).
    ``view=None`` (no trial yet)
    gives a black frame whose strip says so.
    """
    channels, height, width = frame_shape
    size = max(1, scale // 4)
    unit_height = STRIP_UNITS * size
    image = np.empty((height * scale + unit_height, width * scale, 3), np.uint8)
    if view is None or obs is None:
        frame = np.zeros((height, width, 3), np.uint8)
    else:
        frame = frame_image(obs, frame_shape)
        if view.ended:
            right = view.answer is not None and view.answer == view.label + 1
            _border(frame, RIGHT_COLOUR if right else WRONG_COLOUR)
    image[: height * scale] = frame.repeat(scale, axis=0).repeat(scale, axis=1)
    strip = image[height * scale :]
    strip[:] = STRIP_COLOUR
    line1, line2, bar = 2 * size, 9 * size, 17 * size
    x0 = 2 * size
    if view is None:
        draw_text(strip, x0, line1, "NO TRIAL: RESET()", TEXT_COLOUR, size)
        return image
    if view.ended:
        x = draw_text(strip, x0, line1, f"END T {view.t}/{view.n_steps}  ", TEXT_COLOUR, size)
        right = view.answer is not None and view.answer == view.label + 1
        draw_text(
            strip,
            x,
            line1,
            "RIGHT" if right else "WRONG",
            RIGHT_COLOUR if right else WRONG_COLOUR,
            size,
        )
        answer = "NONE" if view.answer is None else action_text(view.answer)
        draw_text(strip, x0, line2, f"LABEL {view.label}  ANS {answer}", TEXT_COLOUR, size)
    else:
        x = draw_text(strip, x0, line1, f"T {view.t}/{view.n_steps}  ", TEXT_COLOUR, size)
        trigger = obs is not None and obs[-1] > 0.5
        draw_text(
            strip,
            x,
            line1,
            "TRIGGER ON" if trigger else "TRIGGER OFF",
            TRIGGER_COLOUR if trigger else DIM_COLOUR,
            size,
        )
        act = "-" if view.last_action is None else action_text(view.last_action)
        draw_text(strip, x0, line2, f"LABEL {view.label}  ACT {act}", TEXT_COLOUR, size)
    _timeline(strip[bar : bar + 5 * size, x0 : strip.shape[1] - x0], view, size)
    return image


def _timeline(bar: np.ndarray, view: TrialView, size: int) -> None:
    """One cell per step across ``bar``: past light, future dark, stimulus blue, response red,
    a white mark under the current step."""
    length = bar.shape[1]
    if length < 1:
        return
    cells = bar[: 3 * size]
    step_of_pixel = np.arange(length) * view.n_steps // length
    cells[:] = FUTURE_COLOUR
    cells[:, step_of_pixel < view.t] = DIM_COLOUR

    def span(step: int) -> slice:
        start = step * length // view.n_steps
        return slice(start, max(start + 1, (step + 1) * length // view.n_steps))

    cells[:, span(view.t_stim)] = STIMULUS_COLOUR
    cells[:, span(view.t_resp)] = TRIGGER_COLOUR
    if not view.ended:
        bar[3 * size + size // 2 :, span(view.t)] = TEXT_COLOUR


def _border(image: np.ndarray, colour: Any) -> None:
    image[[0, -1], :] = colour
    image[:, [0, -1]] = colour


class DelayedRecallEnv(gym.Env):
    """The delayed-recall task of Haviv, Rivkind & Barak (ICML 2019), one trial per episode.

    ## Description
    An image of class ``label`` is shown at the stimulus time ``t_stim``; every other frame is
    Gaussian noise (the data set's pixel mean and std, fresh at every step, unclipped). At the
    response time ``t_resp`` a trigger channel turns on, and the agent must name the class it
    saw. ``t_stim ~ U{0..t_max-1-min_delay}``, ``t_resp ~ U{t_stim+min_delay..t_max-1}``
    (paper: ``t_max = 20``, ``min_delay = 4``), or a fixed ``delay`` for extrapolation. See
    `memenv.TaskConfig` for the exact distribution.

    ## Observation Space
    ``Box(float32, (P + 1,))``: the frame's P pixels (MNIST/Fashion-MNIST 784; CIFAR-10 3072,
    channel-first flattened), then the trigger (1 at ``t_resp``, else 0). Pixel bounds are
    infinite because the noise is Gaussian.

    ## Action Space
    ``Discrete(11)``: 0 = null ("nothing to report"), k = class k - 1. ``step`` takes an
    integer of any integer type (Python ``int``, numpy signed or unsigned integer scalars,
    0-d integer arrays) in ``[0, 10]``; bools, floats (even ``2.0``), strings, None and arrays
    of other shapes raise `memenv.errors.UsageError` (a ValueError) showing the value and its
    type. `memenv.vector_env.DelayedRecallVectorEnv` applies the same rule element-wise.

    ## Rewards
    ``step(a_t)`` grades the action taken at step t: 1.0 if ``t == t_resp`` and
    ``a_t == label + 1``, else 0.0; minus ``null_penalty`` for a non-null action at any other
    step (default 0). Rewards are Python floats. ``null_weight`` (and so the ReCu curriculum)
    does not change them: it changes only the ``loss_weight`` reported in ``info``.

    ## Starting State
    ``reset`` draws a new trial from ``self.np_random`` and returns frame 0. ``seed`` is None
    or a non-negative integer (any integer type; a bool or other type raises
    `memenv.errors.ArgumentTypeError`, a negative one `memenv.errors.UsageError`).

    ## Episode End
    Terminates after ``n_steps`` actions (``step(a_{n_steps-1})`` returns
    ``terminated=True`` and an all-zero observation). Never truncates.

    ## Info
    On reset and on every step, describing the step whose frame was just returned:
    ``t`` (step index), ``target`` (the correct action now), ``is_response`` (bool),
    ``loss_weight`` (the supervised loss weight of that step), ``t_stim``, ``t_resp``,
    ``label``. After the last step ``t == n_steps``, ``target == 0``, ``loss_weight == 0``.
    ``reward_step`` names the step that the returned reward graded.

    ``loss_weight`` is the sampler's (`memenv.task.DelayedRecallTask.targets`):
    ``null_weight`` at a null step before ``t_max``, ``19 + null_weight`` at ``t_resp``
    (`memenv.config.RESPONSE_WEIGHT` - 1 + ``null_weight``) and 0 at steps ``>= t_max``; with
    the default ``null_weight=1.0``, 1 and 20 as in the paper's loss. It is what a supervised
    learner would weigh that step's cross-entropy by; the env's reward ignores it.

    ## Arguments
    ``gym.make("DelayedRecall-MNIST-v0", **kwargs)`` with any `TaskConfig` field except
    ``dataset`` (``n_steps``, ``t_max``, ``min_delay``, ``n_classes``, ``noise_scale``,
    ``delay``, ``t_stim``, ``split``, ``null_weight``), plus ``root`` and ``download`` (data
    location), ``null_penalty`` and ``render_mode`` (``"rgb_array"``, see Rendering).
    ``reset(options=...)``
    takes None or a dict of the per-episode fields ``n_steps``, ``t_max``, ``min_delay``,
    ``n_classes``, ``noise_scale``, ``delay``, ``t_stim``, ``null_weight``
    (`memenv.config.EPISODE_FIELDS`); they persist until changed again.

    Every argument is checked before any image is loaded, and a refusal names the argument and
    shows the value: a bad value (a bool or float where an integer is due, a negative,
    NaN or infinite number, an unknown string) raises `memenv.errors.UsageError` (a
    ValueError); an unknown keyword, a ``root`` that is not a path or a ``download`` that is
    not a bool raises `memenv.errors.ArgumentTypeError` (a TypeError). Unknown reset options
    or bad option values raise `UsageError`, worded as the vector env words them.

    ## Rendering
    With ``render_mode="rgb_array"``, ``render()`` returns an RGB uint8 image of shape
    ``[H * s + 24 * max(1, s // 4), W * s, 3]`` for ``s = render_scale`` (an attribute,
    default 8; set ``env.unwrapped.render_scale`` to change it; an integer in [1, 64]): the
    current frame upscaled s times (nearest neighbour; 224 x 224 for MNIST, so 272 x 224 in
    all), red border while the trigger is on, over a status strip drawn in a 3x5 pixel font:
    ``T t/n_steps``, ``TRIGGER ON``/``OFF``, ``LABEL`` (the trial's class) and ``ACT`` (the
    last action taken, with the class it names), and a timeline of the trial (stimulus step
    blue, response step red, current step marked). After the last step the frame shows the
    trial's stimulus image, bordered green if the answer at ``t_resp`` was right and orange if
    not, and the strip ``END``, ``RIGHT``/``WRONG``, the label and ``ANS`` (the action taken at
    ``t_resp``). Before the first ``reset`` it is black, its strip saying so. The text needs
    ``render_scale >= 4`` to fit the width (it is clipped below that). Rendering reads the
    frame already drawn for the observation: it draws no noise and changes no episode.

    ## Version History
    * v0: initial version. Later hardening changed no valid episode: actions of unsigned
      integer types are accepted and ``True`` / ``False`` refused, as the vector env does;
      ``download`` must be a bool; seeds, options and keyword arguments are checked up front.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    render_scale: int = RENDER_SCALE
    """Upscaling of rendered frames (see Rendering)."""

    def __init__(
        self,
        dataset: str = "mnist",
        *,
        render_mode: str | None = None,
        null_penalty: float = 0.0,
        root: str | os.PathLike | None = None,
        download: bool = False,
        **task_kwargs: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.null_penalty = check_null_penalty(null_penalty)
        self.task = make_task(make_config(dataset, task_kwargs), root, download)
        self.observation_space = observation_space(self.task)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._spec: TrialSpec | None = None
        self._frames: np.ndarray | None = None
        self._frames_start = -1
        self._t = 0
        self._last_action: int | None = None  # for render()
        self._answer: int | None = None

    @property
    def config(self) -> TaskConfig:
        """The `TaskConfig` the next (or current) episode draws from."""
        return self.task.config

    @property
    def data_source(self) -> str:
        """Where the images came from (full data set files, or the embedded subset)."""
        return self.task.images.source

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        # Everything is checked before the generator is reseeded: a refused reset changes nothing.
        seed = check_seed(seed)
        config = self.config.with_episode_options(options)
        super().reset(seed=seed)
        if config != self.config:
            self.task = self.task.with_config(config)
        self._spec = self.task.sample_spec(1, self.np_random)
        # Trials of paper length are drawn whole; long (extrapolation) trials frame by frame.
        self._frames = None
        self._t = 0
        self._last_action = self._answer = None
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._spec is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._t >= self.config.n_steps:
            raise gym.error.ResetNeeded("the episode has terminated; call reset()")
        action = check_action(action)
        reward = self._reward(action)
        self._last_action = action
        if self._t == int(self._spec.t_resp[0]):
            self._answer = action
        graded = self._t
        self._t += 1
        terminated = self._t >= self.config.n_steps
        obs = np.zeros(self.task.obs_dim, np.float32) if terminated else self._observation()
        info = self._info()
        info["reward_step"] = graded
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        scale = check_render_scale(self.render_scale)
        frame_shape = self.task.images.frame_shape
        spec = self._spec
        if spec is None:
            return trial_image(frame_shape, scale, None)
        view = TrialView(
            t=self._t,
            n_steps=self.config.n_steps,
            t_stim=int(spec.t_stim[0]),
            t_resp=int(spec.t_resp[0]),
            label=int(spec.label[0]),
            last_action=self._last_action,
            answer=self._answer,
        )
        if view.ended:
            obs = stimulus_obs(self.task, int(spec.image_index[0]))
        else:
            obs = self._observation()
        return trial_image(frame_shape, scale, view, obs)

    def _reward(self, action: int) -> float:
        spec = self._spec
        if self._t == int(spec.t_resp[0]):
            return 1.0 if action == int(spec.label[0]) + 1 else 0.0
        return -self.null_penalty if action != 0 else 0.0

    def _observation(self) -> np.ndarray:
        """The frame at step ``self._t``, drawn in chunks of at most `FRAME_CHUNK` steps."""
        chunk_start = self._t - self._t % FRAME_CHUNK
        if self._frames is None or self._frames_start != chunk_start:
            stop = min(chunk_start + FRAME_CHUNK, self.config.n_steps)
            self._frames = self.task.render(self._spec, chunk_start, stop, self.np_random)[0]
            self._frames_start = chunk_start
        return self._frames[self._t - chunk_start].copy()

    def _info(self) -> dict[str, Any]:
        return step_info(self.task, self._spec, self._t)


FRAME_CHUNK = 64
"""Frames are drawn this many steps at a time: a whole paper trial at once, bounded memory for
2,000-step extrapolation trials. The vector env draws each sub-env's frames in the same chunks
from the same generator, so that its sub-env i equals a single env seeded alike."""


def step_info(task: DelayedRecallTask, spec: TrialSpec, t: int) -> dict[str, Any]:
    """The info dict of one trial at step t (batch of 1)."""
    t_resp = int(spec.t_resp[0])
    label = int(spec.label[0])
    is_response = t == t_resp
    if t >= task.config.n_steps:
        weight = 0.0
    else:
        _, weights = task.targets(spec, t, t + 1)
        weight = float(weights[0, 0])
    return {
        "t": t,
        "target": label + 1 if is_response else 0,
        "is_response": is_response,
        "loss_weight": weight,
        "t_stim": int(spec.t_stim[0]),
        "t_resp": t_resp,
        "label": label,
    }
