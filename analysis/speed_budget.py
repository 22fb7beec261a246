"""Speeds are budgets, not properties: how a class's slow-point speed depends on the search.

`analysis.pipeline.analyze_network` gives each class the speed ``q`` of the point that the
Levenberg-Marquardt search from the class centre reached, and that search stops after
``max_iterations`` Jacobians (default 50). A search that has not converged by then reports the
speed where its budget ran out: an upper bound on the speed of the slow point nearby, not a
property of it. `budget_speeds` repeats the centre searches of one network under several
budgets (and, optionally, the paper's Adam search), from the same centres; `ranking_agreement`
asks whether the ranking of networks by speed survives a larger budget, and `stable_budget`
names the smallest budget whose ranking the larger ones confirm.

Shapes: ``B`` budgets (labels ``"lm<b>"``, then ``"adam<iterations>"``), ``C`` classes (the
active vocabulary; column k is class k), ``n`` networks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from analysis.claims import SLOW_TOL as SLOW_POINT_TOL
from analysis.pipeline import AnalysisOptions
from analysis.slow_points import find_slow_points
from memenv import DelayedRecallTask
from memenv.errors import UsageError

DEFAULT_BUDGETS = (50, 200, 1000)
"""Levenberg-Marquardt budgets (Jacobians per search); 50 is the pipeline's default."""
LM_PREFIX = "lm"
ADAM_PREFIX = "adam"
ADAM_DROP_SHARE = 0.4
"""The paper drops Adam's learning rate after 40,000 of 100,000 iterations: at this share."""
_NEWTON_ONLY = ("max_iterations", "initial_damping", "max_damping", "relative_tol", "chunk_size")
_ADAM_ONLY = ("iterations", "lr", "lr_drop_at", "lr_drop_factor")
_SET_HERE = ("eigenvalues", "progress", "n_classes", "initial_labels")


@dataclass
class BudgetSpeeds:
    """The class-centre searches of one network under B budgets.

    Attributes:
        labels: ``[B]`` names: ``"lm<b>"`` (Levenberg-Marquardt, at most b Jacobians) or
            ``"adam<i>"`` (the paper's Adam, i iterations).
        class_speeds_bxc: float64 ``[B, C]``: speed ``q`` where class c's search stopped (NaN:
            the class has no valid centre, no correct trial).
        converged_bxc: bool ``[B, C]``: the search reached its tolerance (a fixed point or a
            stationary point of ``q``; `analysis.slow_points.SlowPoints.converged`) rather than
            stopping at its budget (False without a centre).
        iterations_bxc: int64 ``[B, C]``: Jacobians (LM) or steps (Adam) used (0 without a
            centre).
        seconds_b: float64 ``[B]``: wall time of each budget's search (all classes at once).
    """

    labels: list[str]
    class_speeds_bxc: np.ndarray
    converged_bxc: np.ndarray
    iterations_bxc: np.ndarray
    seconds_b: np.ndarray

    def __post_init__(self) -> None:
        self.labels = [str(label) for label in self.labels]
        self.class_speeds_bxc = np.asarray(self.class_speeds_bxc, dtype=np.float64)
        if self.class_speeds_bxc.ndim != 2 or self.class_speeds_bxc.shape[0] != len(self.labels):
            raise UsageError(
                f"class_speeds_bxc must be [B, C] with B = {len(self.labels)} labels, got shape "
                f"{self.class_speeds_bxc.shape}"
            )
        shape = self.class_speeds_bxc.shape
        for name, dtype, want in (
            ("converged_bxc", np.bool_, shape),
            ("iterations_bxc", np.int64, shape),
            ("seconds_b", np.float64, shape[:1]),
        ):
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.shape != want:
                raise UsageError(f"{name} must have shape {want}, got {value.shape}")
            setattr(self, name, value)

    @property
    def n_classes(self) -> int:
        return self.class_speeds_bxc.shape[1]

    def geometric_mean_b(self) -> np.ndarray:
        """float64 ``[B]``: geometric mean over the finite, positive class speeds (NaN if none).

        A speed of exactly 0 (a fixed point below floating-point resolution) has no logarithm
        and is left out, as a class without a centre is."""
        out = np.full(len(self.labels), np.nan)
        for b, speeds in enumerate(self.class_speeds_bxc):
            kept = speeds[np.isfinite(speeds) & (speeds > 0)]
            if kept.size:
                out[b] = float(np.exp(np.log(kept).mean()))
        return out

    def converged_share_b(self) -> np.ndarray:
        """float64 ``[B]``: share of the searches (classes with a centre) that converged."""
        searched = np.isfinite(self.class_speeds_bxc)
        n = searched.sum(axis=1)
        share = (self.converged_bxc & searched).sum(axis=1) / np.maximum(n, 1)
        return np.where(n > 0, share, np.nan)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN -> None)."""
        return {
            "labels": list(self.labels),
            "class_speeds": [[_json_float(q) for q in row] for row in self.class_speeds_bxc],
            "converged": self.converged_bxc.tolist(),
            "iterations": self.iterations_bxc.tolist(),
            "seconds": [_json_float(s) for s in self.seconds_b],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetSpeeds:
        """Inverse of `to_dict`."""
        labels = list(data["labels"])
        n_classes = len(data["class_speeds"][0]) if data["class_speeds"] else 0
        return cls(
            labels=labels,
            class_speeds_bxc=_nan_array(data["class_speeds"]).reshape(len(labels), n_classes),
            converged_bxc=np.asarray(data["converged"], dtype=np.bool_).reshape(
                len(labels), n_classes
            ),
            iterations_bxc=np.asarray(data["iterations"], dtype=np.int64).reshape(
                len(labels), n_classes
            ),
            seconds_b=_nan_array(data["seconds"]),
        )


def lm_label(budget: int) -> str:
    return f"{LM_PREFIX}{int(budget)}"


def adam_label(iterations: int) -> str:
    return f"{ADAM_PREFIX}{int(iterations)}"


def lm_budget(label: str) -> int | None:
    """The budget of an ``"lm<b>"`` label, None for any other label."""
    digits = label[len(LM_PREFIX) :]
    return int(digits) if label.startswith(LM_PREFIX) and digits.isdigit() else None


def budget_speeds(
    model: nn.Module,
    task: DelayedRecallTask,
    options: AnalysisOptions,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    *,
    n_classes: int | None = None,
    adam_iterations: int | None = None,
    progress: bool = False,
) -> BudgetSpeeds:
    """Speed of every class centre's search under each LM budget (and optionally Adam).

    The centres are computed once, exactly as `analysis.pipeline.analyze_network` does (the
    same ``options``: ``n_per_class``, ``settle_steps``, ``noise_scale``, ``shared_noise``,
    ``seed``, ``cell_speed``, the same `analysis_view`), and every search starts from them
    only: one search per class with a valid centre, none from single trials. LM budget b runs
    `find_slow_points` with ``method="newton"`` and ``max_iterations=b``; the other keys of
    ``options.search_options`` are passed on (those of the Adam search dropped). With
    ``adam_iterations``, one more row runs the paper's Adam search (learning rate / 10 after
    40% of the iterations, as the paper's 40,000 of 100,000, unless ``search_options`` sets
    ``lr_drop_at``), labelled ``"adam<iterations>"``.

    Args:
        model: A protocol model.
        task: Supplies images and noise (the ``test`` split, as `analysis_task` makes).
        options: The study's analysis settings.
        budgets: LM budgets (Jacobians per search), each >= 0; 0 is the speed at the centre.
        n_classes: Active vocabulary C; default ``task.config.n_classes``.
        adam_iterations: Add one Adam search of this many iterations; None: no Adam.
        progress: tqdm bars.

    Returns:
        `BudgetSpeeds` with B = ``len(budgets)`` (+ 1 with Adam) rows and C columns.

    Raises:
        UsageError (a ValueError): bad budgets, or no class is answered correctly after
        ``settle_steps`` steps (no centre to search from).
    """
    budgets = [_count(b, "budgets") for b in budgets]
    if not budgets or len(set(budgets)) != len(budgets):
        raise UsageError(f"budgets must be distinct integers >= 0, at least one; got {budgets}")
    if adam_iterations is not None:
        adam_iterations = _count(adam_iterations, "adam_iterations")
    from analysis.pipeline import network_centers

    n_classes = task.config.n_classes if n_classes is None else int(n_classes)
    dynamics, input_x, centers = network_centers(model, task, options, n_classes)
    valid = centers.valid
    if not valid.any():
        raise UsageError(
            f"the network answers no class correctly after {options.settle_steps} steps: "
            "no class centre to search from"
        )
    columns = centers.classes[valid]
    runs = [(lm_label(b), "newton", _lm_options(options, b)) for b in budgets]
    if adam_iterations is not None:
        runs.append((adam_label(adam_iterations), "adam", _adam_options(options, adam_iterations)))
    # untimed: the first Jacobian of a process sets up torch.func (seconds), not a budget's cost
    dynamics.residual_and_jacobian(
        dynamics.as_states(centers.centers[valid][:1]), dynamics.as_input(input_x)
    )
    shape = (len(runs), n_classes)
    speeds = np.full(shape, np.nan)
    converged = np.zeros(shape, dtype=np.bool_)
    iterations = np.zeros(shape, dtype=np.int64)
    seconds = np.zeros(len(runs))
    bar = tqdm(runs, desc="budgets", disable=not progress, leave=False)
    for b, (label, method, search_options) in enumerate(bar):
        bar.set_postfix_str(label)
        started = time.perf_counter()
        points = find_slow_points(
            dynamics, centers.centers[valid], input_x, method, n_classes=n_classes,
            initial_labels=columns, eigenvalues=False, progress=progress, **search_options,
        )  # fmt: skip
        seconds[b] = time.perf_counter() - started
        speeds[b, columns] = points.speeds
        converged[b, columns] = points.converged
        iterations[b, columns] = points.iterations
    return BudgetSpeeds([label for label, _, _ in runs], speeds, converged, iterations, seconds)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise UsageError(f"{name} must hold integers >= 0, got {value!r}")
    return int(value)


def _lm_options(options: AnalysisOptions, budget: int) -> dict[str, Any]:
    """``options.search_options`` for an LM search of ``budget`` Jacobians."""
    kept = _without(options.search_options, _ADAM_ONLY + _SET_HERE)
    return {**kept, "max_iterations": budget}


def _adam_options(options: AnalysisOptions, iterations: int) -> dict[str, Any]:
    """``options.search_options`` for an Adam search of ``iterations`` steps."""
    kept = _without(options.search_options, _NEWTON_ONLY + _SET_HERE)
    kept.setdefault("lr_drop_at", int(ADAM_DROP_SHARE * iterations))
    return {**kept, "iterations": iterations}


def _without(values: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


# ---------------------------------------------------------------------- across networks
def ranking_agreement(
    speeds_nxb: Any, groups: Sequence[Any] | None = None
) -> dict[str, np.ndarray]:
    """Kendall's tau between the network rankings of every pair of budgets.

    Args:
        speeds_nxb: ``[n, B]`` a speed per network and budget (e.g. `geometric_mean_b`);
            NaN where a network lacks a budget (the pair drops that network).
        groups: ``n`` hashable labels (e.g. ``(cell, curriculum)``): tau is then computed
            within each group and averaged, weighted by the networks each used, so that the
            speed differences between groups (a GRU's and an LSTM's differ by orders of
            magnitude) do not make two budgets look alike; p is then NaN. None: one group.

    Returns:
        ``{"tau": float64 [B, B], "p": float64 [B, B] (two-sided), "n": int64 [B, B] networks
        used}``: NaN tau and p for a pair with fewer than 2 networks or a constant column.
    """
    speeds = np.asarray(speeds_nxb, dtype=np.float64)
    if speeds.ndim != 2:
        raise UsageError(f"speeds_nxb must be [n, B], got shape {speeds.shape}")
    if groups is not None and len(groups) != speeds.shape[0]:
        raise UsageError(
            f"groups must name each of the {speeds.shape[0]} networks, got {len(groups)}"
        )
    labels = [0] * speeds.shape[0] if groups is None else list(groups)
    n_budgets = speeds.shape[1]
    tau = np.full((n_budgets, n_budgets), np.nan)
    p = np.full((n_budgets, n_budgets), np.nan)
    n = np.zeros((n_budgets, n_budgets), dtype=np.int64)
    members = {
        g: np.asarray([k for k, h in enumerate(labels) if h == g]) for g in dict.fromkeys(labels)
    }
    for i in range(n_budgets):
        for j in range(n_budgets):
            total, weight = 0.0, 0
            for index in members.values():
                x, y = speeds[index, i], speeds[index, j]
                keep = np.isfinite(x) & np.isfinite(y)
                x, y = x[keep], y[keep]
                n[i, j] += x.size
                if x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
                    result = stats.kendalltau(x, y)
                    total += x.size * float(result.statistic)
                    weight += x.size
                    if groups is None:
                        p[i, j] = float(result.pvalue)
            if weight:
                tau[i, j] = total / weight
    return {"tau": tau, "p": p, "n": n}


def stable_budget(labels: Sequence[str], tau_bxb: Any, threshold: float = 0.8) -> str | None:
    """The smallest LM budget whose network ranking every larger LM budget confirms.

    Rule: among the ``"lm<b>"`` labels, the smallest b such that, for every larger LM budget
    b', ``tau[b, b'] >= threshold`` (a NaN tau fails). The largest LM budget has nothing to
    be checked against and never qualifies, so at least two LM budgets are needed; other
    labels (Adam) are ignored. None when no budget qualifies.
    """
    tau = np.asarray(tau_bxb, dtype=np.float64)
    if tau.shape != (len(labels), len(labels)):
        raise UsageError(f"tau_bxb must have shape {(len(labels),) * 2}, got {tau.shape}")
    lm = sorted(
        (lm_budget(label), i) for i, label in enumerate(labels) if lm_budget(label) is not None
    )
    for position, (_, i) in enumerate(lm[:-1]):
        larger = [j for _, j in lm[position + 1 :]]
        if all(tau[i, j] >= threshold for j in larger):  # NaN >= x is False
            return labels[i]
    return None


def budget_markdown(
    networks: Sequence[BudgetSpeeds],
    agreement: dict[str, np.ndarray] | None = None,
    labels: Sequence[str] | None = None,
    stable: str | None = None,
    groups: Sequence[Any] | None = None,
) -> str:
    """Two markdown tables: per budget (over networks) and Kendall's tau between budgets.

    Args:
        networks: One `BudgetSpeeds` per network (a network may lack some labels, e.g. Adam).
        agreement: `ranking_agreement` of ``[n, B]`` geometric means in ``labels`` order;
            None: computed here.
        labels: Budget order; default the labels of all networks, first seen first.
        stable: `stable_budget`'s answer, stated under the tables.
    """
    labels = list(labels) if labels is not None else _all_labels(networks)
    means_nxb = geometric_means(networks, labels)
    if agreement is None:
        agreement = ranking_agreement(means_nxb, groups)
    rows = [
        "| budget | networks | median geometric-mean speed | searches converged | "
        f"searches at q <= {SLOW_POINT_TOL:g} | median seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b, label in enumerate(labels):
        found = [(net, net.labels.index(label)) for net in networks if label in net.labels]
        searched = sum(int(np.isfinite(net.class_speeds_bxc[i]).sum()) for net, i in found)
        converged = sum(
            int((net.converged_bxc[i] & np.isfinite(net.class_speeds_bxc[i])).sum())
            for net, i in found
        )
        slow = sum(int((net.class_speeds_bxc[i] <= SLOW_POINT_TOL).sum()) for net, i in found)
        seconds = [float(net.seconds_b[i]) for net, i in found]
        share = f"{converged}/{searched} ({converged / searched:.0%})" if searched else "-"
        slow_share = f"{slow}/{searched} ({slow / searched:.0%})" if searched else "-"
        rows.append(
            f"| {label} | {len(found)} | {_fmt(_nanmedian(means_nxb[:, b]), '.3g')} | {share} | "
            f"{slow_share} | "
            f"{_fmt(_nanmedian(seconds), '.2f')} |"
        )
    tau, n = agreement["tau"], agreement["n"]
    rows += [
        "",
        "Kendall's tau of the network ranking by geometric-mean speed "
        + ("within (cell, curriculum) groups, weighted " if groups is not None else "")
        + "(networks in pair):",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for i, label in enumerate(labels):
        cells = [f"{_fmt(tau[i, j], '.2f')} ({n[i, j]})" for j in range(len(labels))]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rows += [
        "",
        f"Stable budget (tau >= threshold with every larger LM budget): {stable or 'none'}",
    ]
    return "\n".join(rows) + "\n"


def budget_markdown_of(data: dict[str, Any]) -> str:
    """`budget_markdown` of the content of a ``speed_budget.json`` written by
    ``benchmarks/speed_budget.py`` ('' when it holds no network)."""
    networks = [BudgetSpeeds.from_dict(record["speeds"]) for record in data["networks"]]
    if not networks:
        return ""
    groups = [(r["cell"], r["curriculum"]) for r in data["networks"]]
    return budget_markdown(
        networks, labels=data["labels"], stable=data.get("stable_budget"), groups=groups
    )


def geometric_means(networks: Sequence[BudgetSpeeds], labels: Sequence[str]) -> np.ndarray:
    """float64 ``[n, B]``: each network's `geometric_mean_b` in ``labels`` order (NaN: absent)."""
    out = np.full((len(networks), len(labels)), np.nan)
    for r, net in enumerate(networks):
        means = net.geometric_mean_b()
        for b, label in enumerate(labels):
            if label in net.labels:
                out[r, b] = means[net.labels.index(label)]
    return out


def _all_labels(networks: Sequence[BudgetSpeeds]) -> list[str]:
    labels: list[str] = []
    for net in networks:
        labels += [label for label in net.labels if label not in labels]
    return labels


def _nanmedian(values: Any) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "-"


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _nan_array(values: Any) -> np.ndarray:
    """A nested list with None for NaN as a float64 array."""
    return np.array(values, dtype=object).astype(np.float64)  # None -> nan
