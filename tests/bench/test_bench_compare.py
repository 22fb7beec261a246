"""Tuned against untuned runs, paired by seed (`studies.bench_compare`)."""

import json
import math

import pytest

from memenv.errors import UsageError
from studies.bench import RunResult
from studies.bench_compare import (
    compare_tuning,
    main,
    markdown,
    order_key,
    read_results,
    sign_test,
)

DELAYS = [4, 19, 38, 190, 2000]
CURVES = {  # trained delays 4-19, chance 0.1: the half-way level of a 0.9 curve is 0.5
    "long": [0.9, 0.9, 0.9, 0.9, 0.9],  # never falls: censored at 2000
    "mid": [0.9, 0.9, 0.9, 0.2, 0.1],  # falls between 38 and 190
    "short": [0.9, 0.9, 0.3, 0.1, 0.1],  # falls between 19 and 38
    "flat": [0.2, 0.2, 0.2, 0.2, 0.2],  # did not learn: no half-life
}


def _run(arch, seed, curve, lr, total_steps=2500, options=None, status="done"):
    evaluation = {
        "delays": DELAYS,
        "accuracy": [CURVES[curve]],
        "meta": {"trained_delays": [4, 19], "n_classes": 10},
    }
    return RunResult(
        arch=arch, spec=arch, seed=seed, status=status, n_parameters=10, train_s=1.0,
        eval_s=1.0, recurrent=True, evaluation=evaluation if status == "done" else None,
        anchor=None, train_config={"lr": lr, "total_steps": total_steps, "seed": seed},
        options=options,
    )  # fmt: skip


def test_per_seed_order_puts_unlearned_lowest_and_censored_highest():
    assert order_key(math.nan, False) < order_key(5.0, False) < order_key(2000.0, True)
    assert order_key(2000.0, True) == order_key(4000.0, True)  # two lower bounds tie


def test_pairs_common_seeds_and_counts_each_outcome():
    tuned = [
        _run("gru", 0, "long", 8e-3),  # vs mid: longer (censored beats measured)
        _run("gru", 1, "long", 8e-3),  # vs long: tie (both censored)
        _run("gru", 2, "short", 8e-3),  # vs mid: shorter
        _run("gru", 3, "mid", 8e-3, status="diverged"),  # vs short: shorter (diverged)
        _run("gru", 4, "long", 8e-3),  # no untuned seed 4: not paired
        _run("lru", 0, "mid", 2e-3, options={"r_min": 0.7}),  # vs flat: longer
        _run("lstm", 0, "long", 4e-3),  # no untuned lstm: left out
    ]
    untuned = [
        _run("gru", 0, "mid", 1e-3),
        _run("gru", 1, "long", 1e-3),
        _run("gru", 2, "mid", 1e-3),
        _run("gru", 3, "short", 1e-3),
        _run("gru", 9, "long", 1e-3),
        _run("lru", 0, "flat", 1e-3),
    ]
    gru, lru = compare_tuning(tuned, untuned)
    assert (gru.arch, gru.seeds, gru.lr_tuned, gru.lr_untuned) == ("gru", (0, 1, 2, 3), 8e-3, 1e-3)
    assert gru.outcomes() == (1, 2, 1)
    assert math.isnan(gru.per_seed_tuned[3][0]) and gru.per_seed_tuned[0] == (2000.0, True)
    assert 38 < gru.per_seed_untuned[0][0] < 190 and not gru.per_seed_untuned[0][1]
    assert gru.half_life_tuned.n_seeds == 3  # the diverged seed has no curve
    assert gru.acc_longest_tuned[:3] == (0.9, 0.9, 0.1) and math.isnan(gru.acc_longest_tuned[3])
    assert gru.higher_at_longest() == 1  # seed 0 (0.9 > 0.1); seed 3 diverged counts lower
    assert lru.outcomes() == (1, 0, 0) and lru.change_text() == "learned"
    assert (lru.options_tuned, lru.options_untuned) == ({"r_min": 0.7}, {})

    test = sign_test([gru, lru])
    assert (test.longer, test.shorter, test.ties) == (2, 2, 1)
    assert test.p_value == pytest.approx(1.0)


def test_change_text_marks_lower_bounds():
    tuned = [_run("a", 0, "long", 1e-2), _run("b", 0, "mid", 1e-2), _run("c", 0, "long", 1e-2)]
    untuned = [_run("a", 0, "short", 1e-3), _run("b", 0, "long", 1e-3), _run("c", 0, "long", 1e-3)]
    a, b, c = compare_tuning(tuned, untuned)
    ratio = 2000 / a.half_life_untuned.delay
    assert a.change_text() == f">= x{ratio:.1f}"
    assert b.change_text().startswith("<= x") and c.change_text() == "both >= 2000"


def test_sign_test_pools_pairs_and_leaves_ties_out():
    tuned = [_run("gru", s, "long", 8e-3) for s in range(10)] + [_run("lru", 0, "short", 2e-3)]
    untuned = [_run("gru", s, "mid", 1e-3) for s in range(9)] + [
        _run("gru", 9, "long", 1e-3),  # tie
        _run("lru", 0, "mid", 1e-3),  # shorter
    ]
    test = sign_test(compare_tuning(tuned, untuned))
    assert (test.longer, test.shorter, test.ties) == (9, 1, 1)
    assert test.p_value == pytest.approx(2 * 11 / 1024)  # two-sided binomial, n = 10
    assert "9 of 10 non-tied" in test.text() and "p = 0.021" in test.text()


def test_refuses_pairs_made_with_another_protocol():
    tuned = [_run("gru", 0, "long", 8e-3, total_steps=2500)]
    untuned = [_run("gru", 0, "mid", 1e-3, total_steps=625)]
    with pytest.raises(UsageError, match="gru seed 0 .* total_steps: saved 625 vs requested 2500"):
        compare_tuning(tuned, untuned)
    with pytest.raises(UsageError, match="no .* run on both sides: tuned has gru/seed0"):
        compare_tuning(tuned, [_run("gru", 1, "mid", 1e-3)])


def test_command_reads_folders_and_writes_table_and_json(tmp_path, capsys):
    for side, curve, lr in (("tuned", "long", 8e-3), ("untuned", "short", 1e-3)):
        for seed in (0, 1):
            run_dir = tmp_path / side / "gru" / f"seed{seed}"
            run_dir.mkdir(parents=True)
            _run("gru", seed, curve, lr).save(run_dir / "bench.json")
    out, data = tmp_path / "compare.md", tmp_path / "compare.json"
    argv = [str(tmp_path / "tuned"), str(tmp_path / "untuned"), "--out", str(out)]
    assert main([*argv, "--json", str(data)]) == 0
    text = out.read_text()
    both = (read_results(tmp_path / "tuned"), read_results(tmp_path / "untuned"))
    assert text == markdown(compare_tuning(*both))
    assert "| gru | 8.00e-03 | 1.00e-03 | 0,1 | >= 2000 |" in text
    assert "| 2 / 0 / 0 | 0.900 | 0.100 | 2 of 2 |" in text
    saved = json.loads(data.read_text())
    assert saved["sign_test"]["longer"] == 2 and saved["architectures"][0]["ties"] == 0

    assert main([str(tmp_path / "missing"), str(tmp_path / "untuned")]) == 2
    assert "missing is not a folder of benchmark runs" in capsys.readouterr().err
