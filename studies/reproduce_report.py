"""The report of `memenv reproduce`: tables, figures and markdown (pure functions); the claims
themselves are `analysis.claims`.

Everything here works on plain data that `studies.reproduce.load_results` reads from the run
folder, so every function can be tested on hand-made inputs:

* ``results["accuracy"][cell][curriculum]``: ``{"delays": [n_d], "accuracy": [K][n_d]}``
  (one row per ensemble member, held-out images);
* ``results["networks"]``: one dict per analysed member: ``cell``, ``curriculum``, ``member``,
  ``class_speeds`` / ``class_accuracy`` (``[10]``: each class's slow-point speed and its
  accuracy at the analysis delay, NaN = none), ``centre_speeds`` /
  ``authors_centre_speeds`` (``[10]`` or None), ``mean_speed`` (geometric mean of
  ``class_speeds``), ``long_accuracy`` (mean accuracy over the long delays),
  ``n_distinct_points``, ``n_searches``, ``n_converged``, and, where backtracked,
  ``lineage`` = `analysis.claims.lineage_metrics` of its `analysis.backtrack.Lineage`;
* ``results["regularize"]``: the records of `studies.regularize_study` (one per fine-tuning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.claims import SLOW_TOL, ClaimRow, claims_markdown
from analysis.intervals import t_interval
from memenv.errors import UsageError

REPORT_DELAYS = (10, 19, 40, 100, 200, 500, 1000, 2000)
"""Delays shown in the accuracy tables (those that were measured)."""
CURRICULUM_COLORS = {"none": "0.35", "vocu": "C3", "decu": "C0"}


# ------------------------------------------------------------------------------ inputs
def long_delay_accuracy(
    accuracy_kxd: Any, delays: Sequence[int], long_delay_min: int
) -> np.ndarray:
    """``[K]``: each member's mean accuracy over the delays ``>= long_delay_min``.

    Raises:
        ValueError: no measured delay is that long.
    """
    delays_arr = np.asarray(delays, dtype=np.int64)
    keep = delays_arr >= int(long_delay_min)
    if not keep.any():
        raise UsageError(
            f"no evaluated delay >= long_delay_min={long_delay_min}; delays {delays_arr.tolist()}"
        )
    return np.asarray(accuracy_kxd, dtype=np.float64)[:, keep].mean(axis=1)


# ------------------------------------------------------------------------------ tables
def _finite(values: Sequence[Any]) -> np.ndarray:
    array = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def _fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else f"{p:.3g}"


def _ci(values: Any, digits: int = 3) -> str:
    mean, low, high = t_interval(values)
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def accuracy_markdown(
    accuracy: dict[str, dict[str, Any]], delays: Sequence[int] = REPORT_DELAYS
) -> str:
    """Per cell x curriculum: mean accuracy [95% t-CI over networks] at each shown delay."""
    measured = sorted(
        {int(d) for runs in accuracy.values() for r in runs.values() for d in r["delays"]}
    )
    shown = [d for d in delays if d in measured] or measured
    lines = [
        "| cell | curriculum | networks | " + " | ".join(f"delay {d}" for d in shown) + " |",
        "|---|---|---:|" + "---:|" * len(shown),
    ]
    for cell, runs in accuracy.items():
        for curriculum, run in runs.items():
            acc = np.asarray(run["accuracy"], dtype=np.float64)
            index = {int(d): i for i, d in enumerate(run["delays"])}
            cells = [_ci(acc[:, index[d]]) if d in index else "n/a" for d in shown]
            lines.append(
                f"| {cell.upper()} | {curriculum} | {acc.shape[0]} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def _groups(networks: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Networks by (cell, curriculum), in the order they first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for n in networks:
        groups.setdefault((n["cell"], n["curriculum"]), []).append(n)
    return groups


def slow_points_markdown(networks: list[dict[str, Any]]) -> str:
    """Per cell x curriculum: distinct slow points, converged share, speeds, accuracy."""
    lines = [
        "| cell | curriculum | networks | distinct slow points | searches at machine precision | "
        "class searches at q <= 1e-8 | geometric-mean class speed | long-delay accuracy | "
        "per-network class Spearman (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (cell, curriculum), group in _groups(networks).items():
        speeds = _finite([q for n in group for q in n["class_speeds"]])
        positive = speeds[speeds > 0]
        geo = f"{math.exp(np.log(positive).mean()):.3g}" if positive.size else "n/a"
        conv = sum(n["n_converged"] for n in group) / max(sum(n["n_searches"] for n in group), 1)
        rhos = _finite([n.get("class_rho") for n in group])
        slow = f"{(speeds <= SLOW_TOL).mean():.0%}" if speeds.size else "n/a"
        lines.append(
            f"| {cell.upper()} | {curriculum} | {len(group)} | "
            f"{_ci([n['n_distinct_points'] for n in group], 1)} | {conv:.0%} | {slow} | {geo} | "
            f"{_ci([n['long_accuracy'] for n in group])} | "
            f"{f'{np.median(rhos):.2f}' if rhos.size else 'n/a'} |"
        )
    return "\n".join(lines)


def speed_accuracy_markdown(networks: list[dict[str, Any]]) -> str:
    """Spearman of mean speed vs long-delay accuracy across networks, overall and per group."""
    from analysis.speed_accuracy import spearman

    lines = ["| networks | n | Spearman rho | p |", "|---|---:|---:|---:|"]
    sets = [("all", networks)] + [
        (f"{c.upper()} {u}", g) for (c, u), g in _groups(networks).items()
    ]
    cells = list(dict.fromkeys(n["cell"] for n in networks))
    sets[1:1] = [
        (f"{c.upper()} (all curricula)", [n for n in networks if n["cell"] == c]) for c in cells
    ]
    for name, group in sets:
        r = spearman([n["mean_speed"] for n in group], [n["long_accuracy"] for n in group])
        rho = "n/a" if not math.isfinite(r.rho) else f"{r.rho:+.3f}"
        lines.append(f"| {name} | {r.n} | {rho} | {_fmt_p(r.p_value)} |")
    return "\n".join(lines)


def backtracking_markdown(networks: list[dict[str, Any]]) -> str:
    """Per cell x backtracked curriculum: checkpoints, jumpiness, merge events, attachment."""
    lines = [
        "| cell | curriculum | backtracked networks | checkpoints | slow tracks | "
        "jumpiness of slow tracks (mean [95% CI]) | merge events | tracked classes merging | "
        "later classes attached | parent accuracy change (mean) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (cell, curriculum), group in _groups(networks).items():
        metrics = [n["lineage"] for n in group if n.get("lineage")]
        if not metrics:
            continue
        later = sum(len(m["later_classes"]) for m in metrics)
        attached = sum(len(m["attached"]) for m in metrics)
        changes = _finite([c for m in metrics for c in m["parent_changes"]])
        slow = sum(m.get("n_slow_tracks", 0) for m in metrics)
        tracks = sum(m.get("n_tracks", 0) for m in metrics)
        merging = sum(len(m.get("merging", [])) for m in metrics)
        tracked = sum(len(m.get("tracked_classes", [])) for m in metrics)
        lines.append(
            f"| {cell.upper()} | {curriculum} | {len(metrics)} | {metrics[0]['n_checkpoints']} | "
            f"{slow}/{tracks} | {_ci([m['jumpiness'] for m in metrics])} | "
            f"{sum(m['n_events'] for m in metrics)} | {merging}/{tracked} | {attached}/{later} | "
            f"{f'{changes.mean():+.3f} (n={changes.size})' if changes.size else 'n/a'} |"
        )
    if len(lines) == 2:
        lines.append("| - | - | 0 | - | - | - | - | - | - | - |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures
def plot_accuracy(accuracy: dict[str, dict[str, Any]], trained_max: int = 19) -> Any:
    """Accuracy vs delay, one panel per cell, one curve per curriculum (mean and 95% t-band
    over networks). Returns a matplotlib `Figure`."""
    from matplotlib.figure import Figure

    from analysis.plots import style_delay_axes

    cells = list(accuracy) or ["none"]
    fig = Figure(figsize=(5.2 * len(cells), 4.0), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    for ax, cell in zip(axes, cells, strict=True):
        for curriculum, run in accuracy.get(cell, {}).items():
            acc = np.asarray(run["accuracy"], dtype=np.float64)
            delays = np.asarray(run["delays"])
            parts = np.array([t_interval(acc[:, i]) for i in range(delays.size)])
            color = CURRICULUM_COLORS.get(curriculum)
            ax.plot(
                delays,
                parts[:, 0],
                "-o",
                ms=3,
                color=color,
                label=f"{curriculum} (n={acc.shape[0]})",
            )
            if acc.shape[0] > 1:
                ax.fill_between(delays, parts[:, 1], parts[:, 2], color=color, alpha=0.15, lw=0)
        style_delay_axes(ax, trained_max, f"{cell.upper()}: mean and 95% CI over networks")
    return fig


def plot_speed_vs_accuracy(networks: list[dict[str, Any]], long_delay_min: int) -> Any:
    """Mean slow-point speed (log) against long-delay accuracy, one dot per network (colour:
    curriculum, marker: cell). Returns a `Figure`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    markers = {"gru": "o", "lstm": "s", "rnn": "^"}
    drawn = 0
    for (cell, curriculum), group in _groups(networks).items():
        speeds = np.asarray([n["mean_speed"] for n in group], dtype=float)
        accs = np.asarray([n["long_accuracy"] for n in group], dtype=float)
        keep = np.isfinite(speeds) & (speeds > 0) & np.isfinite(accs)
        drawn += int(keep.sum())
        ax.scatter(
            speeds[keep], accs[keep], color=CURRICULUM_COLORS.get(curriculum),
            marker=markers.get(cell, "o"), label=f"{cell.upper()} {curriculum}", s=36,
        )  # fmt: skip
    if drawn:
        ax.set_xscale("log")
    else:  # a log axis of no positive value cannot be drawn
        ax.text(0.5, 0.5, "no network has a finite positive speed", transform=ax.transAxes,
                ha="center")  # fmt: skip
    ax.set_xlabel("mean slow-point speed q over classes")
    ax.set_ylabel(f"mean accuracy at delays >= {long_delay_min}")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    if networks:
        ax.legend(fontsize="small")
    ax.set_title("speed vs long-delay accuracy, one dot per network")
    return fig


# ------------------------------------------------------------------------------ markdown
SECTIONS = (
    "## Protocol",
    "## Claims",
    "## Accuracy vs delay",
    "## Slow points and their speeds",
    "## Speed-accuracy correlations",
    "## Backtracking",
    "## Speed regularisation",
)
"""The report's sections, in order (tests check every one is present)."""


def report_markdown(
    results: dict[str, Any], rows: list[ClaimRow], figures: dict[str, str], regularize_md: str
) -> str:
    """The whole ``report.md``; ``figures`` maps a name to its file name in the report folder."""
    meta = results.get("meta", {})
    long_min = results["long_delay_min"]

    def figure(name: str, caption: str) -> list[str]:
        return [f"![{caption}]({figures[name]})", ""] if name in figures else []

    lines = [
        f"# Reproduction of Haviv, Rivkind & Barak (ICML 2019): {meta.get('preset', '')} preset, "
        f"{meta.get('dataset', '')}",
        "",
        SECTIONS[0],
        "",
        f"- command: `{meta.get('command', 'n/a')}`",
        f"- commit (report): {meta.get('commit', 'unknown')}",
        *[
            f"- commit {c}: {', '.join(stages)}"
            for c, stages in meta.get("job_commits", {}).items()
        ],
        *(
            [f"- jobs without a record: {meta['unrecorded_jobs']}"]
            if meta.get("unrecorded_jobs")
            else []
        ),
        f"- machine: {meta.get('machine', 'n/a')}",
        f"- wall time: {meta.get('wall_s', 'n/a')} s (all calls together)",
        f"- data: {meta.get('data_source', 'n/a')}",
        f"- networks: cells {', '.join(results['cells'])} x curricula "
        f"{', '.join(results.get('curricula', []))} x {meta.get('n_seeds', '?')} seeds (each "
        "(cell, curriculum) one batched ensemble; members are independent networks)",
        f"- training: {meta.get('training', 'n/a')}",
        f"- long delays: every evaluated delay >= {long_min}",
        f"- slow-point searches: {meta.get('search', 'n/a')}",
        f"- verdicts hold for: {meta.get('held_for', 'n/a')}",
        *[f"- note: {note}" for note in meta.get("notes", [])],
        "",
    ]
    if results.get("failures"):
        lines += ["Failed jobs (retried on the next run):", ""]
        lines += [f"- {f}" for f in results["failures"]] + [""]
    lines += [
        SECTIONS[1],
        "",
        "Specification: docs/reproduction/claims.md (`analysis.claims`). Every row with a "
        "p-value is one hypothesis of one family, Holm-adjusted: **supported** when the "
        "adjusted p < 0.05 in the paper's direction, **contradicted** when against it, **no "
        "evidence either way** otherwise, **not tested** (reason) when a piece is missing. "
        "Effects with 95% intervals; sensitivity rows have no verdict.",
        "",
        claims_markdown(rows),
        "",
        SECTIONS[2],
        "",
        "Held-out images, stimulus at t = 0; mean over networks [95% t-interval].",
        "",
        accuracy_markdown(results.get("accuracy", {})),
        "",
        *figure("accuracy", "accuracy vs delay"),
        SECTIONS[3],
        "",
        "Per network: slow points searched from the class centres of mass (and single trials) "
        "under the mean noise frame; per-class speed = speed of the point its centre led to.",
        "",
        slow_points_markdown(results.get("networks", [])),
        "",
        *(
            [
                "Search budget: how the class speeds depend on the number of "
                "Levenberg-Marquardt iterations (`benchmarks/speed_budget.py`; Kendall's tau "
                "of the network ranking between budgets).",
                "",
                results["speed_budget_md"],
                "",
            ]
            if results.get("speed_budget_md")
            else []
        ),
        SECTIONS[4],
        "",
        f"Geometric-mean slow-point speed over classes vs mean accuracy at delays >= {long_min}, "
        "Spearman across networks, per group and pooled (descriptive: the claims table tests "
        "the association within groups, at the analysis delay).",
        "",
        speed_accuracy_markdown(results.get("networks", [])),
        "",
        *figure("speed_accuracy", "speed vs accuracy"),
        SECTIONS[5],
        "",
        "Jumpiness of a tracked slow point: its largest checkpoint-to-checkpoint displacement "
        "over its total path length (1 = one jump), over the tracks that stay slow (q <= 1e-8) "
        "at every checkpoint. Later classes: outside the first vocabulary; attached: merges, "
        "going back, into an existing class's point; merging: any tracked class that does.",
        "",
        backtracking_markdown(results.get("networks", [])),
        "",
        *figure("lineage_vocu", "VoCu lineage"),
        *figure("lineage_decu", "DeCu lineage"),
        SECTIONS[6],
        "",
    ]
    if regularize_md:
        lines += [
            "Members of the DeCu and VoCu runs (the networks the authors regularised) and of the "
            "no-curriculum runs, fine-tuned per mode (`studies.regularize_study`'s table: "
            "accuracy after fine-tuning, mean [95% CI] over seeds; paired difference to the "
            "control).",
            "",
            regularize_md,
            *figure("regularize", "regularisation"),
        ]
    else:
        lines += [
            f"Not run: {results.get('regularize_skipped') or 'no regularisation results'}.",
            "",
        ]
    return "\n".join(lines) + "\n"
