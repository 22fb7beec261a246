"""`DelayedRecallTask`: vectorised sampling of whole delayed-recall trials.

One sampler serves every consumer. It works in numpy (pass an ``np.random.Generator``) or in
torch on any device (pass a ``torch.Generator``; tensors and noise are made on the generator's
device). Nothing loops over trials in Python.

Trials can be drawn whole (`DelayedRecallTask.sample`) or in two stages for long delays:
`sample_spec` draws the per-trial facts (label, image, stimulus and response times) and
`render` draws the frames of any window ``[start, stop)``, so that a 2,000-step trial never
needs a ``B x 2000 x D`` tensor.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from memenv.config import TaskConfig, check_bytes
from memenv.data import ImageSet, check_download, load_images
from memenv.errors import ArgumentTypeError, UsageError

if TYPE_CHECKING:
    import torch

    Generator = np.random.Generator | torch.Generator

# CPU noise is drawn in this many independent pieces, each from its own generator seeded from
# the caller's, so that two cores can share the Gaussian draw (the sampler's main cost) while
# the result stays the same on every machine, whatever its thread count.
CPU_NOISE_PIECES = 4

# What sampling allocates, for the up-front check against `memenv.config.max_bytes`: per trial
# (4 float64 uniforms, 4 int64 facts and their temporaries) and per trial step (int64 target,
# float32 weight and their temporaries), besides the float32 frames themselves.
SPEC_BYTES_PER_TRIAL = 128
TARGET_BYTES_PER_STEP = 32


def check_data_source(root: Any, download: Any) -> None:
    """Refuses a ``root`` that is not a path and a ``download`` that is not a bool.

    Checked before `load_images` touches the file system, so that the envs refuse both with
    the same wording whatever the loader does (it once took ``download="no"`` for True, and
    a NUL character in a path fails inside `pathlib` with a message that names no argument).
    """
    if root is not None:
        if not isinstance(root, str | os.PathLike):
            raise ArgumentTypeError(
                f"root must be None or a path (str or os.PathLike), got {root!r} "
                f"({type(root).__name__})"
            )
        path = os.fspath(root)
        if not isinstance(path, str):
            raise ArgumentTypeError(f"root must be a text path, got {root!r} -> {path!r}")
        if "\x00" in path:
            raise UsageError(f"root must not contain a NUL character, got {path!r}")
    check_download(download)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as an int >= 1 (any integer type; bools and floats refused)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise UsageError(
            f"batch_size must be a positive integer, got {batch_size!r} "
            f"({type(batch_size).__name__})"
        )
    if batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


@dataclass
class TrialSpec:
    """Per-trial facts, all ``[B]`` int64 (numpy arrays or torch tensors)."""

    label: Any
    image_index: Any
    t_stim: Any
    t_resp: Any

    @property
    def batch_size(self) -> int:
        return int(self.label.shape[0])


@dataclass
class TrialBatch:
    """A batch of whole trials (numpy arrays or torch tensors).

    Attributes:
        obs: float32 ``[B, T, P + 1]``: pixels, then the trigger.
        target: int64 ``[B, T]``: 0 (null) except ``label + 1`` at ``t_resp``.
        loss_weight: float32 ``[B, T]``: ``null_weight`` (default 1) at null steps before
            ``t_max``, ``RESPONSE_WEIGHT - 1 + null_weight`` (default 20) at ``t_resp``, 0
            elsewhere (see `memenv.TaskConfig.null_weight`).
        t_stim: int64 ``[B]``.
        t_resp: int64 ``[B]``.
        label: int64 ``[B]``: the stimulus class (0-9).
    """

    obs: Any
    target: Any
    loss_weight: Any
    t_stim: Any
    t_resp: Any
    label: Any

    def __post_init__(self) -> None:
        b, t, _ = self.obs.shape
        for name in ("target", "loss_weight"):
            if tuple(getattr(self, name).shape) != (b, t):
                raise UsageError(
                    f"{name} has shape {tuple(getattr(self, name).shape)}, want {(b, t)}"
                )
        for name in ("t_stim", "t_resp", "label"):
            if tuple(getattr(self, name).shape) != (b,):
                raise UsageError(
                    f"{name} has shape {tuple(getattr(self, name).shape)}, want {(b,)}"
                )

    @property
    def batch_size(self) -> int:
        return int(self.obs.shape[0])

    def to(self, device: Any) -> TrialBatch:
        """The same batch as torch tensors on ``device``."""
        import torch

        def move(x):
            x = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
            return x.to(device)

        return TrialBatch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


class DelayedRecallTask:
    """Samples trials of a `TaskConfig` from an `ImageSet`.

    Args:
        config: The trial distribution.
        images: The image pool; loaded from ``config.dataset`` / ``config.split`` if omitted.
        root: Data folder passed to `load_images` when ``images`` is omitted.
        download: Passed to `load_images`.
    """

    def __init__(
        self,
        config: TaskConfig,
        images: ImageSet | None = None,
        root: str | os.PathLike | None = None,
        download: bool = False,
    ) -> None:
        if not isinstance(config, TaskConfig):
            raise UsageError(f"config must be a TaskConfig, got {type(config).__name__}")
        if images is None:
            check_data_source(root, download)
            images = load_images(config.dataset, config.split, root=root, download=bool(download))
        elif not isinstance(images, ImageSet):
            raise UsageError(f"images must be an ImageSet or None, got {type(images).__name__}")
        if (images.dataset, images.split) != (config.dataset, config.split):
            raise UsageError(
                f"images are {images.dataset}/{images.split} but the config asks for "
                f"{config.dataset}/{config.split}"
            )
        self.config = config
        self.images = images
        self._device_images: dict[str, Any] = {}

    def with_config(self, config: TaskConfig) -> DelayedRecallTask:
        """A task for ``config`` sharing this task's images (same data set and split)."""
        task = DelayedRecallTask(config, self.images)
        task._device_images = self._device_images
        return task

    @property
    def n_pixels(self) -> int:
        return self.images.n_pixels

    @property
    def obs_dim(self) -> int:
        """P + 1: the pixels and the trigger."""
        return self.images.n_pixels + 1

    # ----------------------------------------------------------------------------- sampling
    def sample(self, batch_size: int, rng: Generator, obs_out: Any = None) -> TrialBatch:
        """Whole trials of ``config.n_steps`` steps.

        Args:
            batch_size: B.
            rng: ``np.random.Generator`` (numpy result) or ``torch.Generator`` (torch result on
                the generator's device).
            obs_out: Optional ``[B, n_steps, P + 1]`` float32 buffer to fill in place (saves an
                allocation per batch in training loops).

        Raises:
            UsageError: a bad ``batch_size``, or a batch whose arrays would exceed
                `memenv.config.max_bytes` (4 GiB unless ``$MEMENV_MAX_BYTES`` says otherwise);
                the size is computed and refused before anything is allocated.
        """
        batch_size = check_batch_size(batch_size)
        n_steps = self.config.n_steps
        values = batch_size * n_steps * self.obs_dim
        check_bytes(
            batch_size * (SPEC_BYTES_PER_TRIAL + n_steps * TARGET_BYTES_PER_STEP)
            + self._frame_bytes(values, rng, obs_out is None),
            f"sample(batch_size={batch_size}) of {n_steps}-step trials (obs float32 "
            f"[{batch_size}, {n_steps}, {self.obs_dim}])",
        )
        spec = self.sample_spec(batch_size, rng)
        obs = self.render(spec, 0, self.config.n_steps, rng, out=obs_out)
        target, weight = self.targets(spec, 0, self.config.n_steps)
        return TrialBatch(obs, target, weight, spec.t_stim, spec.t_resp, spec.label)

    def sample_spec(self, batch_size: int, rng: Generator) -> TrialSpec:
        """Draws labels, images, stimulus and response times for ``batch_size`` trials."""
        batch_size = check_batch_size(batch_size)
        check_bytes(batch_size * SPEC_BYTES_PER_TRIAL, f"sample_spec(batch_size={batch_size})")
        return self.spec_from_uniforms(trial_uniforms(batch_size, rng))

    def spec_from_uniforms(self, u_4xb: Any) -> TrialSpec:
        """Trial facts from the `trial_uniforms` ``[4, B]`` (numpy or torch float64).

        Integers are ``floor(u * n)``, whose bias in float64 is below 1e-15.
        """
        cfg = self.config

        def uniform_int(u: Any, n: Any) -> Any:
            scaled = u * n
            ints = scaled.astype(np.int64) if isinstance(scaled, np.ndarray) else scaled.long()
            return (ints < n - 1) * ints + (ints >= n - 1) * (n - 1)  # guards u * n rounding to n

        n_per = self.images.n_per_class
        label = uniform_int(u_4xb[0], cfg.n_classes)
        image_index = label * n_per + uniform_int(u_4xb[1], n_per)
        if cfg.t_stim is not None:
            t_stim = label * 0 + cfg.t_stim
        else:
            t_stim = uniform_int(u_4xb[2], cfg.latest_stim + 1)
        if cfg.delay is not None:
            t_resp = t_stim + cfg.delay
        else:  # uniform on {t_stim + min_delay, ..., t_max - 1}
            span = cfg.t_max - cfg.min_delay - t_stim
            t_resp = t_stim + cfg.min_delay + uniform_int(u_4xb[3], span)
        return TrialSpec(label, image_index, t_stim, t_resp)

    def render(self, spec: TrialSpec, start: int, stop: int, rng: Generator, out: Any = None):
        """Frames ``[start, stop)`` of the trials in ``spec``: float32 ``[B, stop - start, P + 1]``.

        Noise is drawn afresh from ``rng`` for every call. Rendering a long trial window by window
        gives the same distribution as rendering it at once, in bounded memory.
        """
        for name, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise UsageError(f"{name} must be an integer, got {value!r}")
        if not 0 <= start < stop:
            raise UsageError(f"need 0 <= start < stop, got start={start!r}, stop={stop!r}")
        shape = (spec.batch_size, int(stop - start), self.obs_dim)
        if out is not None and tuple(out.shape) != shape:
            raise UsageError(f"out has shape {tuple(out.shape)}, want {shape}")
        check_bytes(
            self._frame_bytes(shape[0] * shape[1] * shape[2], rng, out is None),
            f"render of {shape[0]} trials x {shape[1]} steps (float32 {list(shape)})",
        )
        obs = self.noise(shape, rng, out=out)
        self.place(obs, spec, start)
        return obs

    @staticmethod
    def _frame_bytes(n_values: int, rng: Any, allocate: bool) -> int:
        """Bytes that drawing ``n_values`` frame values takes: the float32 frames unless a
        buffer is given, plus, in numpy, `gaussian_fill`'s float32 uniforms (as many)."""
        per_value = (4 if allocate else 0) + (4 if isinstance(rng, np.random.Generator) else 0)
        return n_values * per_value

    def noise(self, shape: tuple[int, ...], rng: Generator, out: Any = None):
        """Noise frames of ``shape`` (float32), mean = pixel mean, std = pixel std * noise_scale."""
        mean, std = self._noise_mean_std()
        if isinstance(rng, np.random.Generator):
            if out is None:
                out = np.empty(shape, dtype=np.float32)
            gaussian_fill(rng, out, mean, std)
            return out
        import torch

        _check_torch_generator(rng)
        if out is None:
            out = torch.empty(shape, dtype=torch.float32, device=rng.device)
        if rng.device.type != "cpu" or out.numel() < 1 << 16:
            return out.normal_(mean, std, generator=rng)
        seeds = torch.randint(0, 2**62, (CPU_NOISE_PIECES,), generator=rng).tolist()
        pieces = out.view(-1).tensor_split(CPU_NOISE_PIECES)

        def fill(indices: range) -> None:
            for i in indices:
                pieces[i].normal_(mean, std, generator=torch.Generator().manual_seed(seeds[i]))

        run_split(fill, CPU_NOISE_PIECES)  # torch releases the GIL in normal_
        return out

    def noise_rows(self, rngs: Sequence[np.random.Generator], out_bxn: np.ndarray) -> np.ndarray:
        """Row ``i`` of ``out_bxn`` gets ``noise(out_bxn[i].shape, rngs[i])``, drawn in bulk.

        The rows are split over `NOISE_THREADS` threads; each keeps its own generator, so the
        values do not depend on the split (numpy releases the GIL while drawing).
        """
        mean, std = self._noise_mean_std()
        if len(rngs) != out_bxn.shape[0]:
            raise UsageError(
                f"need one generator per row: {len(rngs)} generators for {out_bxn.shape[0]} rows"
            )

        def fill(rows: range) -> None:
            gaussian_fill_rows(
                rngs[rows.start : rows.stop], out_bxn[rows.start : rows.stop], mean, std
            )

        run_split(fill, len(rngs))
        return out_bxn

    def _noise_mean_std(self) -> tuple[float, float]:
        return self.images.pixel_mean, self.images.pixel_std * float(self.config.noise_scale)

    def place(self, obs: Any, spec: TrialSpec, start: int) -> None:
        """Writes the stimulus images and the trigger into the window ``obs`` (step ``start`` on)."""
        if isinstance(obs, np.ndarray):
            self._place_numpy(obs, spec, start)
        elif obs.device.type == "cpu":
            # numpy writes through the CPU tensor's memory on one thread. torch's indexing
            # would wake its OpenMP pool, whose spinning threads then slow the next batch's
            # noise draw on the same cores by about half.
            spec_numpy = TrialSpec(
                spec.label.numpy(),
                spec.image_index.numpy(),
                spec.t_stim.numpy(),
                spec.t_resp.numpy(),
            )
            self._place_numpy(obs.numpy(), spec_numpy, start)
        else:
            self._place_torch(obs, spec, start)

    def _place_numpy(self, obs: np.ndarray, spec: TrialSpec, start: int) -> None:
        n_pixels = self.n_pixels
        window = obs.shape[1]
        obs[..., n_pixels] = 0.0
        rows = np.arange(spec.batch_size)
        stim = spec.t_stim - start
        hit = (stim >= 0) & (stim < window)
        if hit.any():
            pixels = self.images.images_nxp[spec.image_index[hit]]
            obs[rows[hit], stim[hit], :n_pixels] = pixels * np.float32(1 / 255)
        resp = spec.t_resp - start
        hit = (resp >= 0) & (resp < window)
        obs[rows[hit], resp[hit], n_pixels] = 1.0

    def _place_torch(self, obs: Any, spec: TrialSpec, start: int) -> None:
        import torch

        n_pixels = self.n_pixels
        window = obs.shape[1]
        obs[..., n_pixels] = 0.0
        rows = torch.arange(spec.batch_size, device=obs.device)
        stim = spec.t_stim - start
        hit = ((stim >= 0) & (stim < window)).nonzero().squeeze(1)
        if hit.numel():
            pixels = self._images_on(obs.device)[spec.image_index[hit]]
            obs[rows[hit], stim[hit], :n_pixels] = pixels.float().mul_(1 / 255)
        resp = spec.t_resp - start
        hit = ((resp >= 0) & (resp < window)).nonzero().squeeze(1)
        obs[rows[hit], resp[hit], n_pixels] = 1.0

    def targets(self, spec: TrialSpec, start: int, stop: int):
        """``(target [B, W] int64, loss_weight [B, W] float32)`` for steps ``[start, stop)``.

        The loss weight is ``config.null_weight`` at null steps before ``t_max`` (1 in the
        paper), ``config.response_weight`` (``RESPONSE_WEIGHT - 1 + null_weight``, 20 in the
        paper) at the response and 0 at steps ``>= t_max``.
        """
        cfg = self.config
        null_weight, response_weight = cfg.null_weight, cfg.response_weight
        if isinstance(spec.label, np.ndarray):
            steps = np.arange(start, stop)[None, :]
            is_resp = steps == spec.t_resp[:, None]
            target = np.where(is_resp, spec.label[:, None] + 1, 0).astype(np.int64)
            weight = np.where(steps < cfg.t_max, np.float32(null_weight), np.float32(0.0))
            weight = np.where(is_resp, np.float32(response_weight), weight).astype(np.float32)
            return target, weight
        import torch

        steps = torch.arange(start, stop, device=spec.label.device)[None, :]
        is_resp = steps == spec.t_resp[:, None]
        target = torch.where(is_resp, spec.label[:, None] + 1, 0)
        weight = (steps < cfg.t_max).float()
        if null_weight != 1.0:
            weight = weight * null_weight
        weight = torch.where(is_resp, response_weight, weight.expand(spec.batch_size, -1))
        return target, weight

    def _images_on(self, device: Any):
        import torch

        key = str(device)
        if key not in self._device_images:
            self._device_images[key] = torch.from_numpy(self.images.images_nxp).to(device)
        return self._device_images[key]

    @cached_property
    def mean_frame(self) -> np.ndarray:
        """The expected noise frame with the trigger off: float32 ``[P + 1]``."""
        frame = np.full(self.obs_dim, self.images.pixel_mean, dtype=np.float32)
        frame[-1] = 0.0
        return frame


def trial_uniforms(batch_size: int, rng: Generator) -> Any:
    """The ``[4, B]`` float64 uniforms that decide ``B`` trials (label, image, t_stim, t_resp).

    One generator call per batch in both backends: it keeps batch-of-one sampling, which the
    Gymnasium envs do for every episode, cheap.
    """
    if isinstance(rng, np.random.Generator):
        return rng.random((4, batch_size))
    import torch

    _check_torch_generator(rng)
    return torch.rand((4, batch_size), dtype=torch.float64, generator=rng, device=rng.device)


def gaussian_fill(rng: np.random.Generator, out: np.ndarray, mean: float, std: float) -> None:
    """Fills the C-contiguous float32 ``out`` with N(mean, std^2) draws (Box-Muller).

    numpy's float32 ziggurat runs at about 9 ns a draw on this project's 2-core reference
    machine; Box-Muller on float32 uniforms takes about 3 ns, the same method as torch's CPU
    ``normal_``. Uniforms on a 2^-24 grid bound |z| by 5.8 (a 7e-9 tail per draw).
    """
    gaussian_fill_rows([rng], out.reshape(1, -1), mean, std)


GAUSSIAN_BLOCK_BYTES = 1 << 20
"""`gaussian_fill_rows` transforms about this many bytes of uniforms at a time: the ten passes
of Box-Muller then run in a core's L2 cache instead of main memory."""


def gaussian_fill_rows(
    rngs: Sequence[np.random.Generator], out_bxn: np.ndarray, mean: float, std: float
) -> None:
    """Row ``i`` of the float32 ``out_bxn`` gets exactly what ``gaussian_fill(rngs[i], row)`` gives.

    The uniforms are drawn row by row, each from its own generator, and transformed for a
    block of rows at once, which saves the per-call overhead of small arrays (the vector env
    draws a few thousand numbers per sub-env).
    """
    b, n = out_bxn.shape
    if len(rngs) != b:
        raise UsageError(f"need one generator per row: {len(rngs)} generators for {b} rows")
    half = (n + 1) // 2
    rows_per_block = max(1, GAUSSIAN_BLOCK_BYTES // (8 * half))
    for start in range(0, b, rows_per_block):
        stop = min(start + rows_per_block, b)
        uniform = np.empty((stop - start, 2, half), dtype=np.float32)
        for row, rng in zip(uniform, rngs[start:stop], strict=True):
            rng.random(out=row, dtype=np.float32)
        _box_muller(uniform, out_bxn[start:stop], mean, std)


def _box_muller(uniform_bx2xh: np.ndarray, out_bxn: np.ndarray, mean: float, std: float) -> None:
    """Row-wise Box-Muller: cosines fill the first ``h`` columns, sines the rest (in place)."""
    n = out_bxn.shape[1]
    half = uniform_bx2xh.shape[2]
    radius, angle = uniform_bx2xh[:, 0], uniform_bx2xh[:, 1]
    np.subtract(np.float32(1), radius, out=radius)  # (0, 1]: log stays finite
    np.log(radius, out=radius)
    radius *= np.float32(-2)
    np.sqrt(radius, out=radius)
    radius *= np.float32(std)
    angle *= np.float32(2 * np.pi)
    np.cos(angle, out=out_bxn[:, :half])
    out_bxn[:, :half] *= radius
    np.sin(angle, out=angle)
    np.multiply(angle[:, : n - half], radius[:, : n - half], out=out_bxn[:, half:])
    out_bxn += np.float32(mean)


def _check_torch_generator(rng: Any) -> None:
    import torch

    if not isinstance(rng, torch.Generator):
        raise UsageError(
            f"rng must be a numpy.random.Generator or a torch.Generator, got {type(rng).__name__}"
        )


NOISE_THREADS = 2
"""Threads that share a noise draw: this project's reference machine has 2 cores."""

_POOL: ThreadPoolExecutor | None = None


def run_split(fill: Callable[[range], None], n: int) -> None:
    """Calls ``fill`` on `NOISE_THREADS` contiguous ranges that cover ``range(n)``, at once.

    The calling thread takes the first range itself instead of waiting for the pool: one
    hand-over fewer per draw, and no thread idles while the cores are busy.
    """
    bounds = np.linspace(0, n, max(1, min(NOISE_THREADS, n)) + 1).astype(int)
    parts = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    futures = [_thread_pool().submit(fill, part) for part in parts[1:]]
    try:
        fill(parts[0])
    finally:
        for future in futures:
            future.result()


def _thread_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=NOISE_THREADS - 1)
    return _POOL
