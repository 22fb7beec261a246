"""Evaluate a trained run and write its results: JSON, figure, markdown summary.

Used by ``memenv eval`` (`agents.commands`) and the demo (`agents.demo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.checkpoint import model_from_record, read_checkpoint, resolve_model_file
from agents.config import TrainConfig
from agents.evaluate import DEFAULT_DELAYS, DelayAccuracy, evaluate_delays, trained_accuracy
from memenv.errors import CorruptFileError, UsageError


@dataclass
class RunEvaluation:
    """Results of `evaluate_run`.

    Attributes:
        delay_accuracy: Accuracy vs delay (`DelayAccuracy`).
        trained: Accuracy on the training distribution of delays (`trained_accuracy`) on the
            evaluation split.
        model_file: The weights evaluated.
        step: Their training step.
        config: The run's `TrainConfig` (None when the checkpoint has none).
    """

    delay_accuracy: DelayAccuracy
    trained: dict[str, Any]
    model_file: Path
    step: int
    config: TrainConfig | None


def evaluate_run(
    path: str | Path,
    *,
    member: int | None = None,
    split: str = "test",
    delays: tuple[int, ...] | list[int] = DEFAULT_DELAYS,
    n_trials: int = 1000,
    batch_size: int = 500,
    t_stim: int | None = 0,
    seed: int = 0,
    device: str | torch.device = "auto",
    data_root: str | None = None,
    progress: bool = False,
) -> RunEvaluation:
    """Evaluates a run directory or checkpoint on held-out images.

    The task is the run's own (data set, trial length, minimum delay, noise scale; all 10
    classes, ``t_max`` = the trial length) on ``split``.
    """
    from agents.device import resolve_device
    from memenv.task import DelayedRecallTask

    model_file = resolve_model_file(path)
    dev = resolve_device(device)
    record = read_checkpoint(model_file)
    model = model_from_record(record, model_file, member).to(dev).eval()
    config = _saved_config(record, model_file)
    base = (config or TrainConfig()).replace(split=split)
    if data_root is not None:
        base = base.replace(data_root=data_root)
    task = DelayedRecallTask(base.task_config(), root=base.data_root, download=base.download)
    trained = trained_accuracy(model, task, n_trials=n_trials, batch_size=batch_size, seed=seed)
    result = evaluate_delays(
        model, task, delays=delays, n_trials=n_trials, batch_size=batch_size,
        t_stim=t_stim, seed=seed, progress=progress,
    )  # fmt: skip
    result.meta.update(
        model_file=str(model_file),
        step=record["step"],
        member=member,
        trained_distribution_accuracy=trained,
    )
    return RunEvaluation(result, trained, model_file, record["step"], config)


def _saved_config(record: dict[str, Any], model_file: Path) -> TrainConfig | None:
    """The TrainConfig a checkpoint was trained with (None for files that carry none)."""
    saved = record.get("train_config")
    if not saved:
        return None
    if not isinstance(saved, dict):
        raise CorruptFileError(f"{model_file}: its train_config is not a mapping")
    try:
        return TrainConfig.from_dict(saved)
    except (UsageError, TypeError) as error:
        raise CorruptFileError(f"{model_file}: its train_config is not valid ({error})") from None


def write_evaluation(
    evaluation: RunEvaluation, out_dir: str | Path, name: str = "delay_accuracy"
) -> dict[str, Path]:
    """Writes ``<name>.json``, ``<name>.png`` and ``<name>.md`` into ``out_dir``.

    Returns:
        ``{"json": ..., "figure": ..., "summary": ...}`` paths.
    """
    from agents.plots import plot_delay_accuracy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / f"{name}.json",
        "figure": out / f"{name}.png",
        "summary": out / f"{name}.md",
    }
    evaluation.delay_accuracy.save(paths["json"])
    title = _title(evaluation)
    fig = plot_delay_accuracy(evaluation.delay_accuracy, title=title)
    fig.savefig(paths["figure"], dpi=120)
    paths["summary"].write_text(summary_markdown({title: evaluation}))
    return paths


def _title(evaluation: RunEvaluation) -> str:
    cfg = evaluation.config
    what = f"{cfg.cell.upper()}-{cfg.hidden_size} {cfg.dataset}" if cfg else "model"
    return f"{what}, step {evaluation.step}"


def summary_markdown(evaluations: dict[str, RunEvaluation]) -> str:
    """A short markdown report: accuracy at trained delays and the accuracy-vs-delay table."""
    lines = ["# Delayed-recall evaluation", ""]
    for title, ev in evaluations.items():
        meta = ev.delay_accuracy.meta
        trained = ev.trained
        lines += [f"## {title}", ""]
        lines.append(f"- weights: `{ev.model_file}` (step {ev.step})")
        lines.append(f"- images: {meta['dataset']} / {meta['split']} ({meta['data_source']})")
        if isinstance(trained["accuracy"], float):
            lo, hi = trained["ci95"]
            lines.append(
                f"- accuracy on the training distribution of delays "
                f"({meta['trained_delays'][0]}..{meta['trained_delays'][1]}): "
                f"**{trained['accuracy']:.3f}** (95% CI {lo:.3f}..{hi:.3f}, "
                f"{trained['n_trials']} trials)"
            )
        else:
            accs = trained["accuracy"]
            lines.append(
                "- accuracy on the training distribution of delays, per member: "
                + ", ".join(f"{a:.3f}" for a in accs)
            )
        t_stim = meta["t_stim"]
        where = (
            f"stimulus at step {t_stim}" if t_stim is not None else "stimulus time as in training"
        )
        lines += ["", f"Accuracy vs delay ({where}, 95% Wilson intervals):", ""]
        lines += [ev.delay_accuracy.markdown(), ""]
    return "\n".join(lines)


def write_summary(path: str | Path, evaluations: dict[str, RunEvaluation]) -> Path:
    """Writes `summary_markdown` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(evaluations))
    return path
