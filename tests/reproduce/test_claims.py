"""The claim functions on hand-made results with known verdicts, degenerate cases included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.backtrack import Lineage, MergeEvent
from analysis.reproduce_report import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    SECTIONS,
    claim_decu_extrapolates,
    claim_regularization,
    claim_speed_accuracy,
    claim_vocu_attachment,
    claim_vocu_jumps,
    claims_table,
    lineage_metrics,
    report_html,
    report_markdown,
    track_jumpiness,
    verdict,
)

DELAYS = [4, 19, 100, 1000]


def test_the_verdict_rule():
    assert verdict(0.2, 0.01, +1) == REPRODUCED
    assert verdict(-0.2, 0.01, +1) == NOT_REPRODUCED
    assert verdict(-0.2, 0.01, -1) == REPRODUCED
    assert verdict(0.2, 0.2, +1) == INCONCLUSIVE
    assert verdict(0.2, 0.05, +1) == INCONCLUSIVE  # p must be below 0.05
    assert verdict(0.0, 0.0, +1) == INCONCLUSIVE
    assert verdict(math.nan, 0.01, +1) == INCONCLUSIVE
    assert verdict(0.2, math.nan, +1) == INCONCLUSIVE


def _runs(decu_long, vocu_long):
    def run(values):
        return {"delays": DELAYS, "accuracy": [[0.95, 0.9, v, v] for v in values]}

    return {"gru": {"decu": run(decu_long), "vocu": run(vocu_long)}}


@pytest.mark.parametrize(
    ("decu", "vocu", "expected"),
    [
        ([0.60, 0.62, 0.58, 0.61, 0.59], [0.30, 0.33, 0.28, 0.31, 0.29], REPRODUCED),
        ([0.30, 0.33, 0.28, 0.31, 0.29], [0.60, 0.62, 0.58, 0.61, 0.59], NOT_REPRODUCED),
        ([0.40, 0.60, 0.30, 0.55, 0.45], [0.42, 0.58, 0.35, 0.50, 0.44], INCONCLUSIVE),
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], INCONCLUSIVE),  # no spread, no difference
    ],
)
def test_decu_extrapolation(decu, vocu, expected):
    row = claim_decu_extrapolates(_runs(decu, vocu), "gru", long_delay_min=100)
    assert row.verdict == expected and row.reason is None
    assert "Welch" in row.test and f"DeCu {np.mean(decu):.3f}" in row.numbers


def test_decu_extrapolation_with_missing_pieces():
    runs = _runs([0.6, 0.7], [0.3, 0.2])
    assert "needs evaluated DeCu and VoCu" in claim_decu_extrapolates(runs, "lstm", 100).reason
    one = _runs([0.6], [0.3])
    row = claim_decu_extrapolates(one, "gru", 100)
    assert row.verdict == INCONCLUSIVE and "too few networks (1 DeCu, 1 VoCu)" in row.reason
    row = claim_decu_extrapolates(runs, "gru", 5000)
    assert row.verdict == INCONCLUSIVE and "no evaluated delay >= long_delay_min=5000" in row.reason


def _network(speed, accuracy, cell="gru", curriculum="none", lineage=None):
    return {
        "cell": cell, "curriculum": curriculum, "mean_speed": speed, "long_accuracy": accuracy,
        "class_speeds": [speed] * 3, "class_accuracy": [accuracy] * 3, "lineage": lineage,
        "n_distinct_points": 3, "n_searches": 3, "n_converged": 3, "class_rho": -0.5,
    }  # fmt: skip


def test_speed_accuracy_correlation():
    speeds = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    falling = [_network(q, a) for q, a in zip(speeds, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], strict=True)]
    row = claim_speed_accuracy(falling)
    assert row.verdict == REPRODUCED and "rho=-1.000" in row.numbers and "pooled" in row.numbers
    rising = [_network(q, a) for q, a in zip(speeds, [0.4, 0.5, 0.6, 0.7, 0.8, 0.9], strict=True)]
    assert claim_speed_accuracy(rising).verdict == NOT_REPRODUCED
    assert "needs >= 3" in claim_speed_accuracy(falling[:2]).reason
    flat = [_network(q, 0.5) for q in speeds]
    assert "undefined" in claim_speed_accuracy(flat).reason
    with_nan = falling + [_network(math.nan, 0.1)]
    assert claim_speed_accuracy(with_nan).verdict == REPRODUCED  # NaN pairs are left out


def test_speed_accuracy_sensitivity_rows_use_the_centre_speeds():
    speeds = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    accuracy = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    networks = [
        {**_network(q, a), "mean_centre_speed": q, "mean_authors_centre_speed": 1.0 / q}
        for q, a in zip(speeds, accuracy, strict=True)
    ]
    task_noise = claim_speed_accuracy(networks, "mean_centre_speed")
    assert task_noise.verdict == REPRODUCED and "the task's noise" in task_noise.claim
    authors = claim_speed_accuracy(networks, "mean_authors_centre_speed")
    assert authors.verdict == NOT_REPRODUCED and "rho=1.000" in authors.numbers
    assert "1/3 std" in authors.claim and "pooled" not in authors.numbers
    rows = claims_table(
        {"long_delay_min": 100, "cells": ["gru"], "accuracy": {}, "networks": networks}
    )
    assert sum("(sensitivity:" in row.claim for row in rows) == 2
    without = [_network(q, a) for q, a in zip(speeds, accuracy, strict=True)]
    rows = claims_table(
        {"long_delay_min": 100, "cells": ["gru"], "accuracy": {}, "networks": without}
    )
    assert not any("(sensitivity:" in row.claim for row in rows)  # older analyses lack them


def test_track_jumpiness_of_known_paths():
    assert track_jumpiness([[0.0], [1.0], [2.0], [3.0]]) == pytest.approx(1 / 3)
    assert track_jumpiness([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]]) == pytest.approx(1.0)
    assert math.isnan(track_jumpiness([[1.0], [1.0], [1.0]]))  # never moves
    assert math.isnan(track_jumpiness([[1.0]]))


def _jumpy(values, curriculum):
    return [_network(1e-3, 0.5, curriculum=curriculum, lineage={"jumpiness": v}) for v in values]


def test_vocu_jumps_decu_gradual():
    jumpy, smooth = [0.9, 0.85, 0.95, 0.8, 0.88], [0.3, 0.35, 0.25, 0.4, 0.33]
    row = claim_vocu_jumps(_jumpy(jumpy, "vocu") + _jumpy(smooth, "decu"), "gru")
    assert row.verdict == REPRODUCED and "Mann-Whitney" in row.test
    assert claim_vocu_jumps(_jumpy(smooth, "vocu") + _jumpy(jumpy, "decu"), "gru").verdict == (
        NOT_REPRODUCED
    )
    mixed = _jumpy([0.5, 0.6, 0.4], "vocu") + _jumpy([0.55, 0.45, 0.5], "decu")
    assert claim_vocu_jumps(mixed, "gru").verdict == INCONCLUSIVE
    unbacktracked = [_network(1e-3, 0.5, curriculum="vocu")] * 3 + _jumpy(smooth, "decu")
    row = claim_vocu_jumps(unbacktracked, "gru")
    assert row.verdict == INCONCLUSIVE and "0 VoCu" in row.reason
    assert claim_vocu_jumps(_jumpy([None, None], "vocu"), "gru").verdict == INCONCLUSIVE


def _lineage(events):
    steps, classes = np.array([0, 10, 20]), np.array([0, 1, 2, 3])
    states = np.zeros((4, 3, 2))
    states[:, :, 0] = [[0, 0, 0], [0, 1, 1], [0, 0, 2], [0, 0, 1]]
    return Lineage(
        steps=steps, classes=classes, states=states, speeds=np.zeros((4, 3)),
        labels=np.zeros((4, 3), dtype=int), converged=np.ones((4, 3), dtype=bool),
        together=np.zeros((4, 3), dtype=int), accuracy=np.full((3, 10), np.nan),
        n_classes=np.array([2, 3, 4]), merge_tol=0.05, events=events,
    )  # fmt: skip


def test_lineage_metrics_of_a_hand_made_lineage():
    events = [
        MergeEvent(child=2, parent=0, parent_track=0, merge_step=0, birth_step=10,
                   parent_accuracy_before=0.9, parent_accuracy_after=0.6),
        MergeEvent(child=3, parent=-1, parent_track=-1, merge_step=10, birth_step=20,
                   parent_accuracy_before=math.nan, parent_accuracy_after=math.nan),
        MergeEvent(child=1, parent=0, parent_track=0, merge_step=0, birth_step=10,
                   parent_accuracy_before=0.9, parent_accuracy_after=0.8),
    ]  # fmt: skip
    metrics = lineage_metrics(_lineage(events))
    assert metrics["first_vocabulary"] == 2 and metrics["later_classes"] == [2, 3]
    assert metrics["attached"] == [2]  # 3 joined the null point; 1 is not a later class
    assert metrics["parent_changes"] == [pytest.approx(-0.3)]
    assert metrics["n_events"] == 3 and metrics["n_checkpoints"] == 3
    # tracks: still (NaN), one jump (1), one jump (1), one jump (1)
    assert metrics["track_jumpiness"] == [None, 1.0, 1.0, 1.0]
    assert metrics["jumpiness"] == pytest.approx(1.0)


def _vocu(later, attached, changes, n_events=None):
    lineage = {
        "later_classes": list(range(later)), "attached": list(range(attached)),
        "parent_changes": changes,
        "n_events": len(changes) if n_events is None else n_events,
    }  # fmt: skip
    return _network(1e-3, 0.5, curriculum="vocu", lineage=lineage)


def test_vocu_attachment():
    hurt = [_vocu(8, 6, [-0.2, -0.1, -0.3, -0.15, -0.05, -0.2]) for _ in range(2)]
    row = claim_vocu_attachment(hurt, "gru")
    assert row.verdict == REPRODUCED and "12/16 later classes attach" in row.numbers
    helped = [_vocu(8, 6, [0.2, 0.1, 0.3, 0.15, 0.05, 0.2]) for _ in range(2)]
    assert claim_vocu_attachment(helped, "gru").verdict == NOT_REPRODUCED
    rarely = [_vocu(8, 1, [-0.2]) for _ in range(3)]  # 3 of 24 attach
    assert claim_vocu_attachment(rarely, "gru").verdict == NOT_REPRODUCED
    half_hurt_few = [_vocu(8, 4, [-0.2, -0.1, -0.1, -0.2]) for _ in range(2)]
    row = claim_vocu_attachment(half_hurt_few, "gru")  # 8/16 attach; 8 of 8 births down
    assert row.verdict == REPRODUCED
    mixed = [_vocu(8, 6, [-0.2, 0.1, -0.3, 0.15, -0.05, 0.2])]
    assert claim_vocu_attachment(mixed, "gru").verdict == INCONCLUSIVE


def test_vocu_attachment_with_missing_pieces():
    assert "no backtracked VoCu" in claim_vocu_attachment([], "gru").reason
    none_merge = [_vocu(8, 0, []) for _ in range(2)]
    row = claim_vocu_attachment(none_merge, "gru")
    assert row.verdict == INCONCLUSIVE and "no merge event in any VoCu lineage" in row.reason
    assert "mean n/a" in row.numbers
    unknown_accuracy = [_vocu(8, 6, [], n_events=6)]
    row = claim_vocu_attachment(unknown_accuracy, "gru")
    assert row.verdict == INCONCLUSIVE and "known parent accuracy" in row.reason
    assert "no later class" in claim_vocu_attachment([_vocu(0, 0, [])], "gru").reason


def _records(center, control, cell="gru"):
    records = []
    for mode, values in (("center", center), ("control", control)):
        for seed, value in enumerate(values):
            after = {"19": 0.9, "100": value, "1000": value}
            records.append({"cell": cell, "seed": seed, "mode": mode, "accuracy_after": after})
    return records


def test_regularization_claim():
    up = _records([0.5, 0.6, 0.55, 0.52, 0.58], [0.4, 0.45, 0.42, 0.41, 0.44])
    row = claim_regularization(up, "gru", 100)
    assert row.verdict == REPRODUCED and "over 5 seeds" in row.numbers
    down = _records([0.4, 0.45, 0.42, 0.41, 0.44], [0.5, 0.6, 0.55, 0.52, 0.58])
    assert claim_regularization(down, "gru", 100).verdict == NOT_REPRODUCED
    same = _records([0.5, 0.5], [0.5, 0.5])
    assert claim_regularization(same, "gru", 100).verdict == INCONCLUSIVE
    assert "needs >= 2 seeds" in claim_regularization(_records([0.5], [0.4]), "gru", 100).reason
    assert "needs >= 2 seeds" in claim_regularization(up, "lstm", 100).reason
    assert "no evaluated delay" in claim_regularization(up, "gru", 5000).reason


def test_empty_results_give_inconclusive_rows_and_a_complete_report():
    results = {"cells": ["gru", "lstm"], "curricula": ["none"], "long_delay_min": 100}
    rows = claims_table(results)
    assert len(rows) == 2 + 1 + 2 + 2 + 1
    assert all(r.verdict == INCONCLUSIVE and r.reason for r in rows)
    text = report_markdown(results, rows, {}, "")
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "Not run: no regularisation results" in text


def test_html_page_of_the_markdown_subset():
    text = (
        "# Title <x>\n\nSome `code` and **bold**\ncontinued.\n\n- one\n- two\n\n"
        "| a | b |\n|---|---:|\n| 1 | **2** |\n\n![fig](fig.png)\n\n![other](missing.png)\n"
    )
    page = report_html(text, {"fig.png": b"\x89PNG"})
    assert "<title>Title &lt;x&gt;</title>" in page and "<h1>Title &lt;x&gt;</h1>" in page
    assert "<p>Some <code>code</code> and <b>bold</b> continued.</p>" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in page
    assert "<tr><th>a</th><th>b</th>" in page and "<td><b>2</b></td>" in page
    assert 'src="data:image/png;base64,iVBORw=="' in page and 'src="missing.png"' in page
