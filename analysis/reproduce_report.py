"""The report of `memenv reproduce`: claims, tables, figures and markdown (pure functions).

Everything here works on plain data that `analysis.reproduce.load_results` reads from the run
folder, so every function can be tested on hand-made inputs:

* ``results["accuracy"][cell][curriculum]``: ``{"delays": [n_d], "accuracy": [K][n_d]}``
  (one row per ensemble member, held-out images);
* ``results["networks"]``: one dict per analysed member: ``cell``, ``curriculum``, ``member``,
  ``mean_speed`` (mean slow-point speed over classes), ``long_accuracy`` (mean accuracy over
  the long delays), ``class_speeds`` / ``class_accuracy`` (``[10]``, NaN = none),
  ``n_distinct_points``, ``n_searches``, ``n_converged``, and, where backtracked,
  ``lineage`` = `lineage_metrics` of its `analysis.backtrack.Lineage`;
* ``results["regularize"]``: the records of `analysis.regularize_study` (one per fine-tuning).

Verdict rule (`verdict`), the same for every claim: **reproduced** when the effect has the
paper's sign and the test's two-sided p < 0.05; **not reproduced** when it has the opposite
sign with p < 0.05 (or, for claim (d), when the attachment share is clearly below half);
**inconclusive** otherwise, and whenever a piece is missing (too few networks, no lineage, no
merge event, no regularisation records), with the reason in the row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from analysis.intervals import t_interval
from memenv.errors import UsageError

ALPHA = 0.05
"""Significance level of every claim test (two-sided)."""
REPORT_DELAYS = (10, 19, 40, 100, 200, 500, 1000, 2000)
"""Delays shown in the accuracy tables (those that were measured)."""
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
CURRICULUM_COLORS = {"none": "0.35", "vocu": "C3", "decu": "C0"}


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims table.

    Attributes:
        claim: The paper's claim, in a few words.
        scope: What it was tested on (a cell, or ``"all"``).
        verdict: `REPRODUCED`, `NOT_REPRODUCED` or `INCONCLUSIVE`.
        numbers: The effect and its test statistic, human-readable.
        test: The test used.
        reason: Why a row is inconclusive for lack of data (None otherwise).
    """

    claim: str
    scope: str
    verdict: str
    numbers: str
    test: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(effect: float, p_value: float, expected_sign: int, alpha: float = ALPHA) -> str:
    """The verdict rule: ``effect`` with ``expected_sign`` (+1 / -1) and ``p < alpha`` is
    reproduced, the opposite sign with ``p < alpha`` not reproduced, anything else (NaN
    included) inconclusive."""
    if not (math.isfinite(effect) and math.isfinite(p_value)) or p_value >= alpha or effect == 0:
        return INCONCLUSIVE
    return REPRODUCED if np.sign(effect) == expected_sign else NOT_REPRODUCED


def _missing(claim: str, scope: str, test: str, reason: str) -> ClaimRow:
    return ClaimRow(claim, scope, INCONCLUSIVE, "n/a", test, reason)


def _finite(values: Sequence[Any]) -> np.ndarray:
    array = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def _fmt_signed(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.3f}"


def _fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else f"{p:.3g}"


# ----------------------------------------------------------------------------- claims
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


def claim_decu_extrapolates(
    accuracy: dict[str, dict[str, Any]], cell: str, long_delay_min: int
) -> ClaimRow:
    """(a) DeCu networks beat VoCu networks at long delays, for one cell.

    Test: Welch's two-sample t-test on the per-network long-delay accuracy (mean over the
    delays ``>= long_delay_min``). The members of the two ensembles are independent networks,
    not pairs: member k of DeCu and member k of VoCu share only an initialisation seed, so a
    paired test would be wrong.
    """
    claim = "DeCu extrapolates better than VoCu"
    test = f"Welch t-test, per-network mean accuracy at delays >= {long_delay_min}"
    runs = accuracy.get(cell, {})
    if "decu" not in runs or "vocu" not in runs:
        return _missing(claim, cell, test, "needs evaluated DeCu and VoCu runs")
    try:
        decu = long_delay_accuracy(runs["decu"]["accuracy"], runs["decu"]["delays"], long_delay_min)
        vocu = long_delay_accuracy(runs["vocu"]["accuracy"], runs["vocu"]["delays"], long_delay_min)
    except ValueError as error:
        return _missing(claim, cell, test, str(error))
    if decu.size < 2 or vocu.size < 2:
        return _missing(claim, cell, test, f"too few networks ({decu.size} DeCu, {vocu.size} VoCu)")
    diff = float(decu.mean() - vocu.mean())
    if np.ptp(decu) == 0 and np.ptp(vocu) == 0:
        p, t = (1.0, 0.0) if diff == 0 else (0.0, math.copysign(math.inf, diff))
    else:
        result = stats.ttest_ind(decu, vocu, equal_var=False)
        p, t = float(result.pvalue), float(result.statistic)
    numbers = (
        f"DeCu {decu.mean():.3f} (n={decu.size}) vs VoCu {vocu.mean():.3f} (n={vocu.size}); "
        f"difference {diff:+.3f}, t={t:.2f}, p={_fmt_p(p)}"
    )
    return ClaimRow(claim, cell, verdict(diff, p, +1), numbers, test)


SPEED_SENSITIVITY = {
    "mean_centre_speed": "speed at the class centres, the task's noise",
    "mean_authors_centre_speed": "speed at the class centres, the authors' noise: 1/3 std, "
    "one sequence shared by all trials",
}
"""Sensitivity rows of claim (b): the same test with the speed measured elsewhere."""


def claim_speed_accuracy(networks: list[dict[str, Any]], speed_key: str = "mean_speed") -> ClaimRow:
    """(b) Slower slow points go with better long-delay memory (negative correlation).

    Primary test: Spearman across networks of the mean slow-point speed (over classes) against
    the long-delay accuracy. The pooled per-class Spearman (every class of every network as one
    pair: speed of its slow point vs its accuracy at the analysis' long delay) is reported too,
    but not used for the verdict: classes of one network are not independent. With
    ``speed_key`` one of `SPEED_SENSITIVITY`, the row is a sensitivity check: the same test with
    each network's mean speed at its class centres (no pooled per-class figure).
    """
    from analysis.speed_accuracy import spearman

    claim = "speed-accuracy correlation is negative"
    test = "Spearman across networks: mean slow-point speed vs long-delay accuracy"
    if speed_key != "mean_speed":
        claim += f" (sensitivity: {SPEED_SENSITIVITY[speed_key]})"
        test = "Spearman across networks: mean centre speed vs long-delay accuracy"
    networks = [n for n in networks if math.isfinite(n.get(speed_key, math.nan))]
    if len(networks) < 3:
        return _missing(claim, "all", test, f"needs >= 3 analysed networks, got {len(networks)}")
    across = spearman([n[speed_key] for n in networks], [n["long_accuracy"] for n in networks])
    if speed_key != "mean_speed":
        numbers = f"across networks rho={across.rho:.3f}, p={_fmt_p(across.p_value)}, n={across.n}"
        if not math.isfinite(across.rho):
            return ClaimRow(claim, "all", INCONCLUSIVE, numbers, test, "constant values")
        return ClaimRow(claim, "all", verdict(across.rho, across.p_value, -1), numbers, test)
    speeds = np.concatenate([np.asarray(n["class_speeds"], dtype=float) for n in networks])
    accs = np.concatenate([np.asarray(n["class_accuracy"], dtype=float) for n in networks])
    pooled = spearman(speeds, accs)
    numbers = (
        f"across networks rho={across.rho:.3f}, p={_fmt_p(across.p_value)}, n={across.n}; "
        f"pooled per class rho={pooled.rho:.3f}, p={_fmt_p(pooled.p_value)}, n={pooled.n}"
    )
    if not math.isfinite(across.rho):
        return ClaimRow(
            claim, "all", INCONCLUSIVE, numbers, test, "correlation undefined (constant values)"
        )
    return ClaimRow(claim, "all", verdict(across.rho, across.p_value, -1), numbers, test)


def track_jumpiness(states_sxn: Any) -> float:
    """Largest checkpoint-to-checkpoint displacement of one tracked point over its total path
    length (``states [S, N]``, steps increasing): 1 = it moved in a single jump, ``1/(S-1)``
    = evenly. NaN when it never moves or has fewer than 2 checkpoints."""
    states = np.asarray(states_sxn, dtype=np.float64)
    if states.ndim != 2 or states.shape[0] < 2 or not np.isfinite(states).all():
        return math.nan
    steps = np.linalg.norm(np.diff(states, axis=0), axis=1)
    total = float(steps.sum())
    return float(steps.max() / total) if total > 0 else math.nan


def lineage_metrics(lineage: Any) -> dict[str, Any]:
    """What the claims need from one `analysis.backtrack.Lineage` (JSON-able).

    Returns ``jumpiness`` (mean of `track_jumpiness` over the tracks; None if none defined),
    ``track_jumpiness`` ``[P]``, ``first_vocabulary`` (smallest active vocabulary),
    ``later_classes`` (tracked classes outside it), ``attached`` (later classes whose point
    merges, going back, into an existing class's point), ``parent_changes`` (the parent
    class's accuracy change at each such birth, finite ones), ``n_events``, ``n_checkpoints``.
    """
    per_track = [track_jumpiness(lineage.states[p]) for p in range(lineage.states.shape[0])]
    finite = [v for v in per_track if math.isfinite(v)]
    first = int(lineage.n_classes.min()) if lineage.n_classes.size else 10
    later = sorted(int(c) for c in lineage.classes if int(c) >= first)
    attached, changes = [], []
    for event in lineage.events:
        if event.child in later and event.parent >= 0:
            attached.append(int(event.child))
            if math.isfinite(event.parent_accuracy_change):
                changes.append(float(event.parent_accuracy_change))
    return {
        "jumpiness": float(np.mean(finite)) if finite else None,
        "track_jumpiness": [v if math.isfinite(v) else None for v in per_track],
        "first_vocabulary": first,
        "later_classes": later,
        "attached": attached,
        "parent_changes": changes,
        "n_events": len(lineage.events),
        "n_checkpoints": int(lineage.steps.size),
    }


def claim_vocu_jumps(networks: list[dict[str, Any]], cell: str) -> ClaimRow:
    """(c) VoCu changes by jumps, DeCu gradually, for one cell.

    Metric per network: the mean over its tracked slow points of (largest single
    checkpoint-to-checkpoint displacement) / (total path length) (`track_jumpiness`; higher =
    jumpier). Test: two-sided Mann-Whitney U of VoCu vs DeCu networks; the effect is the
    difference of the medians.
    """
    claim = "VoCu changes by jumps, DeCu gradually"
    test = "Mann-Whitney U (two-sided), per-network jumpiness = max step / path length"

    def values(curriculum: str) -> np.ndarray:
        return _finite(
            [
                (n.get("lineage") or {}).get("jumpiness")
                for n in networks
                if n["cell"] == cell and n["curriculum"] == curriculum
            ]
        )

    vocu, decu = values("vocu"), values("decu")
    if vocu.size < 2 or decu.size < 2:
        return _missing(
            claim, cell, test, f"too few backtracked networks ({vocu.size} VoCu, {decu.size} DeCu)"
        )
    effect = float(np.median(vocu) - np.median(decu))
    if np.ptp(np.concatenate([vocu, decu])) == 0:
        p = 1.0
    else:
        p = float(stats.mannwhitneyu(vocu, decu, alternative="two-sided").pvalue)
    numbers = (
        f"median jumpiness VoCu {np.median(vocu):.3f} (n={vocu.size}) vs DeCu "
        f"{np.median(decu):.3f} (n={decu.size}); difference {effect:+.3f}, p={_fmt_p(p)}"
    )
    return ClaimRow(claim, cell, verdict(effect, p, +1), numbers, test)


def claim_vocu_attachment(
    networks: list[dict[str, Any]], cell: str, min_tracks: int = 10
) -> ClaimRow:
    """(d) A new VoCu class attaches to an existing class's slow point and hurts that class.

    From the VoCu networks' lineages: the share of later classes (outside the first
    vocabulary) whose point merges, going back, into an existing class's point, and the parent
    class's accuracy change at each such birth. Test: two-sided sign test (binomial) on the
    changes; the one-sample t-test is reported too. Reproduced: share >= 1/2 and the changes
    negative with p < 0.05. Not reproduced: changes positive with p < 0.05, or share < 1/2
    with its binomial p < 0.05 over at least ``min_tracks`` later classes.
    """
    claim = "new VoCu class attaches to an existing point and hurts it"
    test = "sign test (two-sided) on the parent's accuracy change at each birth"
    vocu = [
        n["lineage"]
        for n in networks
        if n["cell"] == cell and n["curriculum"] == "vocu" and n.get("lineage")
    ]
    if not vocu:
        return _missing(claim, cell, test, "no backtracked VoCu network")
    n_later = sum(len(m["later_classes"]) for m in vocu)
    n_attached = sum(len(m["attached"]) for m in vocu)
    changes = np.asarray([c for m in vocu for c in m["parent_changes"]], dtype=np.float64)
    if n_later == 0:
        return _missing(claim, cell, test, "no later class was tracked")
    share = n_attached / n_later
    share_p = float(stats.binomtest(n_attached, n_later, 0.5).pvalue)
    nonzero = changes[changes != 0]
    n_down = int((nonzero < 0).sum())
    sign_p = float(stats.binomtest(n_down, nonzero.size, 0.5).pvalue) if nonzero.size else math.nan
    t_p = (
        float(stats.ttest_1samp(changes, 0.0).pvalue)
        if changes.size >= 2 and np.ptp(changes) > 0
        else math.nan
    )
    mean_change = float(changes.mean()) if changes.size else math.nan
    numbers = (
        f"{n_attached}/{n_later} later classes attach ({share:.0%}, binomial p={_fmt_p(share_p)}) "
        f"in {len(vocu)} networks; parent accuracy change mean {_fmt_signed(mean_change)} over "
        f"{changes.size} births, {n_down} of {nonzero.size} down, sign p={_fmt_p(sign_p)}, "
        f"t-test p={_fmt_p(t_p)}"
    )
    if n_later >= min_tracks and share < 0.5 and share_p < ALPHA and n_attached > 0:
        return ClaimRow(claim, cell, NOT_REPRODUCED, numbers, test)
    if changes.size == 0:
        reason = (
            "no merge event in any VoCu lineage (checkpoints may be too sparse to resolve births)"
            if not any(m["n_events"] for m in vocu)
            else "no merge event with a known parent accuracy"
        )
        return ClaimRow(claim, cell, INCONCLUSIVE, numbers, test, reason)
    # the sign test's effect: more births with the parent's accuracy up than down, or fewer
    outcome = verdict(float(nonzero.size - 2 * n_down), sign_p, -1)
    if outcome == REPRODUCED and share < 0.5:
        outcome = INCONCLUSIVE  # it hurts, but most new classes did not attach
    return ClaimRow(claim, cell, outcome, numbers, test)


def claim_regularization(records: list[dict[str, Any]], cell: str, long_delay_min: int) -> ClaimRow:
    """(e) Speed regularisation (centre anchors) improves long-delay accuracy, for one cell.

    Per base network (seed): centre minus control accuracy after fine-tuning, mean over the
    delays ``>= long_delay_min``; both fine-tunings start from the same network and are
    evaluated on the same trials, so the difference is paired. Test: one-sample t-test of the
    differences against 0.
    """
    claim = "regularisation improves long-delay accuracy"
    test = (
        f"paired t-test over seeds, center - control, mean accuracy at delays >= {long_delay_min}"
    )
    by = {(r["mode"], r["seed"]): r for r in records if r["cell"] == cell}
    seeds = sorted(s for (m, s) in by if m == "center" and ("control", s) in by)
    if len(seeds) < 2:
        return _missing(
            claim, cell, test, f"needs >= 2 seeds with center and control, got {len(seeds)}"
        )

    def long(record: dict[str, Any]) -> float:
        after = record.get("accuracy_after") or {}
        values = [a for d, a in after.items() if int(d) >= long_delay_min]
        return float(np.mean(values)) if values else math.nan

    diff = np.asarray([long(by["center", s]) - long(by["control", s]) for s in seeds])
    if not np.isfinite(diff).all():
        return _missing(claim, cell, test, f"no evaluated delay >= {long_delay_min}")
    mean = float(diff.mean())
    if np.ptp(diff) == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(stats.ttest_1samp(diff, 0.0).pvalue)
    numbers = f"center - control {mean:+.3f} over {diff.size} seeds, p={_fmt_p(p)}"
    return ClaimRow(claim, cell, verdict(mean, p, +1), numbers, test)


def regularized_groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fine-tuning records with ``cell`` relabelled ``"<cell> <curriculum>"`` (e.g.
    ``"gru decu"``): the unit the regularisation claims and tables are made per. Records
    without a curriculum are from the no-curriculum networks."""
    return [{**r, "cell": f"{r['cell']} {r.get('curriculum', 'none')}"} for r in records]


def claims_table(results: dict[str, Any]) -> list[ClaimRow]:
    """All claim rows: (a), (c), (d), (e) per cell, (b) over all networks."""
    long_min = int(results["long_delay_min"])
    cells = list(results["cells"])
    networks = results.get("networks", [])
    rows = [claim_decu_extrapolates(results.get("accuracy", {}), c, long_min) for c in cells]
    rows.append(claim_speed_accuracy(networks))
    rows += [
        claim_speed_accuracy(networks, key)
        for key in SPEED_SENSITIVITY
        if any(math.isfinite(n.get(key, math.nan)) for n in networks)
    ]
    rows += [claim_vocu_jumps(networks, c) for c in cells]
    rows += [claim_vocu_attachment(networks, c) for c in cells]
    records = regularized_groups(results.get("regularize") or [])
    if records:
        groups = list(dict.fromkeys(r["cell"] for r in records))  # first-seen order
        rows += [claim_regularization(records, group, long_min) for group in groups]
    else:
        rows.append(
            _missing(
                "regularisation improves long-delay accuracy", "all", "paired t-test over seeds",
                results.get("regularize_skipped") or "no regularisation results",
            )
        )  # fmt: skip
    return rows


# ------------------------------------------------------------------------------ tables
def _ci(values: Any, digits: int = 3) -> str:
    mean, low, high = t_interval(values)
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def claims_markdown(rows: list[ClaimRow]) -> str:
    lines = ["| claim | scope | verdict | numbers | test |", "|---|---|---|---|---|"]
    for row in rows:
        numbers = row.numbers + (f" ({row.reason})" if row.reason else "")
        lines.append(f"| {row.claim} | {row.scope} | **{row.verdict}** | {numbers} | {row.test} |")
    return "\n".join(lines)


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
        "| cell | curriculum | networks | distinct slow points | converged searches | "
        "geometric-mean class speed | long-delay accuracy | per-network class Spearman (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (cell, curriculum), group in _groups(networks).items():
        speeds = _finite([q for n in group for q in n["class_speeds"]])
        positive = speeds[speeds > 0]
        geo = f"{math.exp(np.log(positive).mean()):.3g}" if positive.size else "n/a"
        conv = sum(n["n_converged"] for n in group) / max(sum(n["n_searches"] for n in group), 1)
        rhos = _finite([n.get("class_rho") for n in group])
        lines.append(
            f"| {cell.upper()} | {curriculum} | {len(group)} | "
            f"{_ci([n['n_distinct_points'] for n in group], 1)} | {conv:.0%} | {geo} | "
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
        "| cell | curriculum | backtracked networks | checkpoints | jumpiness (mean [95% CI]) | "
        "merge events | later classes attached | parent accuracy change (mean) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (cell, curriculum), group in _groups(networks).items():
        metrics = [n["lineage"] for n in group if n.get("lineage")]
        if not metrics:
            continue
        later = sum(len(m["later_classes"]) for m in metrics)
        attached = sum(len(m["attached"]) for m in metrics)
        changes = _finite([c for m in metrics for c in m["parent_changes"]])
        lines.append(
            f"| {cell.upper()} | {curriculum} | {len(metrics)} | {metrics[0]['n_checkpoints']} | "
            f"{_ci([m['jumpiness'] for m in metrics])} | {sum(m['n_events'] for m in metrics)} | "
            f"{attached}/{later} | "
            f"{f'{changes.mean():+.3f} (n={changes.size})' if changes.size else 'n/a'} |"
        )
    if len(lines) == 2:
        lines.append("| - | - | 0 | - | - | - | - | - |")
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
    for (cell, curriculum), group in _groups(networks).items():
        speeds = np.asarray([n["mean_speed"] for n in group], dtype=float)
        accs = np.asarray([n["long_accuracy"] for n in group], dtype=float)
        keep = np.isfinite(speeds) & (speeds > 0) & np.isfinite(accs)
        ax.scatter(
            speeds[keep], accs[keep], color=CURRICULUM_COLORS.get(curriculum),
            marker=markers.get(cell, "o"), label=f"{cell.upper()} {curriculum}", s=36,
        )  # fmt: skip
    ax.set_xscale("log")
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
        f"- commit: {meta.get('commit', 'unknown')}",
        f"- machine: {meta.get('machine', 'n/a')}",
        f"- wall time: {meta.get('wall_s', 'n/a')} s (all calls together)",
        f"- data: {meta.get('data_source', 'n/a')}",
        f"- networks: cells {', '.join(results['cells'])} x curricula "
        f"{', '.join(results.get('curricula', []))} x {meta.get('n_seeds', '?')} seeds (each "
        "(cell, curriculum) one batched ensemble; members are independent networks)",
        f"- training: {meta.get('training', 'n/a')}",
        f"- long delays: every evaluated delay >= {long_min}",
        "",
    ]
    if results.get("failures"):
        lines += ["Failed jobs (retried on the next run):", ""]
        lines += [f"- {f}" for f in results["failures"]] + [""]
    lines += [
        SECTIONS[1],
        "",
        "Verdict rule: **reproduced** when the effect has the paper's sign and p < 0.05 "
        "(two-sided); **not reproduced** when it has the opposite sign with p < 0.05; "
        "**inconclusive** otherwise or when data are missing (reason in brackets).",
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
        SECTIONS[4],
        "",
        f"Mean slow-point speed over classes vs mean accuracy at delays >= {long_min}, "
        "Spearman across networks.",
        "",
        speed_accuracy_markdown(results.get("networks", [])),
        "",
        *figure("speed_accuracy", "speed vs accuracy"),
        SECTIONS[5],
        "",
        "Jumpiness of a tracked slow point: its largest checkpoint-to-checkpoint displacement "
        "over its total path length (1 = one jump). Later classes: outside the first "
        "vocabulary; attached: merges, going back, into an existing class's point.",
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
            "no-curriculum runs, fine-tuned per mode (`analysis.regularize_study`'s table: "
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


# --------------------------------------------------------------------------------- HTML
def _inline_html(text: str) -> str:
    """Escapes ``text`` and renders the inline markdown the report uses (code, bold)."""
    import html
    import re

    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def report_html(markdown_text: str, images: dict[str, bytes]) -> str:
    """A self-contained HTML page of ``report.md`` (the subset of markdown it uses: headings,
    paragraphs, lists, tables, images); ``images`` maps an image file name to its PNG bytes,
    embedded as data URIs (an image not in it is linked by name)."""
    import base64
    import html
    import re

    body: list[str] = []
    lines = markdown_text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        image = re.match(r"^!\[([^\]]*)\]\(([^)]+)\)$", line.strip())
        if heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline_html(heading.group(2))}</h{level}>")
            i += 1
        elif image:
            alt, name = image.groups()
            source = (
                "data:image/png;base64," + base64.b64encode(images[name]).decode("ascii")
                if name in images
                else html.escape(name)
            )
            body.append(f'<p><img alt="{html.escape(alt)}" src="{source}"></p>')
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):  # the separator row
                    rows.append(cells)
                i += 1
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{_inline_html(c)}</th>" for c in head))
            for row in rest:
                body.append("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>")
            body.append("</table>")
        elif line.startswith("- "):
            body.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                body.append(f"<li>{_inline_html(lines[i][2:])}</li>")
                i += 1
            body.append("</ul>")
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||- |!\[)", lines[i]):
                paragraph.append(lines[i])
                i += 1
            body.append(f"<p>{_inline_html(' '.join(paragraph))}</p>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
        "padding:3px 6px;font-size:90%}img{max-width:100%}"
    )
    title = next((m.group(1) for m in re.finditer(r"^# (.*)$", markdown_text, re.M)), "report")
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
