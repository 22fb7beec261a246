"""Figures of evaluation results (matplotlib; never ``plt.show()``)."""

from __future__ import annotations

import numpy as np

from agents.evaluate import DelayAccuracy, chance_level


def plot_delay_accuracy(
    results: DelayAccuracy | dict[str, DelayAccuracy],
    ax=None,
    title: str | None = None,
):
    """Accuracy vs delay (log axis) with 95% Wilson bands.

    Args:
        results: One result, or ``{label: result}`` to compare several (e.g. GRU vs LSTM).
            Ensembles draw each member thinly and their mean boldly.
        ax: Axes to draw into; None makes a new figure.
        title: Axes title.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if isinstance(results, DelayAccuracy):
        results = {"": results}
    trained = None
    n_classes = 10
    for i, (label, result) in enumerate(results.items()):
        color = f"C{i}"
        acc = result.accuracy
        low, high = result.ci
        if result.n_members == 1:
            ax.plot(result.delays, acc[0], "o-", color=color, ms=3, label=label or None)
            ax.fill_between(result.delays, low[0], high[0], color=color, alpha=0.2, lw=0)
        else:
            for m in range(result.n_members):
                ax.plot(result.delays, acc[m], "-", color=color, lw=0.6, alpha=0.4)
            mean_label = f"{label} (mean of {result.n_members})" if label else None
            ax.plot(result.delays, acc.mean(axis=0), "o-", color=color, ms=3, label=mean_label)
        trained = trained or result.meta.get("trained_delays")
        n_classes = int(result.meta.get("n_classes", n_classes))
    if trained:
        ax.axvspan(trained[0], trained[1], color="0.9", zorder=0, label="trained delays")
    ax.axhline(chance_level(n_classes), color="0.5", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("delay (steps between stimulus and trigger)")
    ax.set_ylabel("retrieval accuracy")
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return fig


def plot_class_accuracy(result: DelayAccuracy, member: int = 0, ax=None):
    """Per-class accuracy vs delay of one network (one line per class). Returns the Figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    acc = result.class_accuracy[member]
    for c in range(acc.shape[1]):
        if np.isfinite(acc[:, c]).any():
            ax.plot(result.delays, acc[:, c], "-", lw=1, label=str(c), color=f"C{c}")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("delay")
    ax.set_ylabel("accuracy")
    ax.legend(title="class", ncol=2, fontsize="x-small")
    return fig
