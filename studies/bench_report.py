"""The benchmark's table and figure, built from saved per-run results (`studies.bench`).

Over seeds, every accuracy is summarised by its mean and a 95% Student-t interval,
``mean +- t_{0.975, n-1} * sd / sqrt(n)`` (sd with ``ddof=1``; NaN with fewer than two seeds),
clipped to [0, 1] in the figure. With 3 seeds ``t = 4.30``: the interval is wide on purpose, it
is what three seeds can say. Parameters are per network; training time is the mean over seeds;
the anchor speed is the median over seeds of each seed's slowest class anchor.

The table and the figure explain their marks (`BenchTable.legend`, `plot_bench`): chance is
``1 / n_classes`` (a class named at random), an accuracy of 0 is a model that answers null at
the trigger instead of naming a class (far below chance, not noise around it), ``n/a`` is a
model without a fixed-size state and ``-`` a value that was not measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from analysis.half_life import HalfLife, memory_half_life
from memenv.errors import UsageError
from studies.bench import MULTIPLES, RunResult


def t_interval(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, half-width of the 95% t-interval)`` over ``axis``, ignoring NaN rows per column.

    Args:
        values: ``[S, ...]`` (e.g. seeds x delays).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    n = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    deviation = np.where(finite, values - np.expand_dims(mean, axis), 0.0)
    variance = np.square(deviation).sum(axis=axis) / np.maximum(n - 1, 1)
    t = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    half = np.where(n >= 2, t * np.sqrt(variance / np.maximum(n, 1)), np.nan)
    return mean, half


@dataclass
class BenchRow:
    """One architecture over its seeds.

    Attributes:
        arch, spec: Name and how it was built.
        seeds: Seeds with a measured result; diverged: seeds whose training diverged.
        delays: ``[n_d]`` evaluated delays; accuracy: ``[S, n_d]`` per seed.
        n_parameters: Per network. train_s: per seed. anchor_speeds: per seed's slowest class
            anchor (None: not recurrent or no class correct).
        recurrent: Fixed-size state (anchor speed defined).
    """

    arch: str
    spec: str
    seeds: list[int]
    diverged: list[int]
    delays: np.ndarray
    accuracy: np.ndarray
    n_parameters: int
    train_s: list[float]
    anchor_speeds: list[float | None]
    recurrent: bool

    def summary(self, delays: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean [n], half-width [n])`` at ``delays`` over seeds."""
        index = {int(d): i for i, d in enumerate(self.delays)}
        cols = [index.get(int(d)) for d in delays]
        picked = np.stack(
            [self.accuracy[:, c] if c is not None else np.full(len(self.seeds), np.nan)
             for c in cols], axis=1,
        )  # fmt: skip
        return t_interval(picked)

    def half_life(self, trained: tuple[int, int], chance: float) -> HalfLife:
        """`analysis.half_life.memory_half_life` of this row's seeds (NaN without a seed)."""
        if not self.seeds:
            return HalfLife(math.nan, False, math.nan, math.nan, False, 0)
        return memory_half_life(self.delays, self.accuracy, trained, chance)

    @property
    def anchor_median(self) -> float | None:
        values = [q for q in self.anchor_speeds if q is not None]
        return float(np.median(values)) if values else None


NULL_NOTE = "0 = always answers null"
"""How the figure marks an accuracy of 0 (the table's legend says it at length)."""


@dataclass
class BenchTable:
    """Rows per architecture plus the delays the table reports; ``n_classes``: classes of the
    evaluation trials (chance is ``1 / n_classes``)."""

    rows: list[BenchRow]
    table_delays: tuple[int, ...]
    trained_delays: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)
    n_classes: int = 10

    @property
    def chance(self) -> float:
        """Accuracy of naming one of the classes at random."""
        return 1.0 / self.n_classes

    def longest_delay(self) -> int:
        """The longest evaluated delay of any row (0 without rows)."""
        return max((int(row.delays[-1]) for row in self.rows if row.delays.size), default=0)

    def sort_by_half_life(self) -> None:
        """Longest memory first (`analysis.half_life.HalfLife.sort_key`; ties keep their
        order)."""
        self.rows.sort(key=lambda row: row.half_life(self.trained_delays, self.chance).sort_key())

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            mean, half = row.summary(self.table_delays)
            curve_mean, curve_half = row.summary(tuple(int(d) for d in row.delays))
            rows.append({
                "arch": row.arch, "spec": row.spec, "seeds": row.seeds, "diverged": row.diverged,
                "half_life": row.half_life(self.trained_delays, self.chance).to_dict(),
                "n_parameters": row.n_parameters, "train_s": row.train_s,
                "train_s_mean": _finite(np.mean(row.train_s)) if row.train_s else None,
                "recurrent": row.recurrent, "anchor_speed_slowest": row.anchor_speeds,
                "anchor_speed_slowest_median": row.anchor_median,
                "accuracy": {str(d): {"mean": _finite(m), "ci95_half": _finite(h)}
                             for d, m, h in zip(self.table_delays, mean, half, strict=True)},
                "curve": {"delays": row.delays.tolist(),
                          "accuracy_per_seed": row.accuracy.tolist(),
                          "mean": [_finite(v) for v in curve_mean],
                          "ci95_half": [_finite(v) for v in curve_half]},
            })  # fmt: skip
        return {
            "table_delays": list(self.table_delays),
            "trained_delays": list(self.trained_delays),
            "interval": "95% Student-t over seeds",
            "chance": self.chance,
            "legend": self.legend(),
            "rows": rows,
            "meta": self.meta,
        }

    def legend(self) -> list[str]:
        """What the table's numbers and marks mean, one entry each (markdown)."""
        n = self.n_classes
        return [
            "half-life: the delay at which held-out accuracy has fallen halfway from its "
            "trained-range value to chance, interpolated in log delay on the evaluated delays "
            f"(up to {self.longest_delay()}), of the mean curve over seeds [95% bootstrap "
            "interval over seeds]; `>= D`: it never fell that far (a lower bound); `-`: the "
            "trained-range accuracy is below halfway from chance to 1 (the model did not learn "
            "the task; no memory to measure). Rows are sorted by it.",
            "accuracy: share of held-out trials whose answer at the trigger is the image's "
            "class; mean ± half-width of the 95% t-interval over seeds (one seed: the mean "
            "alone).",
            f"chance: {self.chance:.3g} (1/{n}): a model that names one of the {n} classes at "
            "random, or always the same class, scores about that.",
            "`0.000` (below chance): the model never named the right class; in practice it "
            "always answers null (action 0, 'no class yet') at the trigger, as a network still "
            "on the null plateau does. A model that names classes, even at random, scores about "
            "chance: 0 is not chance-level guessing.",
            "`n/a` (slowest anchor q): the model has no fixed-size state (the Transformer's "
            "key/value cache grows every step), so it has no class anchors to measure.",
            "`-`: not measured: for slowest anchor q, no class was answered correctly 15 steps "
            "after its image in any seed (no correct trials, no centre of mass: e.g. a model "
            "that always answers null); for accuracy and train s, no seed of the row finished "
            "(all diverged).",
        ]

    def markdown(self) -> str:
        """The table: accuracy mean +- 95% t half-width over seeds at each table delay, then
        its legend (`legend`)."""
        low, high = self.trained_delays
        labels = []
        for d in self.table_delays:
            factor = next((m for m in MULTIPLES if d == m * high), None)
            labels.append(f"{d} ({factor}x)" if factor else str(d))
        head = (
            "| architecture | half-life (steps) | params | seeds | train s | "
            + " | ".join(f"acc @ {label}" for label in labels)
            + " | slowest anchor q |"
        )
        rule = "|---|---:|---:|---:|---:|" + "---:|" * len(labels) + "---:|"
        lines = [head, rule]
        for row in self.rows:
            mean, half = row.summary(self.table_delays)
            cells = [_pm(m, h) for m, h in zip(mean, half, strict=True)]
            seeds = f"{len(row.seeds)}" + (
                f" (+{len(row.diverged)} diverged)" if row.diverged else ""
            )
            train = f"{np.mean(row.train_s):.0f}" if row.train_s else "-"
            anchor = "n/a" if not row.recurrent else _sci(row.anchor_median)
            half_life = row.half_life(self.trained_delays, self.chance).text()
            lines.append(
                f"| {row.arch} | {half_life} | {row.n_parameters:,} | {seeds} | {train} | "
                + " | ".join(cells) + f" | {anchor} |"
            )  # fmt: skip
        lines += ["", "Legend:", ""] + [f"- {entry}" for entry in self.legend()]
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _pm(mean: float, half: float) -> str:
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.3f} ± {half:.3f}" if math.isfinite(half) else f"{mean:.3f}"


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def aggregate(
    results: list[RunResult],
    table_delays: tuple[int, ...],
    trained_delays: tuple[int, int],
    order: list[str] | None = None,
) -> BenchTable:
    """Groups per-run results by architecture, rows sorted by memory half-life (ties in
    ``order``, else first appearance); the number of classes (chance) comes from the
    evaluations' ``meta`` (10 when not recorded)."""
    by_arch: dict[str, list[RunResult]] = {}
    for result in results:
        by_arch.setdefault(result.arch, []).append(result)
    names = [n for n in (order or list(by_arch)) if n in by_arch]
    rows = []
    for name in names:
        runs = sorted(by_arch[name], key=lambda r: r.seed)
        done = [r for r in runs if r.status == "done"]
        delays = np.asarray(done[0].evaluation["delays"] if done else [], dtype=np.int64)
        accuracy = np.array([r.accuracy_at(tuple(delays.tolist())) for r in done]).reshape(
            len(done), delays.size
        )
        rows.append(
            BenchRow(
                arch=name,
                spec=runs[0].spec,
                seeds=[r.seed for r in done],
                diverged=[r.seed for r in runs if r.status != "done"],
                delays=delays,
                accuracy=accuracy,
                n_parameters=runs[0].n_parameters,
                train_s=[r.train_s for r in done],
                anchor_speeds=[(r.anchor or {}).get("slowest") for r in done],
                recurrent=any(r.recurrent for r in done),
            )  # fmt: skip
        )
    classes = {
        int(r.evaluation["meta"]["n_classes"])
        for r in results
        if r.status == "done" and "n_classes" in (r.evaluation or {}).get("meta", {})
    }
    if len(classes) > 1:
        raise UsageError(f"the results were evaluated with different numbers of classes {classes}")
    table = BenchTable(rows, tuple(table_delays), tuple(trained_delays))
    table.n_classes = classes.pop() if classes else 10
    table.sort_by_half_life()
    return table


ROW_LINES = (("-", "o"), ("--", "s"), ("-.", "^"))
"""Line style and marker of the rows, one pair per ten colours (dotted is the chance line)."""


def row_style(i: int) -> tuple[str, str, str]:
    """``(colour, line style, marker)`` of the figure's row ``i``: ten colours, then the same
    colours with the next line style, so 30 rows stay distinguishable."""
    line, marker = ROW_LINES[(i // 10) % len(ROW_LINES)]
    return f"C{i % 10}", line, marker


def plot_bench(table: BenchTable, ax=None, title: str | None = None):
    """Accuracy vs delay (log axis), one curve per architecture: mean over seeds with its 95%
    t-interval as a band (clipped to [0, 1]), the chance line (``1 / n_classes``) and, in the
    legend, what an accuracy of 0 means (`NULL_NOTE`). Returns the ``Figure`` (no pyplot
    state)."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(8.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    low, high = table.trained_delays
    ax.axvspan(low, high, color="0.9", zorder=0, label="trained delays")
    for i, row in enumerate(table.rows):
        if not row.seeds:
            continue
        mean, half = t_interval(row.accuracy)
        color, line, marker = row_style(i)
        ax.plot(
            row.delays, mean, ls=line, marker=marker, ms=3, color=color,
            label=f"{row.arch} (n={len(row.seeds)})",
        )  # fmt: skip
        band = np.nan_to_num(half, nan=0.0)
        ax.fill_between(
            row.delays, np.clip(mean - band, 0, 1), np.clip(mean + band, 0, 1),
            color=color, alpha=0.15, lw=0,
        )  # fmt: skip
    n = table.n_classes
    ax.axhline(table.chance, color="0.5", ls=":", lw=1, label=f"chance = 1/{n} (random class)")
    ax.plot([], [], ls="none", label=f"{NULL_NOTE}\n(never names a class)")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("delay (steps between stimulus and trigger)")
    ax.set_ylabel("retrieval accuracy (held-out images)")
    ax.set_title(title or "accuracy vs delay: mean over seeds, 95% t-interval")
    ax.grid(True, which="major", alpha=0.3)
    # outside the axes: every corner inside holds a curve or a band at some delay
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return fig
