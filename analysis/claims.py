"""The paper's claims, evaluated on a study's results: one row per claim and scope, with the
statistic, the unit of analysis, the test, an effect with its 95% interval, raw and
Holm-adjusted p-values, and a verdict that says what it holds for.

The specification (statistic, unit, test and why, per claim) is docs/reproduction/claims.md;
each ``claim_*`` function here implements one of its rows on the plain data that
`studies.reproduce.load_results` reads (see `studies.reproduce_report` for its layout).

Verdicts (`finalize`): every row with a p-value is one hypothesis of one family, Holm-adjusted
at `ALPHA`. **supported**: adjusted p < 0.05 in the paper's direction; **contradicted**:
adjusted p < 0.05 against it; **no evidence either way**: otherwise; **not tested (reason)**:
a piece is missing (too few networks, no converged track, no merge event). Each verdict is
followed by its scope: preset, data and networks (``under `fast`, full MNIST, authors'
networks``). Sensitivity rows are shown with their raw p-value and no verdict: they check
whether a claim's row depends on a choice of measurement; they are not claims.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis.stats import (
    NOT_TESTABLE,
    Effect,
    equivalence_test,
    geometric_mean,
    holm,
    mean_test,
    paired_test,
    spearman_test,
    stratified_permutation_test,
)
from memenv.errors import UsageError

ALPHA = 0.05
"""Family-wise error rate of the claims table (Holm)."""
SUPPORTED, CONTRADICTED, NO_EVIDENCE, NOT_TESTED = (
    "supported", "contradicted", "no evidence either way", "not tested",
)  # fmt: skip
SENSITIVITY = "sensitivity (no verdict)"
SLOW_TOL = 1e-8
"""A point is a slow point when its speed ``q = ||F(s) - s||^2`` is at most this: a drift of at
most 1e-4 per step, 0.2 over the longest evaluated delay (2,000 steps), small against the
distance between class memories (order 1)."""
EQUIVALENCE_MARGIN = 0.02
"""Accuracy difference (absolute) within which DeCu and VoCu count as equal in the trained
range: twice the 95% half-width of one network's accuracy on 1,000 trials at 0.97."""
TRAINED_MAX = 19
"""Longest delay of the training distribution (4..19)."""


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims table.

    Attributes:
        key: Stable identifier of the claim (``decu_vs_vocu``, ...).
        claim: The paper's claim, in a few words.
        scope: What it was tested on (``GRU``, ``GRU DeCu``, ``all networks``).
        statistic: The effect's definition.
        unit: The unit of analysis (what n counts).
        test: The test and its direction.
        effect: `analysis.stats.Effect` (estimate, 95% interval, raw p, n).
        expected_sign: +1 / -1: the paper's direction of ``effect.estimate``; 0: an equivalence
            claim (see ``p_against``).
        p_against: For an equivalence claim, the p-value of "different by more than the
            margin" (the row's ``effect.p_value`` is then the equivalence test's).
        numbers: Further numbers, human-readable.
        reason: Why a row is not tested.
        in_family: Whether its p-value is one of the Holm family (False: sensitivity row).
        p_holm: Holm-adjusted p-value (set by `finalize`).
        verdict: One of the verdict words (set by `finalize`).
        held_for: Preset, data and networks the verdict holds for (set by `finalize`).
    """

    key: str
    claim: str
    scope: str
    statistic: str
    unit: str
    test: str
    effect: Effect = NOT_TESTABLE
    expected_sign: int = 1
    p_against: float = math.nan
    numbers: str = ""
    reason: str | None = None
    in_family: bool = True
    p_holm: float = math.nan
    verdict: str = NOT_TESTED
    held_for: str = ""

    @property
    def family_p(self) -> float:
        """The p-value this row contributes to the family (NaN: none)."""
        if not self.in_family or self.reason is not None:
            return math.nan
        if self.expected_sign == 0:
            return float(np.nanmin([self.effect.p_value, self.p_against, math.nan]))
        return self.effect.p_value

    def verdict_text(self) -> str:
        """``contradicted under `fast`, full MNIST, ...`` or ``not tested (reason)``."""
        if self.verdict == NOT_TESTED:
            return f"{NOT_TESTED} ({self.reason or 'no test'})"
        if self.verdict == SENSITIVITY:
            return SENSITIVITY
        return f"{self.verdict} {self.held_for}".strip()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict_text"] = self.verdict_text()
        return data


def _not_tested(row: ClaimRow, reason: str) -> ClaimRow:
    return dataclasses.replace(row, reason=reason, verdict=NOT_TESTED)


def finalize(rows: Sequence[ClaimRow], held_for: str, alpha: float = ALPHA) -> list[ClaimRow]:
    """Holm-adjusts the family of ``rows`` and gives each row its verdict and scope."""
    adjusted = holm([row.family_p for row in rows])
    out = []
    for row, p_adj in zip(rows, adjusted, strict=True):
        row = dataclasses.replace(row, p_holm=float(p_adj), held_for=held_for)
        if row.reason is not None or not math.isfinite(row.effect.estimate):
            reason = row.reason or "effect undefined (constant or missing values)"
            out.append(dataclasses.replace(row, reason=reason, verdict=NOT_TESTED))
        elif not row.in_family:
            out.append(dataclasses.replace(row, verdict=SENSITIVITY))
        else:
            out.append(dataclasses.replace(row, verdict=_verdict(row, float(p_adj), alpha)))
    return out


def _verdict(row: ClaimRow, p_adj: float, alpha: float) -> str:
    if not (math.isfinite(p_adj) and p_adj < alpha):
        return NO_EVIDENCE
    if row.expected_sign == 0:  # the smaller of the two p-values made the family's
        return SUPPORTED if row.effect.p_value <= row.p_against else CONTRADICTED
    if row.effect.estimate == 0:
        return NO_EVIDENCE
    return SUPPORTED if np.sign(row.effect.estimate) == row.expected_sign else CONTRADICTED


# ----------------------------------------------------------------- accuracy (a), (a')
def mean_accuracy(accuracy_kxd: Any, delays: Sequence[int], keep: Any) -> np.ndarray:
    """``[K]``: each member's mean accuracy over the delays where ``keep(delay)`` is true.

    Raises:
        ValueError: no measured delay qualifies.
    """
    delays_d = np.asarray(delays, dtype=np.int64)
    mask = np.asarray([bool(keep(int(d))) for d in delays_d], dtype=bool)
    if not mask.any():
        raise UsageError(f"no evaluated delay qualifies; delays {delays_d.tolist()}")
    return np.asarray(accuracy_kxd, dtype=np.float64)[:, mask].mean(axis=1)


def _paired_runs(
    accuracy: dict[str, dict[str, Any]], cell: str, keep: Any
) -> tuple[np.ndarray, np.ndarray] | str:
    runs = accuracy.get(cell, {})
    if "decu" not in runs or "vocu" not in runs:
        return "needs evaluated DeCu and VoCu runs"
    try:
        decu = mean_accuracy(runs["decu"]["accuracy"], runs["decu"]["delays"], keep)
        vocu = mean_accuracy(runs["vocu"]["accuracy"], runs["vocu"]["delays"], keep)
    except ValueError as error:
        return str(error)
    n = min(decu.size, vocu.size)
    if n < 2:
        return f"too few seeds with both runs ({n})"
    return decu[:n], vocu[:n]


def claim_decu_vs_vocu(
    accuracy: dict[str, dict[str, Any]], cell: str, long_delay_min: int
) -> ClaimRow:
    """DeCu networks remember longer than VoCu networks (paired by seed: member k of both
    ensembles starts from the same weights)."""
    row = ClaimRow(
        "decu_vs_vocu", "DeCu extrapolates better than VoCu", cell.upper(),
        f"DeCu - VoCu, mean accuracy at delays >= {long_delay_min}", "seed (pair of networks)",
        "paired t-test, two-sided; paper: > 0",
    )  # fmt: skip
    pairs = _paired_runs(accuracy, cell, lambda d: d >= long_delay_min)
    if isinstance(pairs, str):
        return _not_tested(row, pairs)
    decu, vocu = pairs
    numbers = f"DeCu {decu.mean():.3f}, VoCu {vocu.mean():.3f}"
    return dataclasses.replace(row, effect=paired_test(decu, vocu), numbers=numbers)


def claim_equal_in_range(
    accuracy: dict[str, dict[str, Any]], cell: str, margin: float = EQUIVALENCE_MARGIN
) -> ClaimRow:
    """Inside the trained range DeCu and VoCu networks are equally accurate (equivalence
    within ``margin``, paired by seed)."""
    row = ClaimRow(
        "equal_in_range", "equal accuracy inside the trained range", cell.upper(),
        f"DeCu - VoCu, mean accuracy at delays <= {TRAINED_MAX}", "seed (pair of networks)",
        f"paired TOST, margin +-{margin} (and the test of a difference beyond it)",
        expected_sign=0,
    )  # fmt: skip
    pairs = _paired_runs(accuracy, cell, lambda d: d <= TRAINED_MAX)
    if isinstance(pairs, str):
        return _not_tested(row, pairs)
    decu, vocu = pairs
    effect = paired_test(decu, vocu)
    p_equal, p_beyond = equivalence_test(decu - vocu, margin)
    return dataclasses.replace(
        row, effect=dataclasses.replace(effect, p_value=p_equal), p_against=p_beyond,
        numbers=f"DeCu {decu.mean():.3f}, VoCu {vocu.mean():.3f}; p(beyond margin) "
        f"{_fmt_p(p_beyond)}",
    )  # fmt: skip


# ---------------------------------------------------------------- speed-accuracy (b)
SPEED_SOURCES = {
    "class_speeds": "slow points",
    "centre_speeds": "class centres, the task's noise",
    "authors_centre_speeds": "class centres, the authors' noise (1/3 std, one shared sequence)",
}
"""Where a class's speed is measured: the claim uses the slow points; the others are
sensitivity rows."""


def _usable(networks: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [n for n in networks if n.get(key) is not None and math.isfinite(_geo(n, key))]


def _geo(network: dict[str, Any], key: str) -> float:
    return geometric_mean([math.nan if v is None else v for v in network[key]])


def claim_speed_accuracy_networks(
    networks: list[dict[str, Any]], speed_key: str = "class_speeds"
) -> ClaimRow:
    """Slower networks remember longer, within each (cell, curriculum) group: log geometric
    mean class speed vs accuracy at the analysis delay (the same delay as the per-class row),
    stratified permutation test. The pooled rho (groups mixed) is shown, labelled, and does
    not decide: the groups differ in both speed and accuracy."""
    source = SPEED_SOURCES[speed_key]
    sensitive = speed_key != "class_speeds"
    row = ClaimRow(
        "speed_accuracy_networks" + ("_" + speed_key if sensitive else ""),
        "slower networks remember longer" + (f" (speed at {source})" if sensitive else ""),
        "all networks, within (cell, curriculum)",
        "Spearman rho, log geometric-mean class speed vs accuracy at the analysis delay, "
        "weighted mean over groups", "network",
        "permutation within groups, two-sided; paper: < 0", expected_sign=-1,
        in_family=not sensitive,
    )  # fmt: skip
    usable = _usable(networks, speed_key)
    if len(usable) < 3:
        return _not_tested(row, f"needs >= 3 analysed networks, got {len(usable)}")
    x = [math.log(_geo(n, speed_key)) for n in usable]
    y = [float(np.nanmean(_floats(n["class_accuracy"]))) for n in usable]
    strata = [(n["cell"], n["curriculum"]) for n in usable]
    effect = stratified_permutation_test(x, y, strata)
    pooled = spearman_test(x, y)
    numbers = (
        f"pooled over groups (confounded): rho {pooled.interval()}, p {_fmt_p(pooled.p_value)}"
    )
    if not math.isfinite(effect.estimate):
        return _not_tested(row, "no group has >= 3 networks with varying values")
    return dataclasses.replace(row, effect=effect, numbers=numbers)


def claim_speed_accuracy_classes(networks: list[dict[str, Any]]) -> ClaimRow:
    """Within a network, classes whose slow point is slower are remembered longer: per class
    log speed vs its accuracy at the analysis delay, permuted within networks."""
    row = ClaimRow(
        "speed_accuracy_classes", "slower class memories last longer", "all networks, within network",
        "Spearman rho, log class slow-point speed vs class accuracy at the analysis delay, "
        "weighted mean over networks", "class (within network)",
        "permutation within networks, two-sided; paper: < 0", expected_sign=-1,
    )  # fmt: skip
    x, y, strata = [], [], []
    for i, n in enumerate(networks):
        speeds, accs = _floats(n["class_speeds"]), _floats(n["class_accuracy"])
        for q, a in zip(speeds, accs, strict=True):
            if math.isfinite(q) and q > 0 and math.isfinite(a):
                x.append(math.log(q))
                y.append(a)
                strata.append(i)
    if len(x) < 3:
        return _not_tested(row, f"needs >= 3 classes with a speed and an accuracy, got {len(x)}")
    effect = stratified_permutation_test(x, y, strata)
    if not math.isfinite(effect.estimate):
        return _not_tested(row, "no network has >= 3 classes with varying values")
    return dataclasses.replace(row, effect=effect, numbers=f"{len(set(strata))} networks")


def claim_slow_point_per_class(networks: list[dict[str, Any]], tol: float = SLOW_TOL) -> ClaimRow:
    """Each class memory sits at a slow point: per network, the share of class-centre searches
    that end at ``q <= tol``; tested against one half across networks."""
    row = ClaimRow(
        "slow_point_per_class", "each class memory sits at a slow point", "all networks",
        f"share of class-centre searches reaching q <= {tol:g}, minus 1/2", "network",
        "one-sample t-test against 1/2, two-sided; paper: > 0",
    )  # fmt: skip
    shares, distinct = [], []
    for n in networks:
        speeds = _floats(n["class_speeds"])
        found = speeds[np.isfinite(speeds)]
        if found.size:
            shares.append(float((found <= tol).mean()))
            distinct.append(n["n_distinct_points"] / found.size)
    if len(shares) < 2:
        return _not_tested(row, f"needs >= 2 analysed networks, got {len(shares)}")
    numbers = (
        f"mean share {np.mean(shares):.2f} (min {np.min(shares):.2f}, max {np.max(shares):.2f}); "
        f"distinct points per class {np.mean(distinct):.2f}"
    )
    return dataclasses.replace(row, effect=mean_test(shares, 0.5), numbers=numbers)


# ---------------------------------------------------------------------- lineages (c), (d)
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


def lineage_metrics(lineage: Any, tol: float = SLOW_TOL) -> dict[str, Any]:
    """What the claims need from one `analysis.backtrack.Lineage` (JSON-able).

    Returns ``jumpiness`` (mean of `track_jumpiness` over the tracks whose speed is at most
    ``tol`` at every checkpoint; None if none), ``jumpiness_all`` (over every track, shown
    only), ``n_tracks``, ``n_slow_tracks``, ``first_vocabulary`` (smallest active
    vocabulary), ``later_classes`` (tracked classes outside it), ``merging`` (tracked classes
    whose point merges, going back, into another class's point), ``attached`` (later classes
    among them), ``parent_changes`` (the parent's accuracy change at each merge of a tracked
    class, finite ones), ``n_events``, ``n_checkpoints``.
    """
    per_track = [track_jumpiness(lineage.states[p]) for p in range(lineage.states.shape[0])]
    speeds = np.asarray(lineage.speeds, dtype=np.float64)
    slow = [bool(np.all(speeds[p] <= tol)) for p in range(speeds.shape[0])]
    slow_values = [v for v, s in zip(per_track, slow, strict=True) if s and math.isfinite(v)]
    finite = [v for v in per_track if math.isfinite(v)]
    first = int(lineage.n_classes.min()) if lineage.n_classes.size else 10
    tracked = sorted({int(c) for c in lineage.classes})
    later = [c for c in tracked if c >= first]
    merging, changes = [], []
    for event in lineage.events:
        if event.child in tracked and event.parent >= 0:
            merging.append(int(event.child))
            if math.isfinite(event.parent_accuracy_change):
                changes.append(float(event.parent_accuracy_change))
    return {
        "jumpiness": float(np.mean(slow_values)) if slow_values else None,
        "jumpiness_all": float(np.mean(finite)) if finite else None,
        "track_jumpiness": [v if math.isfinite(v) else None for v in per_track],
        "n_tracks": len(per_track),
        "n_slow_tracks": int(sum(slow)),
        "first_vocabulary": first,
        "tracked_classes": tracked,
        "later_classes": later,
        "merging": merging,
        "attached": [c for c in merging if c in later],
        "parent_changes": changes,
        "n_events": len(lineage.events),
        "n_checkpoints": int(lineage.steps.size),
    }


def _by_member(
    networks: list[dict[str, Any]], cell: str, curriculum: str
) -> dict[int, dict[str, Any]]:
    return {
        int(n["member"]): n["lineage"]
        for n in networks
        if n["cell"] == cell and n["curriculum"] == curriculum and n.get("lineage")
    }


def _paired_lineages(
    networks: list[dict[str, Any]], cell: str, value: Any, decu_value: Any = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per seed with both lineages and both values finite: (VoCu ``value``, DeCu
    ``decu_value`` (default ``value``), seeds with both lineages)."""
    decu_value = decu_value or value
    vocu, decu = _by_member(networks, cell, "vocu"), _by_member(networks, cell, "decu")
    seeds = sorted(set(vocu) & set(decu))
    pairs = [(value(vocu[s]), decu_value(decu[s])) for s in seeds]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    return np.asarray([a for a, _ in pairs]), np.asarray([b for _, b in pairs]), len(seeds)


def claim_vocu_jumps(networks: list[dict[str, Any]], cell: str) -> ClaimRow:
    """VoCu slow points change by jumps, DeCu ones gradually: per network the mean jumpiness
    of its tracked points that stay slow (``q <= SLOW_TOL``) at every checkpoint; VoCu - DeCu
    paired by seed. A position the search did not converge to is where its budget ran out,
    not a point of the network, so unconverged tracks are not used."""
    row = ClaimRow(
        "vocu_jumps", "VoCu changes by jumps, DeCu gradually", cell.upper(),
        f"VoCu - DeCu, mean jumpiness (max step / path) of tracks with q <= {SLOW_TOL:g} "
        "throughout", "seed (pair of networks)", "paired t-test, two-sided; paper: > 0",
    )  # fmt: skip

    def slow_jumpiness(metrics: dict[str, Any]) -> float | None:
        # lineages summarised before tracks were filtered by speed carry no n_slow_tracks
        return metrics.get("jumpiness") if "n_slow_tracks" in metrics else None

    vocu, decu, n_seeds = _paired_lineages(networks, cell, slow_jumpiness)
    lineages = [m for u in ("vocu", "decu") for m in _by_member(networks, cell, u).values()]
    if vocu.size < 2 and lineages and not any("n_slow_tracks" in m for m in lineages):
        return _not_tested(row, "the saved lineage summaries have no per-track speeds")
    if vocu.size < 2:
        slow = sum(
            m.get("n_slow_tracks", 0)
            for u in ("vocu", "decu")
            for m in _by_member(networks, cell, u).values()
        )
        tracks = sum(
            m.get("n_tracks", 0)
            for u in ("vocu", "decu")
            for m in _by_member(networks, cell, u).values()
        )
        return _not_tested(
            row,
            f"{vocu.size} of {n_seeds} seed pairs have slow tracks in both lineages "
            f"({slow} of {tracks} tracks stay at q <= {SLOW_TOL:g})",
        )
    numbers = f"VoCu {vocu.mean():.3f}, DeCu {decu.mean():.3f}"
    return dataclasses.replace(row, effect=paired_test(vocu, decu), numbers=numbers)


def _share(metrics: dict[str, Any], key: str, of: str) -> float | None:
    total = len(metrics.get(of, []))
    return len(metrics.get(key, [])) / total if total else None


def claim_vocu_attaches(networks: list[dict[str, Any]], cell: str) -> ClaimRow:
    """A new VoCu class attaches to an existing slow point: per network the share of its
    later classes whose point merges, going back, into another class's point, against the
    same share over all tracked classes of the DeCu network of the same seed (the control:
    DeCu adds no class, so its merges are what backtracking finds without births)."""
    row = ClaimRow(
        "vocu_attaches", "a new VoCu class attaches to an existing point", cell.upper(),
        "VoCu share of later classes merging into another class's point - DeCu share of "
        "tracked classes merging", "seed (pair of networks)",
        "paired t-test, two-sided; paper: > 0",
    )  # fmt: skip
    vocu, decu, n_seeds = _paired_lineages(
        networks, cell,
        lambda m: _share(m, "attached", "later_classes"),
        lambda m: _share(m, "merging", "tracked_classes"),
    )  # fmt: skip
    if (
        vocu.size < 2
        and n_seeds
        and not any("tracked_classes" in m for m in _by_member(networks, cell, "decu").values())
    ):
        return _not_tested(row, "the saved DeCu lineage summaries do not list their merges")
    if vocu.size < 2:
        return _not_tested(
            row, f"{vocu.size} of {n_seeds} seed pairs have lineages with later classes"
        )
    if not (vocu.any() or decu.any()):
        return _not_tested(row, "no tracked class merges in any VoCu or DeCu lineage")
    numbers = f"VoCu {vocu.mean():.2f}, DeCu {decu.mean():.2f}"
    return dataclasses.replace(row, effect=paired_test(vocu, decu), numbers=numbers)


def claim_attachment_hurts(networks: list[dict[str, Any]], cell: str) -> ClaimRow:
    """An attaching VoCu class hurts the class it attaches to: per network the mean accuracy
    change of the parent class at its merges, VoCu - DeCu of the same seed (DeCu's merges
    are the control for what a merge does without a new class)."""
    row = ClaimRow(
        "attachment_hurts", "an attaching VoCu class hurts its parent", cell.upper(),
        "VoCu - DeCu, mean parent accuracy change at a merge", "seed (pair of networks)",
        "paired t-test, two-sided; paper: < 0", expected_sign=-1,
    )  # fmt: skip

    def mean_change(m: dict[str, Any]) -> float | None:
        changes = m.get("parent_changes") or []
        return float(np.mean(changes)) if changes else None

    vocu, decu, n_seeds = _paired_lineages(networks, cell, mean_change)
    if vocu.size < 2:
        return _not_tested(
            row, f"{vocu.size} of {n_seeds} seed pairs have merges with a known parent in both"
        )
    numbers = f"VoCu {vocu.mean():+.3f}, DeCu {decu.mean():+.3f}"
    return dataclasses.replace(row, effect=paired_test(vocu, decu), numbers=numbers)


# ---------------------------------------------------------------------- regularisation (e)
def claim_regularization(
    records: list[dict[str, Any]], group: str, long_delay_min: int
) -> ClaimRow:
    """Speed regularisation at the class centres improves long-delay accuracy: per base
    network, centre minus control after fine-tuning (same start, same evaluation trials)."""
    row = ClaimRow(
        "regularization", "regularisation improves long-delay accuracy", group.upper(),
        f"center - control, mean accuracy at delays >= {long_delay_min}", "seed (base network)",
        "paired t-test, two-sided; paper: > 0",
    )  # fmt: skip
    by = {(r["mode"], r["seed"]): r for r in records if r["cell"] == group}
    seeds = sorted(s for (m, s) in by if m == "center" and ("control", s) in by)
    if len(seeds) < 2:
        return _not_tested(row, f"needs >= 2 seeds with center and control, got {len(seeds)}")

    def long(record: dict[str, Any]) -> float:
        after = record.get("accuracy_after") or {}
        values = [a for d, a in after.items() if int(d) >= long_delay_min]
        return float(np.mean(values)) if values else math.nan

    center = np.asarray([long(by["center", s]) for s in seeds])
    control = np.asarray([long(by["control", s]) for s in seeds])
    if not (np.isfinite(center).all() and np.isfinite(control).all()):
        return _not_tested(row, f"no evaluated delay >= {long_delay_min}")
    lam = by["center", seeds[0]].get("lam")
    numbers = f"center {center.mean():.3f}, control {control.mean():.3f}" + (
        f"; lambda {lam:g}" if isinstance(lam, int | float) else ""
    )
    return dataclasses.replace(row, effect=paired_test(center, control), numbers=numbers)


# ----------------------------------------------------------------------------- the table
def claims_table(results: dict[str, Any], held_for: str = "") -> list[ClaimRow]:
    """Every row of the specification, Holm-adjusted together (`finalize`). ``results`` may
    also be a saved ``results.json`` (an older report's: rows whose inputs it lacks come out
    not tested)."""
    long_min = int(results["long_delay_min"])
    cells = list(results["cells"])
    networks = results.get("networks", [])
    accuracy = results.get("accuracy", {})
    rows = [claim_decu_vs_vocu(accuracy, c, long_min) for c in cells]
    rows += [claim_equal_in_range(accuracy, c) for c in cells]
    rows.append(claim_speed_accuracy_networks(networks))
    rows.append(claim_speed_accuracy_classes(networks))
    rows.append(claim_slow_point_per_class(networks))
    rows += [claim_vocu_jumps(networks, c) for c in cells]
    rows += [claim_vocu_attaches(networks, c) for c in cells]
    rows += [claim_attachment_hurts(networks, c) for c in cells]
    records = regularized_groups(results.get("regularize") or [])
    groups = list(dict.fromkeys(r["cell"] for r in records))  # first-seen order
    rows += [claim_regularization(records, g, long_min) for g in groups]
    if not groups:
        rows.append(
            _not_tested(
                ClaimRow(
                    "regularization", "regularisation improves long-delay accuracy", "all",
                    "center - control", "seed (base network)", "paired t-test",
                ),
                results.get("regularize_skipped") or "no regularisation results",
            )
        )  # fmt: skip
    rows += [
        claim_speed_accuracy_networks(networks, key)
        for key in SPEED_SOURCES
        if key != "class_speeds" and _usable(networks, key)
    ]
    return finalize(rows, held_for)


def regularized_groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fine-tuning records with ``cell`` relabelled ``"<cell> <curriculum>"`` (e.g.
    ``"gru decu"``): the unit the regularisation claims and tables are made per. Records
    without a curriculum are from the no-curriculum networks."""
    return [{**r, "cell": f"{r['cell']} {r.get('curriculum', 'none')}"} for r in records]


def claims_markdown(rows: Sequence[ClaimRow]) -> str:
    """The claims table: effect [95% CI], raw and Holm p side by side, verdict with scope."""
    lines = [
        "| claim | scope | statistic (unit) | effect [95% CI] | n | p | p (Holm) | verdict | "
        "test | numbers |",
        "|---|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.claim} | {row.scope} | {row.statistic} ({row.unit}) | "
            f"{row.effect.interval() if row.reason is None else 'n/a'} | {row.effect.n} | "
            f"{_fmt_p(row.family_p if row.in_family else row.effect.p_value)} | "
            f"{_fmt_p(row.p_holm)} | **{row.verdict_text()}** | {row.test} | "
            f"{row.numbers or '-'} |"
        )
    return "\n".join(lines)


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)


def _fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else f"{p:.3g}"
