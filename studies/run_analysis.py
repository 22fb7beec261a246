"""The analysis of a training run directory of `agents.train` (``memenv analyze``).

`analyze_run` adds to `analysis.analyze_network` what a run directory offers: the model, its
task and curriculum, and backtracking through its checkpoints. `write_analysis` saves
everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from agents.checkpoint import read_jsonl
from analysis.backtrack import backtrack
from analysis.features import analysis_view
from analysis.pipeline import AnalysisOptions, NetworkAnalysis, analyze_network
from memenv import DelayedRecallTask
from memenv.errors import MissingFileError


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
def write_analysis(
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
