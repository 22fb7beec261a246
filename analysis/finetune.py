"""Speed-regularised fine-tuning of a trained run (`regularize_run`) and training from scratch
with the penalty (`train_with_speed_penalty`).

`regularize_run` never touches the source run. It writes a new run directory (an ordinary
`agents.train` run, started from the source's weights) plus:

* ``source.json``: the source run, member and step;
* ``anchors.npz``: the fixed anchors (`analysis.regularizer.Anchors`), computed once;
* ``accuracy_before.json`` / ``accuracy_after.json``: accuracy vs delay on held-out images,
  the same trials before and after (a paired comparison);
* ``regularize.json``: the summary (speeds at the anchors before and after, accuracies);
* ``accuracy_before_after.png`` and ``summary.md``.

Every piece is written when finished, so a killed call resumes where it stopped.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_json, read_jsonl
from analysis.regularizer import (
    PAPER_LAMBDA,
    PAPER_NOISE_DRAWS,
    Anchors,
    SpeedPenalty,
    anchor_speeds,
    check_lam,
    check_mode,
    compute_anchors,
)
from memenv.errors import MissingFileError, UsageError

FINETUNE_PRESETS = ("paper", "fast")
EVAL_DELAYS = (4, 10, 19, 40, 100, 200, 500, 1000, 2000)
"""Delays of the before/after evaluation: inside the trained range 4..19, then 2x to 100x."""


@dataclass(frozen=True)
class RegularizeConfig:
    """One speed-regularised fine-tuning (docs/paper.md, "The speed regulariser").

    Attributes:
        mode: Anchors: ``"center"`` (paper's choice), ``"slow"`` or ``"control"`` (lam = 0).
        lam: Penalty weight; None = the paper's for the data set (`PAPER_LAMBDA`), 0 for
            ``control``.
        lr: Adam learning rate (paper: 1e-5 MNIST, 1e-4 CIFAR-10), constant.
        total_steps: Fine-tuning steps (paper: 5,000).
        n_noise: Noise frames per anchor per step (paper: 10).
        recompute_every: Recompute the anchors every this many steps (None: fixed, as in the
            paper).
        seed: Seeds the fine-tuning trials and the penalty's noise.
        n_per_class: Trials per class for the centres of mass (paper: 100).
        settle_steps: Steps from image to centre state (paper: 15).
        eval_delays: Delays of the before/after evaluation.
        eval_trials: Trials per delay of that evaluation.
        evaluate: Run the before/after evaluation.
        checkpoint_every: Steps between kept checkpoints.
        log_every: Steps between metrics lines.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    mode: str = "center"
    lam: float | None = None
    lr: float = 1e-5
    total_steps: int = 5_000
    n_noise: int = PAPER_NOISE_DRAWS
    recompute_every: int | None = None
    seed: int = 0
    n_per_class: int = 100
    settle_steps: int = 15
    eval_delays: tuple[int, ...] = EVAL_DELAYS
    eval_trials: int = 1000
    evaluate: bool = True
    checkpoint_every: int = 1_000
    log_every: int = 50
    device: str = "auto"

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.lam is not None:
            check_lam(self.lam, self.mode)
        for name in ("total_steps", "n_noise", "n_per_class", "settle_steps", "eval_trials"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(
                    f"RegularizeConfig.{name} must be a positive integer, got {value!r}"
                )
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise UsageError(f"RegularizeConfig.lr must be a positive number, got {self.lr!r}")
        if not self.eval_delays or any(int(d) < 1 for d in self.eval_delays):
            raise UsageError(f"eval_delays must be positive integers, got {self.eval_delays!r}")

    def lam_for(self, dataset: str) -> float:
        """The weight used on ``dataset``."""
        if self.mode == "control":
            return 0.0
        return PAPER_LAMBDA[dataset] if self.lam is None else float(self.lam)

    def replace(self, **changes: Any) -> RegularizeConfig:
        return replace(self, **changes)


def finetune_preset(name: str, dataset: str = "mnist", **overrides: Any) -> RegularizeConfig:
    """``paper``: 5,000 steps at lr 1e-5 (MNIST) / 1e-4 (CIFAR-10), the paper's lambda.
    ``fast``: for `agents.preset("fast")` runs: 1,000 steps at lr 1e-4 (the fast preset's
    final learning rate), the paper's lambda."""
    if name not in FINETUNE_PRESETS:
        raise UsageError(f"preset must be one of {FINETUNE_PRESETS}, got {name!r}")
    if name == "paper":
        values: dict[str, Any] = {
            "total_steps": 5_000,
            "lr": 1e-4 if dataset == "cifar10" else 1e-5,
        }
    else:
        values = {"total_steps": 1_000, "lr": 1e-4, "checkpoint_every": 250}
    values.update(overrides)
    return RegularizeConfig(**values)


@dataclass
class RegularizeResult:
    """What `regularize_run` found (also in ``regularize.json``)."""

    out_dir: Path
    source: dict[str, Any]
    config: dict[str, Any]
    lam: float
    anchors: Anchors
    speeds_before: np.ndarray
    speeds_after: np.ndarray
    penalty_first: float | None
    penalty_last: float | None
    slow_speeds_before: np.ndarray | None = None
    slow_speeds_after: np.ndarray | None = None
    accuracy_before: Any = None
    accuracy_after: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def acc(result: Any) -> dict[str, float] | None:
            if result is None:
                return None
            return {
                str(d): float(a) for d, a in zip(result.delays, result.accuracy[0], strict=True)
            }

        return {
            "source": self.source,
            "config": self.config,
            "lam": self.lam,
            "mode": self.anchors.mode,
            "anchor_classes": self.anchors.classes.tolist(),
            "speeds_before": _list(self.speeds_before),
            "speeds_after": _list(self.speeds_after),
            "mean_speed_before": _nanmean(self.speeds_before),
            "mean_speed_after": _nanmean(self.speeds_after),
            "penalty_first": self.penalty_first,
            "penalty_last": self.penalty_last,
            "slow_speeds_before": _maybe_list(self.slow_speeds_before),
            "slow_speeds_after": _maybe_list(self.slow_speeds_after),
            "mean_slow_speed_before": _maybe_mean(self.slow_speeds_before),
            "mean_slow_speed_after": _maybe_mean(self.slow_speeds_after),
            "accuracy_before": acc(self.accuracy_before),
            "accuracy_after": acc(self.accuracy_after),
            "info": self.info,
        }


def _list(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def _maybe_list(values: np.ndarray | None) -> list[float | None] | None:
    return None if values is None else _list(values)


def _maybe_mean(values: np.ndarray | None) -> float | None:
    return None if values is None else _nanmean(values)


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def default_out_dir(run_dir: str | Path, mode: str, member: int | None = None) -> Path:
    """``<run_dir>-<mode>`` beside the source (``<run_dir>-m<k>-<mode>`` for a member)."""
    run_dir = Path(run_dir)
    tag = f"-m{member}" if member is not None else ""
    return run_dir.with_name(f"{run_dir.name}{tag}-{mode}")


def regularize_run(
    run_dir: str | Path,
    config: RegularizeConfig | None = None,
    out_dir: str | Path | None = None,
    *,
    member: int | None = None,
    progress: bool = True,
    figures: bool = True,
    before_file: str | Path | None = None,
) -> RegularizeResult:
    """Fine-tunes a trained run with the speed penalty into a new run directory.

    Args:
        run_dir: A finished run of `agents.train` (its ``model.pt``; never modified).
        config: The fine-tuning; default `RegularizeConfig()` (the paper's MNIST settings).
        out_dir: The new run directory; default `default_out_dir`. Must not be, or lie inside,
            ``run_dir``.
        member: For an ensemble run, the member to fine-tune (required there).
        progress: tqdm bars.
        figures: Write the before/after figure.
        before_file: Where to keep (and find) the source's before-evaluation, so that several
            fine-tunings of one source evaluate it once; default ``out_dir``'s own file.

    Returns:
        A `RegularizeResult`; a finished ``out_dir`` is read back, not redone.
    """
    from agents.checkpoint import checkpoint_step, load_model, write_json
    from agents.config import TrainConfig
    from agents.trainer import train

    config = config or RegularizeConfig()
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise MissingFileError(f"{run_dir} holds no finished run (no model.pt)")
    source_config = TrainConfig.from_json(run_dir / "config.json")
    if source_config.n_members > 1 and member is None:
        raise UsageError(f"{run_dir} is an ensemble of {source_config.n_members}; pass member")
    out_dir = (
        Path(out_dir) if out_dir is not None else default_out_dir(run_dir, config.mode, member)
    )
    if out_dir.resolve() == run_dir.resolve() or run_dir.resolve() in out_dir.resolve().parents:
        raise UsageError(f"out_dir {out_dir} must lie outside the source run {run_dir}")
    lam = config.lam_for(source_config.dataset)
    before_file = Path(before_file) if before_file else out_dir / "accuracy_before.json"
    ft_config = source_config.replace(
        total_steps=config.total_steps,
        lr=float(config.lr),
        lr_decay_step=None,
        curriculum="none",
        curriculum_scale=1.0,
        n_members=1,
        seed=config.seed,
        checkpoint_every=min(config.checkpoint_every, config.total_steps),
        log_every=min(config.log_every, config.total_steps),
        device=config.device,
        split="train",
    )
    source = {
        "run_dir": str(run_dir),
        "member": member,
        "step": checkpoint_step(run_dir),
        "cell": source_config.cell,
        "hidden_size": source_config.hidden_size,
        "curriculum": source_config.curriculum,
        "seed": source_config.seed + (member or 0),
    }
    summary_file = out_dir / "regularize.json"
    if summary_file.is_file():
        return _load_result(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "source.json", {"source": source, "regularize": _config_dict(config)})

    from agents.device import resolve_device

    device = resolve_device(config.device)

    source_model = load_model(run_dir, member=member, device=device)  # read once; never trained

    from memenv import DelayedRecallTask

    train_task = DelayedRecallTask(
        ft_config.task_config(), root=ft_config.data_root, download=ft_config.download
    )
    anchors_file = out_dir / "anchors.npz"
    if anchors_file.is_file():
        anchors = Anchors.load(anchors_file)
    else:
        anchors = compute_anchors(
            source_model, train_task, config.mode, n_per_class=config.n_per_class,
            settle_steps=config.settle_steps, seed=config.seed,
        )  # fmt: skip
        anchors.save(anchors_file)
    penalty = SpeedPenalty(
        anchors, train_task, lam, n_noise=config.n_noise,
        recompute_every=config.recompute_every, seed=config.seed,
        n_per_class=config.n_per_class, settle_steps=config.settle_steps,
    )  # fmt: skip
    started = time.perf_counter()
    result = train(
        ft_config, out_dir, model=copy.deepcopy(source_model), task=train_task, penalty=penalty,
        progress=progress,
    )  # fmt: skip
    # held-out images for the evaluation; the anchors come from the training images
    test_task = DelayedRecallTask(
        train_task.config.replace(split="test"),
        root=ft_config.data_root,
        download=ft_config.download,
    )
    before = after = None
    if config.evaluate:
        before = _evaluate(source_model, test_task, config, before_file)
        before.save(out_dir / "accuracy_before.json")
        after = _evaluate(result.model, test_task, config, out_dir / "accuracy_after.json")
    metrics = _metrics(out_dir)
    outcome = RegularizeResult(
        out_dir=out_dir,
        source=source,
        config=_config_dict(config),
        lam=lam,
        anchors=anchors,
        speeds_before=anchor_speeds(source_model, anchors, train_task),
        speeds_after=anchor_speeds(result.model, anchors, train_task),
        penalty_first=metrics[0].get("penalty") if metrics else None,
        penalty_last=metrics[-1].get("penalty") if metrics else None,
        # mode "slow": the anchors are exactly these points (same network, settings and seed)
        slow_speeds_before=anchors.speeds
        if config.mode == "slow"
        else _slow_speeds(source_model, train_task, config),
        slow_speeds_after=_slow_speeds(result.model, train_task, config),
        accuracy_before=before,
        accuracy_after=after,
        info={
            "data_source": result.data_source,
            "wall_s": round(time.perf_counter() - started, 2),
            "recomputed_anchors": penalty.history,
        },
    )
    if figures and before is not None:
        _write_figure(outcome)
    (out_dir / "summary.md").write_text(summary_markdown(outcome))
    write_json(summary_file, outcome.to_dict())
    return outcome


def _slow_speeds(model: Any, task: Any, config: RegularizeConfig) -> np.ndarray:
    """Per class, the speed of the slow point found from the network's own centre of mass
    (the paper's speed; unlike the fixed anchors, it follows the network as it changes)."""
    anchors = compute_anchors(
        model, task, "slow", n_per_class=config.n_per_class, settle_steps=config.settle_steps,
        seed=config.seed,
    )  # fmt: skip
    return anchors.speeds


def _config_dict(config: RegularizeConfig) -> dict[str, Any]:
    data = asdict(config)
    data["eval_delays"] = list(config.eval_delays)
    return data


def _evaluate(model: Any, task: Any, config: RegularizeConfig, path: Path) -> Any:
    from agents.evaluate import DelayAccuracy, evaluate_delays

    if path.is_file():
        cached = DelayAccuracy.load(path)
        same = cached.delays.tolist() == sorted(set(config.eval_delays)) and int(
            cached.n_trials[0]
        ) == int(config.eval_trials)
        if same:
            return cached
    result = evaluate_delays(
        model, task, delays=config.eval_delays, n_trials=config.eval_trials, t_stim=0, seed=12345
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    result.save(path)
    return result


def _metrics(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return read_jsonl(path)


def _load_result(out_dir: Path) -> RegularizeResult:
    from agents.evaluate import DelayAccuracy

    data = read_json(out_dir / "regularize.json")

    def maybe(name: str) -> Any:
        path = out_dir / f"{name}.json"
        return DelayAccuracy.load(path) if path.is_file() else None

    def array(values: list) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    return RegularizeResult(
        out_dir=out_dir,
        source=data["source"],
        config=data["config"],
        lam=data["lam"],
        anchors=Anchors.load(out_dir / "anchors.npz"),
        speeds_before=array(data["speeds_before"]),
        speeds_after=array(data["speeds_after"]),
        penalty_first=data["penalty_first"],
        penalty_last=data["penalty_last"],
        slow_speeds_before=array(data["slow_speeds_before"]),
        slow_speeds_after=array(data["slow_speeds_after"]),
        accuracy_before=maybe("accuracy_before"),
        accuracy_after=maybe("accuracy_after"),
        info=data["info"],
    )


def _write_figure(result: RegularizeResult) -> None:
    from agents.plots import plot_delay_accuracy

    fig = plot_delay_accuracy(
        {"before": result.accuracy_before, f"after ({result.anchors.mode})": result.accuracy_after},
        title=f"speed regularisation, mode {result.anchors.mode}, lambda {result.lam:g}",
    )
    fig.savefig(result.out_dir / "accuracy_before_after.png", dpi=120)


def summary_markdown(result: RegularizeResult) -> str:
    """A short human summary of one fine-tuning."""
    lines = [
        f"# Speed regularisation: mode `{result.anchors.mode}`, lambda {result.lam:g}",
        "",
        f"Source: `{result.source['run_dir']}` (member {result.source['member']}, step "
        f"{result.source['step']}); fine-tuned for {result.config['total_steps']} steps at "
        f"lr {result.config['lr']:g}.",
        "",
        f"Mean speed q at the anchors (mean noise frame): {_fmt(_nanmean(result.speeds_before))} "
        f"before, {_fmt(_nanmean(result.speeds_after))} after.",
        f"Penalty S (noise frames, first / last log interval): {_fmt(result.penalty_first)} / "
        f"{_fmt(result.penalty_last)}.",
        "Mean speed of the slow points found from each network's own class centres: "
        f"{_fmt(_maybe_mean(result.slow_speeds_before))} before, "
        f"{_fmt(_maybe_mean(result.slow_speeds_after))} after.",
        "",
    ]
    before, after = result.accuracy_before, result.accuracy_after
    if before is not None and after is not None:
        lines += ["| delay | before | after |", "|---:|---:|---:|"]
        for i, d in enumerate(before.delays):
            lines.append(f"| {d} | {before.accuracy[0, i]:.3f} | {after.accuracy[0, i]:.3f} |")
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def train_with_speed_penalty(
    train_config: Any,
    run_dir: str | Path,
    *,
    mode: str = "center",
    lam: float | None = None,
    recompute_every: int = 250,
    n_noise: int = PAPER_NOISE_DRAWS,
    progress: bool = True,
) -> Any:
    """`agents.train` from scratch with the speed penalty (anchors recomputed as it learns).

    The initial network has no meaningful class centres, so the anchors are recomputed every
    ``recompute_every`` steps; a class never answered correctly yet is anchored at the mean
    over all its trials. Returns the `agents.TrainResult`.
    """
    from agents.trainer import initial_model, train
    from memenv import DelayedRecallTask

    check_mode(mode)
    lam = 0.0 if mode == "control" else PAPER_LAMBDA[train_config.dataset] if lam is None else lam
    if train_config.n_members != 1:
        raise UsageError(f"the penalty needs n_members = 1, got {train_config.n_members}")
    task = DelayedRecallTask(
        train_config.task_config(), root=train_config.data_root, download=train_config.download
    )
    model = initial_model(train_config)
    anchors = compute_anchors(model, task, mode, seed=train_config.seed, all_trials_fallback=True)
    penalty = SpeedPenalty(
        anchors, task, lam, n_noise=n_noise, recompute_every=recompute_every,
        seed=train_config.seed, all_trials_fallback=True,
    )  # fmt: skip
    return train(train_config, run_dir, model=model, task=task, penalty=penalty, progress=progress)
