"""The claims (`analysis.claims`) on hand-made results with known verdicts, degenerate cases
included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.backtrack import Lineage, MergeEvent
from analysis.claims import (
    CONTRADICTED,
    NO_EVIDENCE,
    NOT_TESTED,
    SENSITIVITY,
    SUPPORTED,
    ClaimRow,
    claim_attachment_hurts,
    claim_decu_vs_vocu,
    claim_equal_in_range,
    claim_regularization,
    claim_slow_point_per_class,
    claim_speed_accuracy_classes,
    claim_speed_accuracy_networks,
    claim_vocu_attaches,
    claim_vocu_jumps,
    claims_markdown,
    claims_table,
    finalize,
    lineage_metrics,
    track_jumpiness,
)
from analysis.stats import Effect
from studies.report import markdown_html
from studies.reproduce_report import SECTIONS, report_markdown

DELAYS = [4, 19, 100, 1000]
SCOPE = "under `fast`, full MNIST, the authors' networks"


def _alone(row: ClaimRow) -> ClaimRow:
    """The row's verdict as the only claim of its family."""
    return finalize([row], SCOPE)[0]


def _runs(decu_long, vocu_long, decu_short=None, vocu_short=None):
    def run(long, short):
        short = short if short is not None else [0.95] * len(long)
        return {
            "delays": DELAYS,
            "accuracy": [[s, s, v, v] for v, s in zip(long, short, strict=True)],
        }

    return {"gru": {"decu": run(decu_long, decu_short), "vocu": run(vocu_long, vocu_short)}}


SEEDS_SPREAD = [0.30, 0.60, 0.45, 0.75, 0.52]  # large differences between seeds


def test_decu_vs_vocu_is_paired_by_seed():
    decu = [v + 0.05 for v in SEEDS_SPREAD]  # every seed's DeCu network is 0.05 better
    row = _alone(claim_decu_vs_vocu(_runs(decu, SEEDS_SPREAD), "gru", 100))
    assert row.verdict == SUPPORTED and row.effect.estimate == pytest.approx(0.05)
    assert row.effect.low == pytest.approx(0.05) and row.unit == "seed (pair of networks)"
    assert row.verdict_text() == f"supported {SCOPE}"
    reverse = _alone(claim_decu_vs_vocu(_runs(SEEDS_SPREAD, decu), "gru", 100))
    assert reverse.verdict == CONTRADICTED
    noisy = [v + d for v, d in zip(SEEDS_SPREAD, [0.05, -0.04, 0.02, -0.03, 0.01], strict=True)]
    assert _alone(claim_decu_vs_vocu(_runs(noisy, SEEDS_SPREAD), "gru", 100)).verdict == NO_EVIDENCE


def test_decu_vs_vocu_missing_pieces_are_not_tested():
    runs = _runs([0.6, 0.7], [0.3, 0.2])
    row = _alone(claim_decu_vs_vocu(runs, "lstm", 100))
    assert row.verdict == NOT_TESTED and "needs evaluated DeCu and VoCu" in row.verdict_text()
    row = _alone(claim_decu_vs_vocu(_runs([0.6], [0.3]), "gru", 100))
    assert row.verdict_text() == "not tested (too few seeds with both runs (1))"
    assert "no evaluated delay qualifies" in _alone(claim_decu_vs_vocu(runs, "gru", 5000)).reason


def test_equal_accuracy_inside_the_trained_range():
    long = [0.5] * 5
    same = [0.95, 0.96, 0.94, 0.95, 0.97]
    close = [v + d for v, d in zip(same, [0.002, -0.001, 0.001, 0.0, 0.001], strict=True)]
    row = _alone(claim_equal_in_range(_runs(long, long, close, same), "gru"))
    assert row.verdict == SUPPORTED and row.expected_sign == 0 and "TOST" in row.test
    apart = [v - 0.1 for v in same]
    row = _alone(claim_equal_in_range(_runs(long, long, apart, same), "gru"))
    assert row.verdict == CONTRADICTED and row.effect.estimate == pytest.approx(-0.1)
    wobbly = [v + d for v, d in zip(same, [0.03, -0.04, 0.02, -0.02, 0.0], strict=True)]
    assert (
        _alone(claim_equal_in_range(_runs(long, long, wobbly, same), "gru")).verdict == NO_EVIDENCE
    )


def _network(speeds, accuracy, cell="gru", curriculum="none", member=0, lineage=None):
    speeds = list(speeds) if isinstance(speeds, list | tuple) else [speeds] * 3
    accuracy = list(accuracy) if isinstance(accuracy, list | tuple) else [accuracy] * len(speeds)
    return {
        "cell": cell, "curriculum": curriculum, "member": member, "class_speeds": speeds,
        "class_accuracy": accuracy, "lineage": lineage, "n_distinct_points": len(speeds),
        "n_searches": 3, "n_converged": 3, "class_rho": -0.5, "long_accuracy": np.mean(accuracy),
        "mean_speed": float(np.exp(np.mean(np.log(speeds)))),
    }  # fmt: skip


def _grouped(within_sign):
    """Two groups of 6 networks; the slow group remembers better on average; inside each
    group accuracy falls (within_sign -1), rises (+1) or is shuffled (0) with speed."""
    nets = []
    order = {-1: [0.9, 0.85, 0.8, 0.75, 0.7, 0.65], 1: [0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
             0: [0.8, 0.65, 0.9, 0.7, 0.85, 0.75]}[within_sign]  # fmt: skip
    for g, (base_speed, shift) in enumerate([(1e-9, 0.0), (1e-5, -0.5)]):
        for k in range(6):
            nets.append(
                _network(base_speed * 10 ** (k / 6), order[k] + shift, curriculum=f"c{g}", member=k)
            )
    return nets


def test_speed_accuracy_is_tested_within_groups_and_pooled_is_only_shown():
    row = _alone(claim_speed_accuracy_networks(_grouped(-1)))
    assert row.verdict == SUPPORTED and row.effect.estimate == pytest.approx(-1.0)
    assert "pooled over groups (confounded)" in row.numbers and row.unit == "network"
    assert _alone(claim_speed_accuracy_networks(_grouped(+1))).verdict == CONTRADICTED
    confounded = _alone(claim_speed_accuracy_networks(_grouped(0)))
    assert confounded.verdict == NO_EVIDENCE  # the pooled rho alone is strongly negative
    assert "rho -0." in confounded.numbers
    few = _alone(claim_speed_accuracy_networks(_grouped(-1)[:2]))
    assert few.verdict_text() == "not tested (needs >= 3 analysed networks, got 2)"


def test_speed_accuracy_per_class_within_networks():
    speeds = [1e-9, 1e-8, 1e-7, 1e-6, 1e-5]
    nets = [_network(speeds, [0.9, 0.8, 0.7, 0.6, 0.5], member=k) for k in range(4)]
    row = _alone(claim_speed_accuracy_classes(nets))
    assert row.verdict == SUPPORTED and row.effect.estimate == pytest.approx(-1.0)
    assert row.unit == "class (within network)" and row.effect.n == 20
    flat = [_network(speeds, 0.5, member=k) for k in range(4)]
    assert "no network has >= 3 classes" in _alone(claim_speed_accuracy_classes(flat)).reason


def test_sensitivity_rows_use_the_centre_speeds_and_have_no_verdict():
    nets = _grouped(-1)
    for n in nets:
        n["centre_speeds"] = n["class_speeds"]
        n["authors_centre_speeds"] = [1.0 / q for q in n["class_speeds"]]
    rows = claims_table({"long_delay_min": 100, "cells": ["gru"], "networks": nets}, SCOPE)
    sensitivity = [r for r in rows if r.verdict == SENSITIVITY]
    assert len(sensitivity) == 2 and all(not r.in_family for r in sensitivity)
    assert [round(r.effect.estimate, 6) for r in sensitivity] == [-1.0, 1.0]
    assert all(math.isnan(r.family_p) for r in sensitivity)
    rows = claims_table({"long_delay_min": 100, "cells": ["gru"], "networks": _grouped(-1)}, SCOPE)
    assert not any(r.verdict == SENSITIVITY for r in rows)  # older analyses lack them


def test_each_class_at_a_slow_point():
    slow = [_network([1e-12, 1e-10, 1e-9], 0.8, member=k) for k in range(4)]
    row = _alone(claim_slow_point_per_class(slow))
    assert row.verdict == SUPPORTED and "mean share 1.00" in row.numbers
    fast = [_network([1e-5, 1e-6, 1e-4], 0.8, member=k) for k in range(4)]
    assert _alone(claim_slow_point_per_class(fast)).verdict == CONTRADICTED
    assert "needs >= 2" in _alone(claim_slow_point_per_class(slow[:1])).reason


def test_track_jumpiness_of_known_paths():
    assert track_jumpiness([[0.0], [1.0], [2.0], [3.0]]) == pytest.approx(1 / 3)
    assert track_jumpiness([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]]) == pytest.approx(1.0)
    assert math.isnan(track_jumpiness([[1.0], [1.0], [1.0]]))  # never moves
    assert math.isnan(track_jumpiness([[1.0]]))


def _lineage(events, speeds=None):
    steps, classes = np.array([0, 10, 20]), np.array([0, 1, 2, 3])
    states = np.zeros((4, 3, 2))
    states[:, :, 0] = [[0, 0, 0], [0, 1, 1], [0, 0, 2], [0, 0.5, 1]]
    return Lineage(
        steps=steps, classes=classes, states=states,
        speeds=np.zeros((4, 3)) if speeds is None else speeds,
        labels=np.zeros((4, 3), dtype=int), converged=np.ones((4, 3), dtype=bool),
        together=np.zeros((4, 3), dtype=int), accuracy=np.full((3, 10), np.nan),
        n_classes=np.array([2, 3, 4]), merge_tol=0.05, events=events,
    )  # fmt: skip


EVENTS = [
    MergeEvent(child=2, parent=0, parent_track=0, merge_step=0, birth_step=10,
               parent_accuracy_before=0.9, parent_accuracy_after=0.6),
    MergeEvent(child=3, parent=-1, parent_track=-1, merge_step=10, birth_step=20,
               parent_accuracy_before=math.nan, parent_accuracy_after=math.nan),
    MergeEvent(child=1, parent=0, parent_track=0, merge_step=0, birth_step=10,
               parent_accuracy_before=0.9, parent_accuracy_after=0.8),
]  # fmt: skip


def test_lineage_metrics_of_a_hand_made_lineage():
    metrics = lineage_metrics(_lineage(EVENTS))
    assert metrics["first_vocabulary"] == 2 and metrics["later_classes"] == [2, 3]
    assert metrics["merging"] == [2, 1] and metrics["attached"] == [2]  # 3 joined null
    assert metrics["parent_changes"] == [pytest.approx(-0.3), pytest.approx(-0.1)]
    assert metrics["n_events"] == 3 and metrics["n_checkpoints"] == 3
    # tracks: still (NaN), one jump (1), one jump (1), two even steps (1/2)
    assert metrics["track_jumpiness"] == [None, 1.0, 1.0, 0.5]
    assert metrics["jumpiness"] == pytest.approx(2.5 / 3) and metrics["n_slow_tracks"] == 4
    speeds = np.zeros((4, 3))
    speeds[1:3, 1] = 1e-4  # tracks 1 and 2 are not slow at the middle checkpoint
    slow_only = lineage_metrics(_lineage(EVENTS, speeds))
    assert slow_only["n_slow_tracks"] == 2 and slow_only["jumpiness"] == pytest.approx(0.5)
    assert slow_only["jumpiness_all"] == pytest.approx(2.5 / 3)


def _backtracked(curriculum, member, **lineage):
    base = {"jumpiness": None, "n_tracks": 10, "n_slow_tracks": 0, "later_classes": [],
            "tracked_classes": list(range(10)), "merging": [], "attached": [],
            "parent_changes": [], "n_events": 0, "first_vocabulary": 10}  # fmt: skip
    return _network(1e-3, 0.5, curriculum=curriculum, member=member, lineage={**base, **lineage})


def test_vocu_jumps_uses_slow_tracks_paired_by_seed():
    jumpy, smooth = [0.9, 0.85, 0.95, 0.8, 0.88], [0.3, 0.35, 0.25, 0.4, 0.33]
    nets = [_backtracked("vocu", k, jumpiness=v, n_slow_tracks=3) for k, v in enumerate(jumpy)]
    nets += [_backtracked("decu", k, jumpiness=v, n_slow_tracks=3) for k, v in enumerate(smooth)]
    row = _alone(claim_vocu_jumps(nets, "gru"))
    assert row.verdict == SUPPORTED and "paired" in row.test
    unconverged = [_backtracked(u, k) for u in ("vocu", "decu") for k in range(5)]
    row = _alone(claim_vocu_jumps(unconverged, "gru"))
    assert row.verdict_text() == (
        "not tested (0 of 5 seed pairs have slow tracks in both lineages "
        "(0 of 100 tracks stay at q <= 1e-08))"
    )


def test_attachment_against_the_decu_control():
    vocu = [_backtracked("vocu", k, later_classes=list(range(2, 10)), attached=list(range(2, 8)),
                         first_vocabulary=2, parent_changes=[-0.2, -0.1 - k / 100])
            for k in range(5)]  # fmt: skip
    decu = [_backtracked("decu", k, merging=[k % 3], parent_changes=[0.01 * (k - 2)])
            for k in range(5)]  # fmt: skip
    attaches = _alone(claim_vocu_attaches(vocu + decu, "gru"))
    assert attaches.verdict == SUPPORTED and attaches.effect.estimate == pytest.approx(0.75 - 0.1)
    hurts = _alone(claim_attachment_hurts(vocu + decu, "gru"))
    assert hurts.verdict == SUPPORTED and hurts.effect.estimate < -0.1
    as_often = [_backtracked("decu", k, merging=list(range(9)), parent_changes=[-0.15 - k / 200])
                for k in range(5)]  # fmt: skip
    assert _alone(claim_vocu_attaches(vocu + as_often, "gru")).verdict == CONTRADICTED
    assert _alone(claim_attachment_hurts(vocu + as_often, "gru")).verdict == NO_EVIDENCE
    no_merges = [
        _backtracked("vocu", k, later_classes=[5, 6], first_vocabulary=2) for k in range(5)
    ]
    no_merges += [_backtracked("decu", k) for k in range(5)]
    assert _alone(claim_vocu_attaches(no_merges, "gru")).reason == (
        "no tracked class merges in any VoCu or DeCu lineage"
    )
    row = _alone(claim_attachment_hurts(vocu + [_backtracked("decu", k) for k in range(5)], "gru"))
    assert "0 of 5 seed pairs have merges with a known parent" in row.reason


def _records(center, control, group="gru"):
    records = []
    for mode, values in (("center", center), ("control", control)):
        for seed, value in enumerate(values):
            after = {"19": 0.9, "100": value, "1000": value}
            records.append(
                {"cell": group, "seed": seed, "mode": mode, "accuracy_after": after, "lam": 1e-3}
            )
    return records


def test_regularization_claim():
    up = _records([0.5, 0.6, 0.55, 0.52, 0.58], [0.4, 0.45, 0.42, 0.41, 0.44])
    row = _alone(claim_regularization(up, "gru", 100))
    assert row.verdict == SUPPORTED and "lambda 0.001" in row.numbers and row.effect.n == 5
    down = _records([0.4, 0.45, 0.42, 0.41, 0.44], [0.5, 0.6, 0.55, 0.52, 0.58])
    assert _alone(claim_regularization(down, "gru", 100)).verdict == CONTRADICTED
    same = _records([0.5, 0.5], [0.5, 0.5])
    assert _alone(claim_regularization(same, "gru", 100)).verdict == NO_EVIDENCE
    assert "needs >= 2 seeds" in claim_regularization(_records([0.5], [0.4]), "gru", 100).reason
    assert "no evaluated delay" in claim_regularization(up, "gru", 5000).reason


def _row(p_value, estimate=0.1):
    return ClaimRow("k", "c", "s", "stat", "unit", "test", Effect(estimate, 0.0, 0.2, p_value, 5))


def test_holm_decides_and_raw_p_is_shown_beside_it():
    rows = finalize([_row(0.03), _row(0.2), _row(0.5), _row(0.001)], SCOPE)
    assert [r.verdict for r in rows] == [NO_EVIDENCE, NO_EVIDENCE, NO_EVIDENCE, SUPPORTED]
    assert rows[0].p_holm == pytest.approx(0.09) and rows[3].p_holm == pytest.approx(0.004)
    alone = finalize([_row(0.03)], SCOPE)[0]
    assert alone.verdict == SUPPORTED  # the same p survives in a family of one
    table = claims_markdown(rows)
    assert f"| 0.03 | 0.09 | **no evidence either way {SCOPE}** |" in table
    assert f"| **supported {SCOPE}** |" in table and "+0.100 [+0.000, +0.200]" in table


def test_empty_results_give_untested_rows_and_a_complete_report():
    results = {"cells": ["gru", "lstm"], "curricula": ["none"], "long_delay_min": 100}
    rows = claims_table(results, SCOPE)
    assert len(rows) == 2 + 2 + 1 + 1 + 1 + 2 + 2 + 2 + 1
    assert all(r.verdict == NOT_TESTED and r.reason for r in rows)
    text = report_markdown(results, rows, {}, "")
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "Not run: no regularisation results" in text
    assert "not tested (no regularisation results)" in text


def test_html_page_of_the_markdown():
    text = (
        "# Title <x>\n\nSome `code` and **bold**\ncontinued.\n\n- one\n- two\n\n"
        "| a | b |\n|---|---:|\n| 1 | **2** |\n\n![fig](fig.png)\n\n![other](missing.png)\n"
        "\n<script>alert(1)</script>\n"
    )
    page = markdown_html(text, {"fig.png": b"\x89PNG"})
    assert "<title>Title &lt;x&gt;</title>" in page and "<h1>Title &lt;x&gt;</h1>" in page
    assert "<p>Some <code>code</code> and <strong>bold</strong>\ncontinued.</p>" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in page
    assert "<th>a</th>" in page and '<td style="text-align:right"><strong>2</strong></td>' in page
    assert 'src="data:image/png;base64,iVBORw=="' in page and 'src="missing.png"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # raw HTML is escaped


def test_the_superseded_report_read_again_under_the_specification():
    import json
    from pathlib import Path

    path = Path(__file__).parents[2] / "docs" / "reproduction" / "fast-mnist" / "results.json"
    rows = {(r.key, r.scope): r for r in claims_table(json.loads(path.read_text()), SCOPE)}
    gru = rows["decu_vs_vocu", "GRU"]  # Welch p = 0.0025 in that report; paired, then Holm
    assert gru.effect.estimate == pytest.approx(-0.167, abs=5e-4) and gru.effect.n == 5
    assert gru.effect.p_value == pytest.approx(0.012, abs=5e-4) and gru.p_holm > 0.05
    assert gru.verdict == NO_EVIDENCE
    within = rows["speed_accuracy_networks", "all networks, within (cell, curriculum)"]
    assert within.verdict == NO_EVIDENCE and "pooled over groups (confounded)" in within.numbers
    assert (
        rows["vocu_jumps", "GRU"].reason == "the saved lineage summaries have no per-track speeds"
    )
    assert rows["vocu_attaches", "LSTM"].verdict == NOT_TESTED
    slow = rows["slow_point_per_class", "all networks"]  # 50 iterations: few reach 1e-8
    assert slow.verdict == CONTRADICTED and slow.effect.n == 30
