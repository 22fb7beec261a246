"""Figures of the slow-point analysis. Each function returns a `matplotlib.figure.Figure`.

The figures are built on `Figure` objects directly (no pyplot state, never ``plt.show()``);
save them with ``fig.savefig(path)``. Colours: class k is ``tab10`` colour k; the null answer
is black.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.backtrack import Lineage
from analysis.slow_points import SlowPoints
from analysis.speed_accuracy import ClassSpeedAccuracy, NetworkSpeedAccuracy
from memenv.errors import UsageError


def class_color(label: int) -> Any:
    """``tab10`` colour of class ``label``; black for -1 (null)."""
    from matplotlib import colormaps

    return "black" if label < 0 else colormaps["tab10"](int(label) % 10)


def pca_basis(points_mxn: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(mean [N], components [n_components, N])`` of the rows of ``points_mxn`` (SVD)."""
    points_mxn = np.asarray(points_mxn, dtype=np.float64)
    mean_n = points_mxn.mean(axis=0)
    _, _, vt = np.linalg.svd(points_mxn - mean_n, full_matrices=False)
    components = np.zeros((n_components, points_mxn.shape[1]))
    components[: min(n_components, vt.shape[0])] = vt[:n_components]
    return mean_n, components


def plot_pca(
    trajectories_bxtxn: np.ndarray,
    trajectory_labels_b: np.ndarray,
    points: SlowPoints | None = None,
    title: str = "hidden-state trajectories and slow points (PCA)",
) -> Figure:
    """Trajectories (thin lines, class colour, dot at the start) and slow points in PC1/PC2.

    The PCA is fitted to the trajectories. Slow points are large markers coloured by readout
    label: filled when stable (all |eigenvalues| < 1), hollow when not, grey edge when their
    eigenvalues were not computed.
    """
    trajectories_bxtxn = np.asarray(trajectories_bxtxn, dtype=np.float64)
    b, t, n = trajectories_bxtxn.shape
    mean_n, comps_2xn = pca_basis(trajectories_bxtxn.reshape(b * t, n))
    projected_bxtx2 = (trajectories_bxtxn - mean_n) @ comps_2xn.T
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    for i in range(b):
        color = class_color(int(trajectory_labels_b[i]))
        ax.plot(projected_bxtx2[i, :, 0], projected_bxtx2[i, :, 1], color=color, lw=0.6, alpha=0.5)
        ax.plot(projected_bxtx2[i, 0, 0], projected_bxtx2[i, 0, 1], ".", color=color, ms=3)
    if points is not None and len(points):
        xy = (points.states - mean_n) @ comps_2xn.T
        stable = points.stable if points.eigenvalues is not None else None
        for m in range(len(points)):
            color = class_color(int(points.labels[m]))
            filled = stable is None or bool(stable[m])
            ax.plot(
                xy[m, 0], xy[m, 1], "o", ms=11,
                markerfacecolor=color if filled else "white",
                markeredgecolor="grey" if stable is None else color, markeredgewidth=2,
            )  # fmt: skip
    for label in np.unique(trajectory_labels_b):
        ax.plot([], [], color=class_color(int(label)), label=f"class {int(label)}")
    ax.plot([], [], "o", color="grey", markerfacecolor="white", label="unstable point")
    ax.legend(fontsize=7, ncols=2, loc="best")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    return fig


def spread_labels(y_p: np.ndarray, min_gap: float) -> np.ndarray:
    """Label heights ``[P]`` near ``y_p`` with at least ``min_gap`` between neighbours (the
    order of the points is kept; a crowded group is spread around its mean)."""
    y_p = np.asarray(y_p, dtype=np.float64)
    order = np.argsort(y_p, kind="stable")
    placed = y_p[order].copy()
    for i in range(1, placed.size):
        placed[i] = max(placed[i], placed[i - 1] + min_gap)
    placed += (y_p[order] - placed).mean()  # re-centre the spread group on the points
    out = np.empty_like(placed)
    out[order] = placed
    return out


def plot_lineage(lineage: Lineage, title: str = "slow points through training") -> Figure:
    """Top: each track's position (PC1 of all tracked points) against training step, with its
    readout label as marker colour and merge events marked. Bottom: per-class accuracy."""
    p, s, n = lineage.states.shape
    mean_n, comps_1xn = pca_basis(lineage.states.reshape(p * s, n), n_components=1)
    position_pxs = (lineage.states - mean_n) @ comps_1xn[0]
    has_accuracy = np.isfinite(lineage.accuracy).any()
    fig = Figure(figsize=(8, 7 if has_accuracy else 4.5), layout="constrained")
    axes = fig.subplots(2 if has_accuracy else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    label_y = spread_labels(position_pxs[:, -1], min_gap=0.06 * np.ptp(position_pxs) or 1.0)
    for track in range(p):
        cls = int(lineage.classes[track])
        ax.plot(lineage.steps, position_pxs[track], color=class_color(cls), lw=1.5, alpha=0.8)
        ax.scatter(
            lineage.steps, position_pxs[track], s=18, zorder=3,
            c=[class_color(int(v)) for v in lineage.labels[track]],
        )  # fmt: skip
        ax.annotate(  # at its spread height, so that end labels do not overlap
            str(cls), (lineage.steps[-1], label_y[track]), xytext=(8, 0),
            textcoords="offset points", color=class_color(cls), fontsize=8, va="center",
        )  # fmt: skip
    for event in lineage.events:
        ax.axvline(event.birth_step, color=class_color(event.child), ls=":", lw=1)
    ax.set_ylabel("position (PC 1 of all tracked points)")
    ax.set_title(title + " (dots: readout label; dotted: births)")
    if has_accuracy:
        acc_ax = axes[1]
        for cls in range(lineage.accuracy.shape[1]):
            values = lineage.accuracy[:, cls]
            if np.isfinite(values).any():
                acc_ax.plot(
                    lineage.steps, values, "-o", ms=3, color=class_color(cls), label=str(cls)
                )
        acc_ax.set_ylabel("per-class accuracy")
        acc_ax.set_ylim(-0.02, 1.02)
        acc_ax.legend(fontsize=7, ncols=5, title="class", title_fontsize=7)
    axes[-1].set_xlabel("training step")
    return fig


def plot_speed_accuracy(
    table: ClassSpeedAccuracy | NetworkSpeedAccuracy, title: str | None = None
) -> Figure:
    """Speed (log scale) against accuracy, one dot per class (or per network), with Spearman."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    if isinstance(table, ClassSpeedAccuracy):
        speeds, accuracy = table.speeds, table.accuracy
        names = [str(k) for k in table.classes]
        colors = [class_color(int(k)) for k in table.classes]
        xlabel = f"speed q at {table.speed_at}"
        ylabel = f"accuracy at delay {table.delay}"
    else:
        speeds, accuracy, names = table.mean_speeds, table.accuracy, table.names
        colors = ["tab:blue"] * len(names)
        xlabel = "mean speed q over classes"
        ylabel = "accuracy" + (f" at delay {table.delay}" if table.delay is not None else "")
    positive = np.isfinite(speeds) & (speeds > 0)
    floor = speeds[positive].min() if positive.any() else 1.0
    shown = np.where(positive, speeds, floor)
    ax.scatter(shown, accuracy, c=colors, s=40, zorder=3)
    for x, y, name in zip(shown, accuracy, names, strict=True):
        ax.annotate(name, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" (0 shown at the smallest positive)" if (~positive).any() else ""))
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or str(table.correlation))
    return fig


def plot_spectra(points: SlowPoints, max_points: int = 12, title: str | None = None) -> Figure:
    """Eigenvalues of dF/ds at (up to ``max_points``, slowest first) points, with the unit
    circle; colour = readout label."""
    if points.eigenvalues is None:
        raise UsageError(
            "these slow points carry no eigenvalues (find_slow_points(eigenvalues=True))"
        )
    order = np.argsort(points.speeds, kind="stable")[:max_points]
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(angle), np.sin(angle), color="grey", lw=0.8)
    for m in order:
        values = points.eigenvalues[m]
        ax.scatter(
            values.real, values.imag, s=8, alpha=0.6, color=class_color(int(points.labels[m])),
            label=f"point {m} (label {int(points.labels[m])}, q={points.speeds[m]:.1e})",
        )  # fmt: skip
    ax.set_aspect("equal")
    ax.set_xlabel("Re eigenvalue of dF/ds")
    ax.set_ylabel("Im")
    if len(order):
        ax.legend(fontsize=6, loc="lower left")
    shown = f"the {len(order)} slowest of {len(points)} points"
    ax.set_title(
        title or f"Jacobian spectra at {shown} (unit circle: marginal stability)", fontsize=10
    )
    return fig


def style_delay_axes(ax: Any, trained_max: int, title: str) -> None:
    """The look of every accuracy-vs-delay panel: log delay axis, the trained delays shaded
    (4 .. ``trained_max``), chance (0.1) dotted, accuracy from 0 to 1, a legend."""
    ax.axvspan(4, trained_max, color="0.92", zorder=0, label="trained delays")
    ax.axhline(0.1, color="0.5", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("delay (steps)")
    ax.set_ylabel("retrieval accuracy (held-out images)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
