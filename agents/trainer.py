"""Supervised training of the reference agents (and of any `RecurrentAgent`).

`train` runs a `TrainConfig` in a run directory (layout: `agents.checkpoint`). It draws every
step's trials with a ``torch.Generator`` on the training device into one reused observation
buffer, applies the curriculum's task changes, minimises the paper's loss in the form of the
model's family (`agents.loss.member_loss`: masked cross-entropy for ``torch`` models, the
authors' loss for ``authors`` ones) with Adam, logs metrics, and writes atomic checkpoints. A run resumes from its directory: the
resume file holds the weights, the optimizer state, the trial generator's state, the schedule's
state and the step, so that on CPU a killed-and-resumed run ends with the same weights as an
uninterrupted one with the same seed.

An optional *penalty* (`TrainingPenalty`, e.g. `analysis.regularizer.SpeedPenalty`) adds a term
to every step's loss; the trainer saves its state with the resume file and logs its value.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from agents import checkpoint as ckpt
from agents.batches import BatchSource, MemberBatch
from agents.config import TrainConfig
from agents.device import resolve_device
from agents.ensemble import build_ensemble, is_ensemble
from agents.loss import member_loss, model_family, response_correct
from agents.models import build_family_model
from agents.protocol import check_agent
from agents.schedule import MemberSchedules, resolve_schedule
from memenv.errors import CorruptFileError, UsageError
from memenv.task import DelayedRecallTask

PENALTY_FILE = "penalty.json"
RESUME_IGNORED_FIELDS = ("device", "tf32")
"""Fields that may differ between a run's saved config and the config it is resumed with."""


@runtime_checkable
class TrainingPenalty(Protocol):
    """An extra loss term for `train` (single models only).

    ``describe()`` is written to ``penalty.json`` in the run directory and must match on
    resume; ``state_dict`` / ``load_state_dict`` travel in the resume file, so a resumed run
    continues the penalty exactly (its own random stream included).
    """

    def __call__(self, model: nn.Module, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(term, value)`` at ``step``: the scalar added to the loss (weight included) and
        the unweighted penalty value that is logged (detached)."""
        ...

    def describe(self) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run directory keeps its last good checkpoint."""


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        run_dir: The run directory.
        model: The trained model (`RecurrentModel`, `EnsembleModel`, `AuthorsModel`,
            `AuthorsEnsemble` or the user's module).
        step: Steps completed.
        finished: Whether ``step == config.total_steps`` (False after ``stop_at_step``).
        last_metrics: The last line written to ``metrics.jsonl`` (None if none yet).
        data_source: Where the training images came from.
        steps_run: Steps this call ran (0 for a run that was already finished).
        seconds: Wall time of those steps, checkpoints included.
    """

    run_dir: Path
    model: nn.Module
    step: int
    finished: bool
    last_metrics: dict[str, Any] | None
    data_source: str
    steps_run: int = 0
    seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        """Training speed of this call (NaN when it ran no step)."""
        return self.steps_run / self.seconds if self.steps_run and self.seconds > 0 else math.nan


def trial_seed(seed: int) -> int:
    """Seed of the trial generator, derived from ``seed`` apart from the weights' seed."""
    return int(np.random.SeedSequence([int(seed), 0x7819A1]).generate_state(1, np.uint64)[0] >> 1)


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    model: nn.Module | None = None,
    schedule: Any | None = None,
    task: DelayedRecallTask | None = None,
    resume: bool | str = "auto",
    progress: bool = True,
    stop_at_step: int | None = None,
    penalty: TrainingPenalty | None = None,
) -> TrainResult:
    """Trains (or resumes) a run.

    Args:
        config: The run's hyperparameters.
        run_dir: The run directory (created if missing).
        model: A user model following `RecurrentAgent` (``n_members`` must be 1), or a stacked
            ensemble; None builds the reference model (or ensemble) of ``config.model_family``
            from ``config``. Must be freshly built with the same seed on resume. The loss is
            the one of the model's family (`agents.loss.model_family`: ``torch`` for a model
            without a ``family`` attribute), whatever ``config.model_family`` says.
        schedule: A schedule object (``at(step) -> dict``) overriding ``config.curriculum``.
        task: The base task; None builds ``config.task_config()`` with its data source.
        resume: ``"auto"`` (resume when the directory holds a run), True (must resume) or
            False (the directory must not hold a run).
        progress: Show a tqdm progress bar.
        stop_at_step: Stop after this many completed steps, without writing ``model.pt``, as if
            the process had been killed there (for tests and time-sliced training).
        penalty: An extra loss term (`TrainingPenalty`); needs a single model. Recorded in
            ``penalty.json``; a resumed run must be given an equal one.

    Returns:
        A `TrainResult`.

    Raises:
        UsageError: bad arguments, or a resume with a different config.
        CorruptFileError: a damaged ``resume.pt`` or ``config.json``; UnsafeFileError: a
            ``resume.pt`` that holds objects other than tensors and plain containers.
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} is a file; choose another path")
    device = resolve_device(config.device)
    for folder in (run_dir, run_dir / ckpt.CHECKPOINT_DIR):
        ckpt.remove_stale_temporaries(folder)
    resume_file = run_dir / ckpt.RESUME_FILE
    has_run = (run_dir / "config.json").is_file()
    if has_run and resume is False:
        raise UsageError(f"{run_dir} already holds a run; pass resume=True or use another dir")
    if resume is True and not resume_file.is_file():
        raise UsageError(f"cannot resume: {resume_file} does not exist")
    if has_run:
        _check_same_config(TrainConfig.from_json(run_dir / "config.json"), config, run_dir)

    if task is None:
        task = DelayedRecallTask(
            config.task_config(), root=config.data_root, download=config.download
        )
    elif task.config != config.task_config():
        raise UsageError(f"task.config {task.config} differs from config.task_config()")
    if model is None:
        model = initial_model(config)
    else:
        check_agent(model)
        if config.n_members != 1 and not is_ensemble(model):
            raise UsageError(
                "TrainConfig.n_members > 1 needs model=None, an EnsembleModel or an AuthorsEnsemble"
            )
    n_members = model.n_members if is_ensemble(model) else 1
    if n_members != config.n_members:
        raise UsageError(f"TrainConfig.n_members={config.n_members} but the model has {n_members}")
    if penalty is not None:
        if not isinstance(penalty, TrainingPenalty):
            raise UsageError(f"penalty must follow TrainingPenalty, got {type(penalty).__name__}")
        if n_members != 1:
            raise UsageError(f"a penalty needs a single model, not {n_members} members")
    _check_same_penalty(run_dir, penalty, has_run)
    model.to(device).train()
    if schedule is None:
        schedule = resolve_schedule(config.curriculum, config.dataset, config.curriculum_scale)
    if schedule is not None and callable(getattr(schedule, "validate", None)):
        schedule.validate(task.config)  # ValueError naming the stage and setting
    loop = _Loop(config, run_dir, model, MemberSchedules(schedule, n_members), task, device)
    loop.penalty = penalty
    if resume_file.is_file() and resume is not False:
        loop.load(resume_file)
    else:
        loop.start()
    with matmul_precision(device, tf32=config.tf32):
        return loop.run(progress=progress, stop_at_step=stop_at_step)


@contextlib.contextmanager
def matmul_precision(device: torch.device, *, tf32: bool) -> Iterator[None]:
    """On CUDA, TensorFloat-32 on (``tf32``) or off for matrix products and cuDNN inside the
    block, the process's previous settings restored after it; on other devices nothing."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def initial_model(config: TrainConfig) -> nn.Module:
    """The reference model (or ensemble) of ``config.model_family`` that ``train`` starts from
    for ``config`` (seeded: member k after ``torch.manual_seed(seed + k)``)."""
    kwargs = dict(
        cell=config.cell,
        hidden_size=config.hidden_size,
        dataset=config.dataset,
        frontend=config.frontend,
    )
    if config.n_members == 1:
        torch.manual_seed(config.seed)
        return build_family_model(config.model_family, **kwargs)
    return build_ensemble(config.model_family, config.member_seeds(), **kwargs)


def _check_same_penalty(run_dir: Path, penalty: TrainingPenalty | None, has_run: bool) -> None:
    if not has_run:
        return
    path = run_dir / PENALTY_FILE
    saved = ckpt.read_json(path) if path.is_file() else None
    given = None if penalty is None else json.loads(json.dumps(penalty.describe()))
    if saved != given:
        raise UsageError(f"{run_dir} was started with penalty {saved!r}, not {given!r}")


def _check_same_config(saved: TrainConfig, config: TrainConfig, run_dir: Path) -> None:
    a, b = saved.to_dict(), config.to_dict()
    differ = sorted(k for k in a if a[k] != b[k] and k not in RESUME_IGNORED_FIELDS)
    if differ:
        detail = ", ".join(f"{k}: saved {a[k]!r} vs given {b[k]!r}" for k in differ)
        raise UsageError(f"{run_dir} was started with another config ({detail})")


class _Loop:
    """The state of one training run between steps."""

    def __init__(self, config, run_dir, model, schedules, task, device) -> None:
        self.config = config
        self.run_dir = run_dir
        self.model = model
        self.schedules = schedules
        self.device = device
        self.n_members = schedules.n_members
        self.ensemble = is_ensemble(model)
        self.member_loss = member_loss(model_family(model))
        self.source = BatchSource(task, self.n_members, config.batch_size, device)
        self.data_source = task.images.source
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=config.adam_eps)
        self.rng = torch.Generator(device=device).manual_seed(trial_seed(config.seed))
        self.step = 0
        self.elapsed = 0.0
        self.last_metrics: dict[str, Any] | None = None
        self.task_now = [task.config] * self.n_members
        self.penalty: TrainingPenalty | None = None
        self._reset_meters()
        # deferred finiteness check on CUDA (no per-step host sync); immediate on CPU
        self.sync_every_step = device.type == "cpu" or schedules.adaptive
        self._first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    # ---------------------------------------------------------------------- run directory
    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(self.run_dir / "config.json", self.config.to_dict())
        ckpt.atomic_write_text(self.run_dir / "metrics.jsonl", "")
        if self.penalty is not None:
            ckpt.write_json(self.run_dir / PENALTY_FILE, self.penalty.describe())
        self._write_status("running")
        self._checkpoint()

    def load(self, path: Path) -> None:
        """Restores the state `_checkpoint` saved (tensors and plain containers only)."""
        state = ckpt.load_tensor_file(path)
        try:
            self._restore(state, path)
        except (KeyError, TypeError, AttributeError, RuntimeError) as error:
            raise CorruptFileError(
                f"{path} is not a resume file this run can continue from "
                f"({type(error).__name__}: {error}); delete it to restart from step 0"
            ) from None
        self._truncate_metrics(self.step)
        self._write_status("running")

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        saved_type = state.get("device_type", "cpu")
        if saved_type != self.device.type:
            raise UsageError(
                f"{path} was written on {saved_type}; resume it on {saved_type} "
                f"(TrainConfig.device), not {self.device.type}: the trial generator's state "
                "is device-specific"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.schedules.load_state_dict(state["schedules"])
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed_s"])
        self.last_metrics = state["last_metrics"]
        meters = state["meters"]
        self.loss_sum = meters["loss_sum"].to(self.device)
        self.correct = meters["correct"].to(self.device)
        self.count = int(meters["count"])
        self.meter_steps = int(meters["steps"])
        self.penalty_sum = meters.get("penalty_sum", self.penalty_sum).to(self.device)
        if self.penalty is not None:
            self.penalty.load_state_dict(state["penalty"])

    def _truncate_metrics(self, step: int) -> None:
        """Drops metric lines a killed run wrote after its last checkpoint."""
        path = self.run_dir / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        kept = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line torn by the kill
                continue
            if record["step"] <= step:
                kept.append(line)
        ckpt.atomic_write_text(path, "".join(line + "\n" for line in kept))

    def _checkpoint(self) -> None:
        """Kept weights file for this step, then the resume file (both atomic)."""
        self._check_finite(force=True)
        record = ckpt.weights_record(self.model, self.step, self.config.to_dict())
        ckpt.atomic_torch_save(record, ckpt.checkpoint_path(self.run_dir, self.step))
        state = {
            "step": self.step,
            "device_type": self.device.type,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
            "schedules": self.schedules.state_dict(),
            "elapsed_s": self.elapsed,
            "last_metrics": self.last_metrics,
            "meters": {
                "loss_sum": self.loss_sum.cpu(),
                "correct": self.correct.cpu(),
                "count": self.count,
                "steps": self.meter_steps,
                "penalty_sum": self.penalty_sum.cpu(),
            },
            "penalty": None if self.penalty is None else self.penalty.state_dict(),
        }
        ckpt.atomic_torch_save(state, self.run_dir / ckpt.RESUME_FILE)

    def _write_status(self, status: str, error: str | None = None) -> None:
        import memenv

        model = self.model
        spec = model.model_spec if self.ensemble else getattr(model, "spec", lambda: None)()
        info = {
            "status": status,
            "step": self.step,
            "total_steps": self.config.total_steps,
            "elapsed_s": round(self.elapsed, 3),
            "data_source": self.data_source,
            "model_spec": spec,
            "model_class": type(model).__name__,
            "model_family": model_family(model),
            "n_members": self.n_members,
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "device": str(self.device),
            "torch": torch.__version__,
            "memenv": memenv.__version__,
            "python": platform.python_version(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if error is not None:
            info["error"] = error
        ckpt.write_json(self.run_dir / "run.json", info)

    # ------------------------------------------------------------------------ the loop
    def run(self, progress: bool, stop_at_step: int | None) -> TrainResult:
        cfg = self.config
        end = cfg.total_steps if stop_at_step is None else min(stop_at_step, cfg.total_steps)
        bar = tqdm(
            total=cfg.total_steps,
            initial=self.step,
            disable=not progress,
            desc=f"train {cfg.cell}-{cfg.hidden_size}",
            unit="step",
            dynamic_ncols=True,
        )
        t0 = time.perf_counter()
        elapsed0 = self.elapsed
        first_step = self.step
        try:
            while self.step < end:
                self._train_step()
                self.step += 1
                self.elapsed = elapsed0 + time.perf_counter() - t0
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.total_steps:
                    self._log()
                    bar.set_postfix(
                        loss=_short(self.last_metrics["loss"]),
                        acc=_short(self.last_metrics["accuracy"]),
                    )
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.total_steps:
                    self._checkpoint()
        except NonFiniteLossError as error:
            self._write_status("failed", str(error))
            raise
        finally:
            bar.close()
        finished = self.step == cfg.total_steps
        if finished:
            record = ckpt.weights_record(self.model, self.step, cfg.to_dict())
            ckpt.atomic_torch_save(record, self.run_dir / ckpt.FINAL_FILE)
        self._write_status("done" if finished else "stopped")
        return TrainResult(
            self.run_dir, self.model, self.step, finished, self.last_metrics, self.data_source,
            steps_run=self.step - first_step, seconds=time.perf_counter() - t0,
        )  # fmt: skip

    def _train_step(self) -> None:
        step = self.step
        batch = self.source.draw(self.schedules.changes_at(step), self.rng)
        lr = self.config.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        logits = self._forward(batch)
        losses = self.member_loss(logits, batch.target, batch.loss_weight, batch.n_classes)
        total = losses.sum()  # parameters are disjoint: each member gets its own loss's gradient
        checked = losses
        if self.penalty is not None:
            term, value = self.penalty(self.model, step)
            total = total + term
            checked = losses + term.detach()  # a non-finite penalty stops the run like the loss
            self.penalty_sum += value.detach()
        self._first_bad = torch.where(
            (self._first_bad < 0) & ~torch.isfinite(checked).all(),
            torch.full_like(self._first_bad, step),
            self._first_bad,
        )
        if self.sync_every_step:
            self._check_finite(checked)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        with torch.no_grad():
            correct = response_correct(logits, batch.t_resp, batch.label, batch.n_classes)
            per_member = correct.sum(dim=1)
            self.loss_sum += losses.detach()
            self.correct += per_member
        self.count += self.config.batch_size
        self.meter_steps += 1
        self.task_now = batch.task_configs
        if self.schedules.adaptive:
            self.schedules.observe(step, per_member.tolist(), self.config.batch_size)

    def _forward(self, batch: MemberBatch) -> torch.Tensor:
        """Outputs ``[K, B, T, 11]`` (logits; the sigmoid outputs of an authors model)."""
        k, b, t = batch.target.shape
        if self.ensemble:
            logits, _ = self.model(batch.obs.view(k, b, t, -1))
            return logits
        logits, _ = self.model(batch.obs)
        return logits.unsqueeze(0)

    def _check_finite(self, losses: torch.Tensor | None = None, force: bool = False) -> None:
        if not (force or self.sync_every_step):
            return
        bad_step = int(self._first_bad)
        if bad_step < 0:
            return
        kept = ckpt.list_checkpoints(self.run_dir)
        last = str(kept[-1][1]) if kept else "none"
        which = ""
        if losses is not None and self.n_members > 1:
            members = torch.nonzero(~torch.isfinite(losses)).flatten().tolist()
            which = f" (member(s) {members})"
        raise NonFiniteLossError(
            f"the loss became NaN or infinite at step {bad_step}{which}; training stopped. "
            f"The last good checkpoint is {last}. Lower the learning rate (TrainConfig.lr) or "
            "check the data, then start a new run."
        )

    def _reset_meters(self) -> None:
        self.loss_sum = torch.zeros(self.n_members, device=self.device)
        self.correct = torch.zeros(self.n_members, dtype=torch.int64, device=self.device)
        self.count = 0
        self.meter_steps = 0
        self.penalty_sum = torch.zeros((), device=self.device)

    def _log(self) -> None:
        self._check_finite(force=True)
        losses = (self.loss_sum / max(self.meter_steps, 1)).tolist()
        accuracy = (self.correct.double() / max(self.count, 1)).tolist()
        task = self.task_now[0]
        line = {
            "step": self.step,
            "loss": losses[0] if self.n_members == 1 else losses,
            "accuracy": accuracy[0] if self.n_members == 1 else accuracy,
            "lr": self.config.lr_at(self.step - 1),
            "n_classes": task.n_classes,
            "t_max": task.t_max,
            "null_weight": task.null_weight,
            "elapsed_s": round(self.elapsed, 3),
        }
        if self.penalty is not None:
            line["penalty"] = float(self.penalty_sum) / max(self.meter_steps, 1)
        if self.schedules.adaptive:
            line["n_classes"] = [c.n_classes for c in self.task_now]
            line["t_max"] = [c.t_max for c in self.task_now]
            line["null_weight"] = [c.null_weight for c in self.task_now]
        with open(self.run_dir / "metrics.jsonl", "a") as stream:
            stream.write(json.dumps(line) + "\n")
        self.last_metrics = line
        self._reset_meters()


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"{sum(value) / len(value):.3f}(mean)"
    return f"{value:.3f}"
