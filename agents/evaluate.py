"""Retrieval accuracy as a function of delay, in bounded memory.

`evaluate_delays` measures, for each delay ``d``, the share of trials whose answer at the
response step ``t_stim + d`` is the stimulus class (masked argmax over the active vocabulary).

Method: trials are drawn with the task's own sampler (`DelayedRecallTask.sample_spec`) and their
frames rendered window by window (`DelayedRecallTask.render`), with the network state carried
across windows, so memory is ``O(B x window x D)`` whatever the delay. All delays share one
trajectory per trial: the network runs on the trial's noise frames with the trigger off; at
step ``t_stim + d`` it is *branched*: that step's frame, with the trigger on, is fed to a copy of
the state and the answer read out, while the main trajectory goes on with the trigger off.
Each (trial, delay) pair is therefore an exact trial of the task with that delay; trials of
different delays share their image and noise prefix (which makes curves smoother, not biased).
Cost: one pass of ``t_stim + max(delays)`` steps per trial instead of one per delay.

Intervals are Wilson score intervals (95% by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.device import resolve_device
from agents.loss import predictions, response_correct
from agents.protocol import State, map_state
from memenv.config import N_LABELS
from memenv.errors import CorruptFileError, UsageError
from memenv.task import DelayedRecallTask, TrialBatch, TrialSpec

DEFAULT_DELAYS = (
    4,
    5,
    6,
    8,
    10,
    12,
    15,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
)
"""4 .. 2,000, roughly log-spaced (dense inside the trained range 4 .. 19)."""

WINDOW_BYTES = 64 * 2**20
"""Target size of one rendered observation window."""


def wilson_interval(correct, total, z: float = 1.959963984540054):
    """Wilson score interval for a binomial proportion.

    Args:
        correct: Successes (scalar or array).
        total: Trials (same shape; 0 gives the interval [0, 1]).
        z: Normal quantile (default: 95%).

    Returns:
        ``(low, high)`` arrays of the shape of ``correct``.
    """
    k = np.asarray(correct, dtype=np.float64)
    n = np.asarray(total, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return low, high


@dataclass
class DelayAccuracy:
    """Accuracy vs delay of M networks (M = 1 for a single model; M = K for an ensemble).

    Attributes:
        delays: int ``[n_d]``.
        n_trials: int ``[n_d]`` trials per delay (the same trials for every member).
        correct: int ``[M, n_d]``.
        class_trials: int ``[n_d, 10]`` trials per delay and stimulus class.
        class_correct: int ``[M, n_d, 10]``.
        meta: How it was measured (data set, split, data source, t_stim, seed, ...).
    """

    delays: np.ndarray
    n_trials: np.ndarray
    correct: np.ndarray
    class_trials: np.ndarray
    class_correct: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return int(self.correct.shape[0])

    @property
    def accuracy(self) -> np.ndarray:
        """``[M, n_d]``."""
        return self.correct / np.maximum(self.n_trials, 1)

    @property
    def ci(self) -> tuple[np.ndarray, np.ndarray]:
        """95% Wilson interval ``(low [M, n_d], high [M, n_d])``."""
        return wilson_interval(self.correct, self.n_trials[None, :])

    @property
    def class_accuracy(self) -> np.ndarray:
        """``[M, n_d, 10]`` (NaN where a class had no trial)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.class_trials > 0, self.class_correct / self.class_trials, np.nan)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.ci
        return {
            "delays": self.delays.tolist(),
            "n_trials": self.n_trials.tolist(),
            "correct": self.correct.tolist(),
            "accuracy": self.accuracy.tolist(),
            "ci95_low": low.tolist(),
            "ci95_high": high.tolist(),
            "class_trials": self.class_trials.tolist(),
            "class_correct": self.class_correct.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DelayAccuracy:
        return cls(
            delays=np.asarray(data["delays"], dtype=np.int64),
            n_trials=np.asarray(data["n_trials"], dtype=np.int64),
            correct=np.asarray(data["correct"], dtype=np.int64),
            class_trials=np.asarray(data["class_trials"], dtype=np.int64),
            class_correct=np.asarray(data["class_correct"], dtype=np.int64),
            meta=dict(data.get("meta", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Writes the JSON result (atomically)."""
        from agents.checkpoint import write_json

        write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> DelayAccuracy:
        """Reads `save`'s file; a damaged or foreign one is a CorruptFileError naming it."""
        from agents.checkpoint import read_json

        data = read_json(path)
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptFileError(f"{path} is not a delay-accuracy result ({error!r})") from None

    def markdown(self) -> str:
        """A markdown table: delay, accuracy, 95% CI, trials (ensembles: member mean/min/max)."""
        low, high = self.ci
        acc = self.accuracy
        if self.n_members == 1:
            rows = ["| delay | accuracy | 95% CI | trials |", "|---:|---:|---|---:|"]
            for i, d in enumerate(self.delays):
                rows.append(
                    f"| {d} | {acc[0, i]:.3f} | [{low[0, i]:.3f}, {high[0, i]:.3f}] | "
                    f"{self.n_trials[i]} |"
                )
        else:
            rows = [
                "| delay | mean accuracy | min | max | trials per member |",
                "|---:|---:|---:|---:|---:|",
            ]
            for i, d in enumerate(self.delays):
                rows.append(
                    f"| {d} | {acc[:, i].mean():.3f} | {acc[:, i].min():.3f} | "
                    f"{acc[:, i].max():.3f} | {self.n_trials[i]} |"
                )
        return "\n".join(rows)


def evaluate_delays(
    model: torch.nn.Module,
    task: DelayedRecallTask | None = None,
    *,
    dataset: str = "mnist",
    split: str = "test",
    delays: tuple[int, ...] | list[int] = DEFAULT_DELAYS,
    n_trials: int = 1000,
    batch_size: int = 500,
    t_stim: int | None = 0,
    n_classes: int = N_LABELS,
    seed: int = 0,
    device: str | torch.device | None = None,
    window: int | None = None,
    data_root: str | None = None,
    progress: bool = False,
) -> DelayAccuracy:
    """Accuracy as a function of delay, overall and per class, with 95% intervals.

    Args:
        model: A `RecurrentAgent` or an `EnsembleModel` (all members on the same trials).
        task: The task to draw trials from (its images, noise scale, ``min_delay``, ``t_max``
            and ``n_classes``); None loads ``dataset`` / ``split`` with the paper's settings.
        dataset: Used when ``task`` is None.
        split: Used when ``task`` is None (``"test"``: held-out images).
        delays: Delays ``t_resp - t_stim`` to measure (positive ints).
        n_trials: Trials (each used at every delay).
        batch_size: Trials run together.
        t_stim: Stimulus step of every trial; None draws it as in training
            (``U{0, ..., t_max - 1 - min_delay}``).
        n_classes: Active vocabulary (labels and answers); ignored when ``task`` is given.
        seed: Seed of the trials (same seed, same device: same trials for every model).
        device: Where to run: None or the model's device (the model is not moved).
        window: Steps rendered at once; None: as many as fit in 64 MiB.
        data_root: Data folder when ``task`` is None.
        progress: tqdm progress bar over steps.

    Returns:
        A `DelayAccuracy`.
    """
    delays_arr = np.asarray(sorted({int(d) for d in delays}), dtype=np.int64)
    if delays_arr.size == 0 or delays_arr[0] < 1:
        raise UsageError(f"delays must be positive integers, got {list(delays)!r}")
    if n_trials < 1 or batch_size < 1:
        raise UsageError(f"need n_trials >= 1 and batch_size >= 1, got {n_trials}, {batch_size}")
    if task is None:
        from memenv.config import TaskConfig

        task = DelayedRecallTask(
            TaskConfig(dataset=dataset, split=split, n_classes=n_classes), root=data_root
        )
    base = task.config
    max_delay = int(delays_arr[-1])
    latest_stim = base.latest_stim if t_stim is None else int(t_stim)
    # n_steps only has to admit the latest response (and t_max); steps are rendered up to it
    n_steps = max(latest_stim + max_delay + 1, base.t_max)
    eval_task = task.with_config(base.replace(n_steps=n_steps, delay=max_delay, t_stim=t_stim))
    dev = _model_device(model)
    if device is not None and resolve_device(device) != dev:
        raise UsageError(f"device={str(device)!r} but the model is on {dev}; move the model")
    runner = _Runner(model)
    rng = torch.Generator(device=dev).manual_seed(int(seed))
    m = runner.n_members
    correct = np.zeros((m, delays_arr.size), dtype=np.int64)
    class_trials = np.zeros((delays_arr.size, N_LABELS), dtype=np.int64)
    class_correct = np.zeros((m, delays_arr.size, N_LABELS), dtype=np.int64)
    bar = tqdm(total=n_trials, disable=not progress, desc="evaluate", unit="trial")
    done = 0
    with torch.no_grad():
        while done < n_trials:
            b = min(batch_size, n_trials - done)
            spec = eval_task.sample_spec(b, rng)
            spec = TrialSpec(
                spec.label, spec.image_index, spec.t_stim, torch.full_like(spec.t_stim, -1)
            )
            _run_trials(
                runner, eval_task, spec, delays_arr, rng, base.n_classes, window,
                correct, class_trials, class_correct,
            )  # fmt: skip
            done += b
            bar.update(b)
    bar.close()
    meta = {
        "dataset": base.dataset,
        "split": base.split,
        "data_source": task.images.source,
        "t_stim": t_stim,
        "n_classes": base.n_classes,
        "noise_scale": base.noise_scale,
        "trained_delays": [base.min_delay, base.t_max - 1],
        "seed": int(seed),
        "device": str(dev),
    }
    return DelayAccuracy(
        delays_arr, np.full(delays_arr.size, n_trials, dtype=np.int64), correct,
        class_trials, class_correct, meta,
    )  # fmt: skip


class _Runner:
    """Uniform view of single models (adds a member axis) and ensembles."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.stacked = hasattr(model, "n_members") and hasattr(model, "member")
        self.n_members = int(model.n_members) if self.stacked else 1

    def initial_state(self, b: int) -> State:
        return self.model.initial_state(b)

    def forward(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """``obs [B, W, D]`` -> ``(logits [M, B, W, 11], state)``."""
        logits, state = self.model(obs, state)
        return (logits if self.stacked else logits.unsqueeze(0)), state

    def select(self, state: State, rows: torch.Tensor) -> State:
        if self.stacked:
            return map_state(state, lambda part: part[:, rows])
        return map_state(state, lambda part: part[rows])


def _run_trials(
    runner, task, spec, delays, rng, n_classes, window, correct, class_trials, class_correct
):
    device = spec.label.device
    b = spec.batch_size
    d_obs = task.obs_dim
    t_stim = spec.t_stim.cpu().numpy()
    label = spec.label.cpu().numpy()
    branch_steps = np.unique((t_stim[:, None] + delays[None, :]).ravel())
    if window is None:
        window = max(1, WINDOW_BYTES // (4 * b * d_obs))
    storage = torch.empty(b * min(window, int(branch_steps[-1])) * d_obs, device=device)
    state = runner.initial_state(b)
    delay_index = {int(d): i for i, d in enumerate(delays)}
    t = 0
    for s in branch_steps:
        s = int(s)
        while t < s:  # main trajectory up to (not including) the branch step
            w = min(window, s - t)
            obs = task.render(spec, t, t + w, rng, out=storage[: b * w * d_obs].view(b, w, d_obs))
            _, state = runner.forward(obs, state)
            t += w
        frame = task.render(spec, s, s + 1, rng, out=storage[: b * d_obs].view(b, 1, d_obs))
        lag = s - t_stim
        rows_np = np.flatnonzero(np.isin(lag, delays))
        rows = torch.as_tensor(rows_np, device=device)
        probe = frame[rows].clone()
        probe[..., -1] = 1.0  # the trigger: respond now
        logits, _ = runner.forward(probe, runner.select(state, rows))
        pred = predictions(logits[:, :, 0], n_classes).cpu().numpy()  # [M, R]
        hit = pred == (label[rows_np] + 1)[None, :]
        d_idx = np.array([delay_index[int(v)] for v in lag[rows_np]])
        np.add.at(correct, (slice(None), d_idx), hit)
        np.add.at(class_trials, (d_idx, label[rows_np]), 1)
        for m in range(hit.shape[0]):
            np.add.at(class_correct[m], (d_idx, label[rows_np]), hit[m])
        _, state = runner.forward(frame, state)
        t = s + 1


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def batch_correct(
    model: torch.nn.Module, batch: TrialBatch, n_classes: int = N_LABELS
) -> torch.Tensor:
    """Per-trial correctness of a whole-trial batch: bool ``[B]`` (``[K, B]`` for ensembles).

    The batch is run in one ``forward`` call; the answer is the masked argmax at ``t_resp``.
    """
    device = _model_device(model)
    batch = batch.to(device)
    with torch.no_grad():
        logits, _ = model(batch.obs)
    if logits.dim() == 4:
        k = logits.shape[0]
        return response_correct(
            logits, batch.t_resp.expand(k, -1), batch.label.expand(k, -1), n_classes
        )
    return response_correct(logits, batch.t_resp, batch.label, n_classes)


def trained_accuracy(
    model: torch.nn.Module,
    task: DelayedRecallTask,
    n_trials: int = 2000,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Response accuracy on trials of ``task``'s own distribution (e.g. the training
    distribution of delays on held-out images).

    Returns:
        ``{"accuracy", "correct", "n_trials", "ci95": [low, high]}`` (lists per member for
        ensembles).
    """
    device = _model_device(model)
    rng = torch.Generator(device=device).manual_seed(int(seed))
    counts = None
    done = 0
    while done < n_trials:
        b = min(batch_size, n_trials - done)
        hit = batch_correct(model, task.sample(b, rng), task.config.n_classes)
        hits = hit.sum(dim=-1).cpu().numpy().reshape(-1)
        counts = hits if counts is None else counts + hits
        done += b
    low, high = wilson_interval(counts, n_trials)
    acc = counts / n_trials
    if counts.size == 1:
        return {
            "accuracy": float(acc[0]),
            "correct": int(counts[0]),
            "n_trials": n_trials,
            "ci95": [float(low[0]), float(high[0])],
        }
    return {
        "accuracy": acc.tolist(),
        "correct": counts.tolist(),
        "n_trials": n_trials,
        "ci95": [low.tolist(), high.tolist()],
    }


def chance_level(n_classes: int) -> float:
    """Accuracy of guessing among ``n_classes`` classes."""
    return 1.0 / n_classes if n_classes > 0 else math.nan
