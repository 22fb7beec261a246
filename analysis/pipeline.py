"""The whole analysis of one network (`analyze_network`) and of a training run (`analyze_run`).

`analyze_network` chains the pieces for one trained model: class centres, slow points from the
centres (and from extra single-trial states), de-duplication, per-class speeds, per-class
accuracy at a long delay, the speed-accuracy tables and the trajectories for the PCA figure.
`analyze_run` adds what a run directory of `agents.train` offers: the model, its task and
curriculum, and backtracking through its checkpoints. `write_report` saves everything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from agents.checkpoint import read_jsonl
from analysis.backtrack import Lineage, backtrack
from analysis.centers import AUTHORS_CENTERS, ClassCenters, class_centers, state_trajectories
from analysis.features import analysis_view
from analysis.protocol import FlatDynamics
from analysis.slow_points import SlowPoints, find_slow_points
from analysis.speed_accuracy import (
    ClassSpeedAccuracy,
    class_accuracy_at_delay,
    class_speed_accuracy,
    class_speeds,
    speeds_at,
)
from memenv import DelayedRecallTask
from memenv.errors import MissingFileError

DEFAULT_LONG_DELAY = 60
"""Delay of the 'long-delay accuracy': three trial lengths, well past the trained 4..19."""


@dataclass
class AnalysisOptions:
    """Settings of `analyze_network` / `analyze_run` (defaults: the paper's where it has one).

    Attributes:
        method: Slow-point search, ``"newton"`` (fast) or ``"adam"`` (the paper's).
        n_per_class: Trials per class for the centres (authors: 100).
        settle_steps: Steps from the image to the centre state (authors: 15).
        noise_scale: Noise std for the centres, in pixel-std units (see `analysis.centers`).
        shared_noise: One noise sequence for every centre trial (the authors' MNIST script;
            `analysis.centers.AUTHORS_CENTERS`).
        extra_per_class: Additional searches per class, from single correct trials' states, to
            find more than one slow point per class.
        dedup_tol: Distance under which two slow points are one (`deduplicate`).
        long_delay: Delay of the per-class accuracy correlated with speed.
        accuracy_trials: Trials for each accuracy measurement.
        backtrack: Follow the slow points back through the run's checkpoints.
        max_checkpoints: At most this many checkpoints (evenly spread, last kept); None = all.
        merge_tol: Distance under which two tracked points merge (`backtrack`).
        trajectories_per_class: Trajectories per class in the PCA figure.
        trajectory_steps: Their length.
        seed: Seeds every random draw.
        cell_speed: LSTM cell coordinates in the speed: ``"tanh"`` (the paper's) or ``"raw"``
            (see `analysis.protocol.FlatDynamics`).
        search_options: Extra keyword arguments of the search (e.g. ``{"iterations": 20000}``).
        backtrack_search_options: Those of the backtracking searches (None: ``search_options``),
            e.g. a smaller budget for the many searches through the checkpoints.
        authors_centers_check: Also measure the speed at centres computed the authors' way
            (`analysis.centers.AUTHORS_CENTERS`), for a sensitivity check of the centre noise.
    """

    method: str = "newton"
    n_per_class: int = 100
    settle_steps: int = 15
    noise_scale: float = 1.0
    shared_noise: bool = False
    extra_per_class: int = 5
    dedup_tol: float = 1e-2
    long_delay: int = DEFAULT_LONG_DELAY
    accuracy_trials: int = 1000
    backtrack: bool = True
    max_checkpoints: int | None = 12
    merge_tol: float = 0.05
    trajectories_per_class: int = 8
    trajectory_steps: int = 40
    seed: int = 0
    cell_speed: str = "tanh"
    search_options: dict[str, Any] = field(default_factory=dict)
    authors_centers_check: bool = False
    backtrack_search_options: dict[str, Any] | None = None


@dataclass
class NetworkAnalysis:
    """Everything `analyze_network` found for one network."""

    centers: ClassCenters
    points: SlowPoints
    unique: SlowPoints
    cluster: np.ndarray
    center_speeds: np.ndarray
    point_speeds: np.ndarray
    long_delay_accuracy: np.ndarray
    table_points: ClassSpeedAccuracy
    table_centers: ClassSpeedAccuracy
    trajectories: np.ndarray
    trajectory_labels: np.ndarray
    lineage: Lineage | None = None
    info: dict[str, Any] = field(default_factory=dict)
    table_authors_centers: ClassSpeedAccuracy | None = None

    def points_per_class(self) -> dict[int, int]:
        """Distinct slow points per readout label: -1 (null) and every analysed class, with 0
        for a label no point answers (none is left out)."""
        counts = self.unique.label_counts()
        labels = [-1, *range(len(self.centers.classes))]
        return {k: counts.get(k, 0) for k in sorted(set(labels) | set(counts))}

    def summary_dict(self) -> dict[str, Any]:
        unique = self.unique
        return {
            "info": self.info,
            "n_searches": len(self.points),
            "n_converged": int(self.points.converged.sum()),
            "n_distinct_points": len(unique),
            "distinct_points_per_label": {str(k): v for k, v in self.points_per_class().items()},
            "distinct_points": [
                {
                    "label": int(unique.labels[m]),
                    "speed": float(unique.speeds[m]),
                    "converged": bool(unique.converged[m]),
                    "spectral_radius": _finite_or_none(unique.spectral_radius[m]),
                    "n_searches": int((self.cluster == m).sum()),
                }
                for m in range(len(unique))
            ],
            "centre_accuracy_after_settling": self.centers.accuracy.tolist(),
            "speed_accuracy_slow_points": self.table_points.to_dict(),
            "speed_accuracy_centres": self.table_centers.to_dict(),
            "speed_accuracy_authors_centres": None
            if self.table_authors_centers is None
            else self.table_authors_centers.to_dict(),
            "lineage": None if self.lineage is None else self.lineage.to_dict(),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def analyze_network(
    model: nn.Module,
    task: DelayedRecallTask,
    options: AnalysisOptions | None = None,
    *,
    n_classes: int | None = None,
    progress: bool = False,
) -> NetworkAnalysis:
    """Centres, slow points, speeds, long-delay accuracy and trajectories of one network.

    Args:
        model: A protocol model.
        task: Supplies images and noise (use the ``test`` split for held-out images).
        options: Settings; default `AnalysisOptions()`.
        n_classes: Active vocabulary; default ``task.config.n_classes``.
        progress: tqdm bars.
    """
    options = options or AnalysisOptions()
    n_classes = task.config.n_classes if n_classes is None else n_classes
    dynamics, input_x, centers = network_centers(model, task, options, n_classes)
    initial, initial_labels = search_starts(centers, options.extra_per_class)
    points = find_slow_points(
        dynamics,
        initial,
        input_x,
        options.method,
        n_classes=n_classes,
        initial_labels=initial_labels,
        progress=progress,
        **options.search_options,
    )
    unique, cluster = points.deduplicate(options.dedup_tol)
    center_q = speeds_at(dynamics, centers.centers, input_x)
    point_q = class_speeds(points, n_classes)
    accuracy = class_accuracy_at_delay(
        model, task, options.long_delay, n_trials=options.accuracy_trials, seed=options.seed
    )
    trajectories, trajectory_labels = state_trajectories(
        dynamics,
        task,
        n_per_class=options.trajectories_per_class,
        n_steps=options.trajectory_steps,
        noise_scale=options.noise_scale,
        n_classes=n_classes,
        seed=options.seed + 1,
    )
    return NetworkAnalysis(
        centers=centers,
        points=points,
        unique=unique,
        cluster=cluster,
        center_speeds=center_q,
        point_speeds=point_q,
        long_delay_accuracy=accuracy,
        table_points=class_speed_accuracy(
            point_q, accuracy, delay=options.long_delay, speed_at="slow point"
        ),
        table_centers=class_speed_accuracy(
            center_q, accuracy, delay=options.long_delay, speed_at="centre"
        ),
        trajectories=trajectories,
        trajectory_labels=trajectory_labels,
        table_authors_centers=_authors_centers_table(
            dynamics, task, options, n_classes, input_x, accuracy
        )
        if options.authors_centers_check
        else None,
    )


def network_centers(
    model: nn.Module, task: DelayedRecallTask, options: AnalysisOptions, n_classes: int
) -> tuple[FlatDynamics, np.ndarray, ClassCenters]:
    """``(dynamics, fixed input, class centres)`` of ``model`` as every analysis computes them:
    the network under `analysis_view`, as `FlatDynamics` with ``options.cell_speed``, and
    `class_centers` with ``options``' trials, settling, noise and seed."""
    view, input_x = analysis_view(model, task, seed=options.seed)
    dynamics = FlatDynamics(view, cell_speed=options.cell_speed)
    centers = class_centers(
        dynamics, task, n_per_class=options.n_per_class, settle_steps=options.settle_steps,
        noise_scale=options.noise_scale, shared_noise=options.shared_noise, n_classes=n_classes,
        seed=options.seed, input_x=input_x,
    )  # fmt: skip
    return dynamics, input_x, centers


def _authors_centers_table(dynamics, task, options, n_classes, input_x, accuracy):
    """Speed at the centres computed as the authors' MNIST script did, vs class accuracy."""
    centers = class_centers(
        dynamics, task, n_per_class=options.n_per_class, settle_steps=options.settle_steps,
        n_classes=n_classes, seed=options.seed, input_x=input_x, **AUTHORS_CENTERS,
    )  # fmt: skip
    speeds = speeds_at(dynamics, centers.centers, input_x)
    return class_speed_accuracy(
        speeds, accuracy, delay=options.long_delay, speed_at="centre (authors' noise)"
    )


def search_starts(centers: ClassCenters, extra_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial states ``[M, N]`` and their classes ``[M]``: every finite class centre first
    (in class order), then up to ``extra_per_class`` correctly answered trials per class."""
    valid = centers.valid
    starts = [centers.centers[valid]]
    labels = [centers.classes[valid]]
    for k in centers.classes:
        chosen = np.flatnonzero(centers.correct & (centers.trial_labels == k))[:extra_per_class]
        starts.append(centers.states[chosen])
        labels.append(np.full(chosen.size, k, dtype=np.int64))
    return np.concatenate(starts), np.concatenate(labels)


# -------------------------------------------------------------------------------- runs
@dataclass
class RunInfo:
    """What `analyze_run` needs to know about a run directory."""

    run_dir: Path
    config: Any
    member: int | None
    n_classes_at: Callable[[int], int]
    final_step: int


def run_info(run_dir: str | Path, member: int | None = None) -> RunInfo:
    """Reads a run directory of `agents.train` (config, curriculum, final step)."""
    from agents.checkpoint import checkpoint_step
    from agents.config import TrainConfig

    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise MissingFileError(f"{run_dir} is not a run directory (no config.json)")
    config = TrainConfig.from_json(config_file)
    if config.n_members > 1 and member is None:
        member = 0
    return RunInfo(
        run_dir=run_dir,
        config=config,
        member=member,
        n_classes_at=vocabulary_function(run_dir, config),
        final_step=checkpoint_step(run_dir),
    )


def vocabulary_function(run_dir: Path, config: Any) -> Callable[[int], int]:
    """``step -> active vocabulary`` of a run: the fixed schedule's, else ``metrics.jsonl``'s.

    A checkpoint at step s holds the weights after s optimiser steps, the last of which
    (0-based step s - 1) used the vocabulary ``schedule.at(s - 1)``.
    """
    from agents.schedule import is_adaptive, resolve_schedule

    schedule = resolve_schedule(config.curriculum, config.dataset, config.curriculum_scale)
    if schedule is None:
        return lambda step: 10
    if not is_adaptive(schedule):
        return lambda step: int(schedule.at(max(int(step) - 1, 0)).get("n_classes", 10))
    logged = _logged_vocabulary(run_dir / "metrics.jsonl")

    def from_metrics(step: int) -> int:
        earlier = [n for s, n in logged if s <= step]
        return earlier[-1] if earlier else (logged[0][1] if logged else 10)

    return from_metrics


def _logged_vocabulary(path: Path) -> list[tuple[int, int]]:
    if not path.is_file():
        return []
    pairs = []
    for record in read_jsonl(path):
        value = record.get("n_classes", 10)
        if isinstance(value, list):  # adaptive ensembles log one value per member
            value = value[0]
        pairs.append((int(record["step"]), int(value)))
    return pairs


def analysis_task(config: Any, n_classes: int) -> DelayedRecallTask:
    """The run's task on held-out (test) images with ``n_classes`` active classes."""
    task_config = config.task_config().replace(split="test", n_classes=int(n_classes))
    return DelayedRecallTask(task_config, root=config.data_root, download=config.download)


def select_checkpoints(
    checkpoints: Sequence[tuple[int, Path]], max_checkpoints: int | None
) -> list[tuple[int, Path]]:
    """At most ``max_checkpoints`` of ``checkpoints`` (sorted), evenly spread, the last kept."""
    checkpoints = sorted(checkpoints)
    if max_checkpoints is None or len(checkpoints) <= max_checkpoints:
        return list(checkpoints)
    if max_checkpoints < 2:
        return checkpoints[-max_checkpoints:] if max_checkpoints > 0 else []
    picks = np.unique(np.round(np.linspace(0, len(checkpoints) - 1, max_checkpoints)).astype(int))
    return [checkpoints[i] for i in picks]


def analyze_run(
    run_dir: str | Path,
    options: AnalysisOptions | None = None,
    *,
    member: int | None = None,
    progress: bool = False,
) -> NetworkAnalysis:
    """`analyze_network` on a run's final model, plus backtracking through its checkpoints.

    Args:
        run_dir: A run directory written by `agents.train`.
        options: Settings; default `AnalysisOptions()`.
        member: For an ensemble run, the member to analyse (default 0).
        progress: tqdm bars.
    """
    from agents.checkpoint import list_checkpoints, load_model

    options = options or AnalysisOptions()
    info = run_info(run_dir, member)
    n_final = info.n_classes_at(info.final_step)
    task = analysis_task(info.config, n_final)
    model = load_model(info.run_dir, member=info.member)
    result = analyze_network(model, task, options, n_classes=n_final, progress=progress)
    result.info = {
        "run_dir": str(info.run_dir),
        "member": info.member,
        "cell": info.config.cell,
        "hidden_size": info.config.hidden_size,
        "curriculum": info.config.curriculum,
        "final_step": info.final_step,
        "n_classes": n_final,
        "data_source": task.images.source,
        "method": options.method,
        "dedup_tol": options.dedup_tol,
        "long_delay": options.long_delay,
        "noise_scale": options.noise_scale,
        "shared_noise": options.shared_noise,
        "settle_steps": options.settle_steps,
        "cell_speed": options.cell_speed,
    }
    if not options.backtrack:
        return result
    kept = [(s, p) for s, p in list_checkpoints(info.run_dir) if s < info.final_step]
    chosen = select_checkpoints(
        kept, None if options.max_checkpoints is None else options.max_checkpoints - 1
    )
    n_centres = int(result.centers.valid.sum())
    if not chosen or n_centres == 0:
        result.info["backtrack_skipped"] = (
            "no earlier checkpoint" if not chosen else "no class is answered correctly"
        )
        return result
    from_centres = result.points.subset(np.arange(n_centres))
    pairs: list[tuple[int, Any]] = [(step, _loader(path, info.member)) for step, path in chosen] + [
        (info.final_step, model)
    ]
    result.lineage = backtrack(
        pairs,
        from_centres.states,
        task.mean_frame,
        classes=from_centres.initial_labels,
        method=options.method,
        merge_tol=options.merge_tol,
        n_classes_at=info.n_classes_at,
        accuracy_fn=_trained_class_accuracy(info, options),
        progress=progress,
        cell_speed=options.cell_speed,
        view=lambda net: analysis_view(net, task, seed=options.seed),
        **(
            options.search_options
            if options.backtrack_search_options is None
            else options.backtrack_search_options
        ),
    )
    return result


def _loader(path: Path, member: int | None) -> Callable[[], nn.Module]:
    from agents.checkpoint import load_model

    return lambda: load_model(path, member=member)


def _trained_class_accuracy(
    info: RunInfo, options: AnalysisOptions
) -> Callable[[nn.Module, int], np.ndarray]:
    """Per-class accuracy on the trained delay range (``min_delay .. n_steps - 1``), with the
    vocabulary active at the checkpoint's step."""
    from agents.evaluate import evaluate_delays

    config = info.config
    delays = list(range(config.min_delay, config.n_steps))

    def accuracy(model: nn.Module, step: int) -> np.ndarray:
        n_classes = info.n_classes_at(step)
        task = analysis_task(config, n_classes)
        result = evaluate_delays(
            model, task, delays=delays, n_trials=max(1, options.accuracy_trials // 2),
            seed=options.seed, t_stim=0,
        )  # fmt: skip
        correct = result.class_correct[0].sum(axis=0)[:n_classes]
        trials = result.class_trials.sum(axis=0)[:n_classes]
        return np.where(trials > 0, correct / np.maximum(trials, 1), np.nan)

    return accuracy


# ------------------------------------------------------------------------------ report
def write_report(
    result: NetworkAnalysis, out_dir: str | Path, figures: bool = True
) -> dict[str, Path]:
    """Writes result files, figures (unless ``figures=False``) and ``summary.md`` into
    ``out_dir``; returns their paths."""
    from analysis.plots import plot_lineage, plot_pca, plot_spectra, plot_speed_accuracy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["slow_points"] = out / "slow_points.npz"
    result.points.save(written["slow_points"])
    written["centers"] = out / "centers.npz"
    result.centers.save(written["centers"])
    if result.lineage is not None:
        written["lineage"] = out / "lineage.npz"
        result.lineage.save(written["lineage"])
    if figures:
        drawn = {
            "pca": plot_pca(result.trajectories, result.trajectory_labels, result.unique),
            "speed_accuracy": plot_speed_accuracy(result.table_points),
            "speed_accuracy_centres": plot_speed_accuracy(result.table_centers),
        }
        if result.unique.eigenvalues is not None:
            drawn["spectra"] = plot_spectra(result.unique)
        if result.lineage is not None:
            drawn["lineage"] = plot_lineage(result.lineage)
        for name, figure in drawn.items():
            written[f"figure_{name}"] = out / f"{name}.png"
            figure.savefig(written[f"figure_{name}"], dpi=120)
    summary = result.summary_dict()
    written["json"] = out / "analysis.json"
    written["json"].write_text(json.dumps(summary, indent=2) + "\n")
    written["summary"] = out / "summary.md"
    written["summary"].write_text(summary_markdown(result, written))
    return written


CONVERGED_MEANS = (
    "A search has converged when its speed q fell to the floating-point floor of a fixed point "
    "(`analysis.search.default_speed_tol`) or stopped changing; the others stopped at their "
    "iteration budget, and their q is the speed where they stopped: an upper bound on the "
    "slowest speed nearby, not the speed of a slow point."
)
PREDICTED_SIGN = "The paper predicts a negative rho (slower points, longer memories)."
FEW_CHECKPOINTS = 6


def coarse_backtracking_note(n_checkpoints: int) -> str | None:
    """A warning when backtracking had too few checkpoints to resolve when classes were born."""
    if n_checkpoints >= FEW_CHECKPOINTS:
        return None
    return (
        f"Warning: only {n_checkpoints} checkpoints, so a class's birth is only placed between "
        "two of them, far apart; train with a smaller --checkpoint-every (or analyse with a "
        "larger --max-checkpoints) to resolve the lineage."
    )


def summary_markdown(result: NetworkAnalysis, written: dict[str, Path]) -> str:
    """A short human-readable summary of the analysis."""
    info = result.info
    unique = result.unique
    lines = ["# Slow-point analysis", ""]
    if info:
        lines.append(
            f"Run `{info.get('run_dir')}` ({info.get('cell')}, {info.get('hidden_size')} units, "
            f"curriculum {info.get('curriculum')}, step {info.get('final_step')}); "
            f"images: {info.get('data_source')}; search: {info.get('method')}."
        )
        lines.append("")
    lines += [
        f"- searches: {len(result.points)} (class centres + single trials), "
        f"converged: {int(result.points.converged.sum())}. {CONVERGED_MEANS}",
        f"- distinct slow points: {len(unique)} (search ends closer than "
        f"{result.info.get('dedup_tol', 'dedup_tol')} are one point); per readout label "
        f"(-1 = null): {result.points_per_class()}",
        f"- stable (all |eigenvalues| < 1): {int(unique.stable.sum())} of {len(unique)}"
        if unique.eigenvalues is not None
        else "- eigenvalues not computed",
        "",
        "## Speed vs accuracy (per class)",
        "",
        result.table_points.markdown(),
        "",
        f"At the centres of mass: {result.table_centers.correlation}. {PREDICTED_SIGN}",
        "",
    ]
    if result.lineage is not None:
        lines += ["## Backtracking", ""]
        coarse = coarse_backtracking_note(result.lineage.steps.size)
        if coarse:
            lines += [coarse, ""]
        if not result.lineage.events:
            lines.append(
                f"No class's slow point merges into another's going back through "
                f"{result.lineage.steps.size} checkpoints (steps {result.lineage.steps.tolist()})."
            )
        for event in result.lineage.events:
            lines.append(
                f"- class {event.child} was born from the point of class {event.parent} between "
                f"steps {event.merge_step} and {event.birth_step}; class {event.parent}'s "
                f"accuracy {event.parent_accuracy_before:.3f} -> {event.parent_accuracy_after:.3f}"
            )
        lines.append("")
    lines += ["## Files", ""] + [f"- {name}: `{path}`" for name, path in written.items()]
    return "\n".join(lines) + "\n"
