"""What tuning did to memory: tuned and untuned benchmark runs compared seed by seed.

Two benchmark folders made with one protocol that differ only in the settings an architecture
may have of its own (`studies.bench.PER_ARCHITECTURE`: the learning rate, the width, the
options such as the LRU's ring radius): typically ``memenv bench --tune`` and the same command
without ``--tune``. Runs are paired by architecture and seed (the same weights' seed and trial
stream), so a pair differs only in what tuning chose.

Per architecture, `compare_tuning` gives the half-life of each side's mean curve over the
paired seeds (`analysis.half_life.memory_half_life`) and, per seed, which side's curve keeps
its memory longer (`analysis.half_life.curve_half_life`). Per-seed half-lives are ordered with
a curve that did not learn (NaN, or a diverged run) below every measured one and a censored
curve (``>= 2000``) above every measured one; two censored curves, or two that did not learn,
tie.

One test for all architectures together: a two-sided sign test over every non-tied (architecture,
seed) pair (`scipy.stats.binomtest` against 1/2), the one claim the comparison makes. Per
architecture the counts are descriptive: with 5 seeds no sign or signed-rank test can reach
p < 0.05 (its smallest two-sided p is 2 / 2^5 = 0.0625).

``python -m studies.bench_compare TUNED_DIR UNTUNED_DIR`` prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from agents.checkpoint import atomic_write_text, write_json
from analysis.half_life import HalfLife, curve_half_life, memory_half_life
from memenv.errors import UsageError
from studies.bench import (
    FAILED_FILE,
    PER_ARCHITECTURE,
    RESULT_FILE,
    RunResult,
    result_settings,
    settings_mismatch,
)
from studies.report import json_safe

DIFFERING = ("seed", "spec", *PER_ARCHITECTURE)
"""Settings two paired runs may differ in (the seed and spec only between architectures)."""


@dataclass(frozen=True)
class TuningEffect:
    """One architecture, tuned against untuned, over the seeds both sides ran.

    Attributes:
        arch: Architecture name.
        seeds: Paired seeds (both sides have a result, finished or diverged).
        lr_tuned, lr_untuned: Learning rate of each side.
        options_tuned, options_untuned: Model options of each side (empty: the defaults).
        half_life_tuned, half_life_untuned: Of each side's mean curve over its finished seeds
            among ``seeds``.
        per_seed_tuned, per_seed_untuned: ``[(half-life, censored)]`` per seed (NaN: did not
            learn or diverged).
        longest: The longest evaluated delay; acc_longest_tuned, acc_longest_untuned: accuracy
            there per seed (NaN: diverged).
    """

    arch: str
    seeds: tuple[int, ...]
    lr_tuned: float
    lr_untuned: float
    options_tuned: dict[str, Any]
    options_untuned: dict[str, Any]
    half_life_tuned: HalfLife
    half_life_untuned: HalfLife
    per_seed_tuned: tuple[tuple[float, bool], ...]
    per_seed_untuned: tuple[tuple[float, bool], ...]
    longest: int
    acc_longest_tuned: tuple[float, ...]
    acc_longest_untuned: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.seeds)
        sides = (self.per_seed_tuned, self.per_seed_untuned)
        sides += (self.acc_longest_tuned, self.acc_longest_untuned)
        if any(len(side) != n for side in sides):
            raise ValueError(
                f"{self.arch}: {n} seeds but per-seed values of {[len(s) for s in sides]}"
            )

    def outcomes(self) -> tuple[int, int, int]:
        """``(tuned longer, tuned shorter, ties)`` over the paired seeds."""
        keys = [
            (order_key(*tuned), order_key(*untuned))
            for tuned, untuned in zip(self.per_seed_tuned, self.per_seed_untuned, strict=True)
        ]
        longer = sum(t > u for t, u in keys)
        shorter = sum(t < u for t, u in keys)
        return longer, shorter, len(keys) - longer - shorter

    def higher_at_longest(self) -> int:
        """Seeds whose tuned accuracy at the longest delay beats the untuned one (a diverged
        side counts as lower)."""
        pairs = zip(self.acc_longest_tuned, self.acc_longest_untuned, strict=True)
        return sum(bool(np.nan_to_num(t, nan=-1.0) > np.nan_to_num(u, nan=-1.0)) for t, u in pairs)

    def change_text(self) -> str:
        """Tuned half-life over untuned of the mean curves: ``"x4.0"``, ``">= x4.0"`` when only
        the tuned curve is censored, ``"<= x0.5"`` when only the untuned one is, ``"both >=
        2000"``, ``"learned"`` / ``"unlearned"`` when only the tuned / untuned side learned,
        ``"-"`` when neither did."""
        tuned, untuned = self.half_life_tuned, self.half_life_untuned
        known_t, known_u = math.isfinite(tuned.delay), math.isfinite(untuned.delay)
        if not (known_t or known_u):
            return "-"
        if not known_u:
            return "learned"
        if not known_t:
            return "unlearned"
        if tuned.censored and untuned.censored:
            return f"both >= {tuned.delay:.0f}"
        ratio = tuned.delay / untuned.delay
        prefix = ">= " if tuned.censored else "<= " if untuned.censored else ""
        return f"{prefix}x{ratio:.1f}"

    def to_dict(self) -> dict[str, Any]:
        """Every number, NaN where undefined (`studies.report.json_safe` makes it strict JSON)."""
        longer, shorter, ties = self.outcomes()

        def seeds_of(pairs: tuple[tuple[float, bool], ...]) -> list[dict[str, Any]]:
            return [{"delay": d, "censored": c} for d, c in pairs]

        return {
            "arch": self.arch, "seeds": list(self.seeds),
            "lr_tuned": self.lr_tuned, "lr_untuned": self.lr_untuned,
            "options_tuned": self.options_tuned, "options_untuned": self.options_untuned,
            "half_life_tuned": self.half_life_tuned.to_dict(),
            "half_life_untuned": self.half_life_untuned.to_dict(),
            "per_seed_tuned": seeds_of(self.per_seed_tuned),
            "per_seed_untuned": seeds_of(self.per_seed_untuned),
            "change": self.change_text(), "longer": longer, "shorter": shorter, "ties": ties,
            "longest": self.longest,
            "acc_longest_tuned": list(self.acc_longest_tuned),
            "acc_longest_untuned": list(self.acc_longest_untuned),
            "higher_at_longest": self.higher_at_longest(),
        }  # fmt: skip


def order_key(delay: float, censored: bool) -> float:
    """Per-seed ordering: did not learn (NaN) lowest, censored highest, else the delay."""
    if not math.isfinite(delay):
        return -math.inf
    return math.inf if censored else delay


@dataclass(frozen=True)
class SignTest:
    """Two-sided sign test of "tuning lengthens the half-life" over all non-tied pairs."""

    longer: int
    shorter: int
    ties: int
    p_value: float

    def text(self) -> str:
        n = self.longer + self.shorter
        return (
            f"tuned longer in {self.longer} of {n} non-tied (architecture, seed) pairs, shorter "
            f"in {self.shorter} ({self.ties} tied); two-sided sign test p = {self.p_value:.2g}"
        )


def sign_test(effects: list[TuningEffect]) -> SignTest:
    """The pooled sign test of every pair of every architecture (ties left out; p = 1 when
    every pair ties)."""
    longer = shorter = ties = 0
    for effect in effects:
        up, down, same = effect.outcomes()
        longer, shorter, ties = longer + up, shorter + down, ties + same
    n = longer + shorter
    p = float(stats.binomtest(longer, n, 0.5).pvalue) if n else 1.0
    return SignTest(longer, shorter, ties, p)


def compare_tuning(tuned: list[RunResult], untuned: list[RunResult]) -> list[TuningEffect]:
    """One `TuningEffect` per architecture that both sides ran on a common seed, in the order
    of ``tuned``.

    Raises:
        UsageError: a pair was made with different protocols (beyond `DIFFERING`; naming the
            run and the fields), or the finished runs disagree on trained delays or classes.
    """
    untuned_by = {(r.arch, r.seed): r for r in untuned}
    pairs: dict[str, list[tuple[RunResult, RunResult]]] = {}
    for result in sorted(tuned, key=lambda r: r.seed):
        other = untuned_by.get((result.arch, result.seed))
        if other is not None:
            _check_pair(result, other)
            pairs.setdefault(result.arch, []).append((result, other))
    if not pairs:
        raise UsageError(
            "no (architecture, seed) was run on both sides: tuned has "
            f"{_names(tuned)}, untuned has {_names(untuned)}"
        )
    trained, chance = _protocol_of([r for side in pairs.values() for p in side for r in p])
    return [_effect(arch, side, trained, chance) for arch, side in pairs.items()]


def _effect(
    arch: str, pairs: list[tuple[RunResult, RunResult]], trained: tuple[int, int], chance: float
) -> TuningEffect:
    tuned, untuned = [p[0] for p in pairs], [p[1] for p in pairs]
    delays = _delays(tuned + untuned)
    return TuningEffect(
        arch=arch,
        seeds=tuple(r.seed for r in tuned),
        lr_tuned=float(tuned[0].train_config["lr"]),
        lr_untuned=float(untuned[0].train_config["lr"]),
        options_tuned=dict(tuned[0].options or {}),
        options_untuned=dict(untuned[0].options or {}),
        half_life_tuned=_mean_half_life(tuned, delays, trained, chance),
        half_life_untuned=_mean_half_life(untuned, delays, trained, chance),
        per_seed_tuned=tuple(_seed_half_life(r, delays, trained, chance) for r in tuned),
        per_seed_untuned=tuple(_seed_half_life(r, delays, trained, chance) for r in untuned),
        longest=int(delays[-1]),
        acc_longest_tuned=tuple(_at_longest(r, delays) for r in tuned),
        acc_longest_untuned=tuple(_at_longest(r, delays) for r in untuned),
    )


def _check_pair(tuned: RunResult, untuned: RunResult) -> None:
    saved = {k: v for k, v in result_settings(untuned).items() if k not in DIFFERING}
    requested = {k: v for k, v in result_settings(tuned).items() if k not in DIFFERING}
    differences = settings_mismatch(saved, requested)
    if differences:
        raise UsageError(
            f"{tuned.arch} seed {tuned.seed} was run with another protocol on each side "
            f"(untuned vs tuned): {', '.join(differences)}; they cannot be paired"
        )


def _protocol_of(results: list[RunResult]) -> tuple[tuple[int, int], float]:
    metas = [r.evaluation["meta"] for r in results if r.status == "done" and r.evaluation]
    trained = {tuple(m["trained_delays"]) for m in metas if "trained_delays" in m}
    classes = {int(m["n_classes"]) for m in metas if "n_classes" in m}
    if len(trained) != 1 or len(classes) != 1:
        raise UsageError(
            "the finished runs must share one trained-delay range and one number of classes, "
            f"got trained delays {sorted(trained)} and classes {sorted(classes)}"
        )
    low, high = trained.pop()
    return (int(low), int(high)), 1.0 / classes.pop()


def _delays(results: list[RunResult]) -> np.ndarray:
    done = [tuple(r.evaluation["delays"]) for r in results if r.status == "done" and r.evaluation]
    if not done:
        return np.zeros(0, dtype=np.int64)
    if len(set(done)) != 1:
        raise UsageError(f"{results[0].arch}: the runs were evaluated at different delays")
    return np.asarray(done[0], dtype=np.int64)


def _seed_half_life(
    result: RunResult, delays: np.ndarray, trained: tuple[int, int], chance: float
) -> tuple[float, bool]:
    if result.status != "done" or not delays.size:
        return math.nan, False
    return curve_half_life(delays, result.accuracy_at(tuple(delays.tolist())), trained, chance)


def _mean_half_life(
    results: list[RunResult], delays: np.ndarray, trained: tuple[int, int], chance: float
) -> HalfLife:
    done = [r for r in results if r.status == "done"]
    if not done or not delays.size:
        return HalfLife(math.nan, False, math.nan, math.nan, False, 0)
    accuracy_sxd = np.stack([r.accuracy_at(tuple(delays.tolist())) for r in done])
    return memory_half_life(delays, accuracy_sxd, trained, chance)


def _at_longest(result: RunResult, delays: np.ndarray) -> float:
    if result.status != "done" or not delays.size:
        return math.nan
    return float(result.accuracy_at((int(delays[-1]),))[0])


def _names(results: list[RunResult]) -> str:
    names = sorted({f"{r.arch}/seed{r.seed}" for r in results})
    return ", ".join(names) if names else "no runs"


def _half_life_text(delay: float, censored: bool) -> str:
    return HalfLife(delay, censored, math.nan, math.nan, False, 1).text()


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()
    )


def markdown(effects: list[TuningEffect]) -> str:
    """The comparison table, then the pooled sign test and how to read the table."""
    longest = max((e.longest for e in effects), default=0)
    lines = [
        "| architecture | lr tuned | lr untuned | seeds | half-life tuned | half-life untuned "
        "| change | per seed tuned | per seed untuned | longer / shorter / tie "
        f"| acc @ {longest} tuned | acc @ {longest} untuned | tuned higher @ {longest} |",
        "|---|---:|---:|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for e in effects:
        lr_tuned = f"{e.lr_tuned:.2e}"
        if e.options_tuned != e.options_untuned:
            lr_tuned += f" ({_options_text(e.options_tuned) or 'defaults'})"
        per_tuned = " / ".join(_half_life_text(*p) for p in e.per_seed_tuned)
        per_untuned = " / ".join(_half_life_text(*p) for p in e.per_seed_untuned)
        longer, shorter, ties = e.outcomes()
        lines.append(
            f"| {e.arch} | {lr_tuned} | {e.lr_untuned:.2e} | {','.join(map(str, e.seeds))} "
            f"| {e.half_life_tuned.text()} | {e.half_life_untuned.text()} | {e.change_text()} "
            f"| {per_tuned} | {per_untuned} | {longer} / {shorter} / {ties} "
            f"| {_mean(e.acc_longest_tuned)} | {_mean(e.acc_longest_untuned)} "
            f"| {e.higher_at_longest()} of {len(e.seeds)} |"
        )
    lines += [
        "",
        f"Sign test over all architectures: {sign_test(effects).text()}.",
        "",
        "Half-lives in steps: of the mean curve over the paired seeds [95% bootstrap over "
        "seeds], then per seed; `>=`: the curve never fell halfway to chance (a lower bound); "
        "`-`: the trained-range accuracy was below the level of a learned task, or the run "
        "diverged. *change*: tuned over untuned half-life of the mean curves. *longer / "
        "shorter / tie*: seeds whose tuned curve kept its memory longer, shorter, as long "
        "(a censored curve counts as longer than any measured one, one that did not learn as "
        "shorter). *acc*: mean over the seeds that finished; *tuned higher*: seeds whose tuned accuracy "
        "at the longest delay beats the untuned one, which tells apart two curves that are both "
        "censored. Per architecture the counts are descriptive: with 5 seeds or fewer no sign test "
        "reaches p < 0.05.",
    ]
    return "\n".join(lines) + "\n"


def _mean(values: tuple[float, ...]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    return f"{np.mean(finite):.3f}" if finite else "-"


def read_results(runs_dir: str | Path, archs: list[str] | None = None) -> list[RunResult]:
    """Every saved result (finished or diverged) under ``runs_dir/<arch>/seed<k>/``."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"{runs_dir} is not a folder of benchmark runs")
    results = []
    for run_dir in sorted(runs_dir.glob("*/seed*")):
        if archs is not None and run_dir.parent.name not in archs:
            continue
        for name in (RESULT_FILE, FAILED_FILE):
            if (run_dir / name).is_file():
                results.append(RunResult.load(run_dir / name))
                break
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m studies.bench_compare",
        description="Tuned against untuned benchmark runs, paired by architecture and seed.",
    )
    parser.add_argument("tuned", help="folder of the tuned runs (memenv bench --tune --out)")
    parser.add_argument("untuned", help="folder of the untuned runs (memenv bench --out)")
    parser.add_argument("--archs", help="comma-separated architectures (default: all paired)")
    parser.add_argument("--out", help="write the markdown table here (else print it)")
    parser.add_argument("--json", dest="json_path", help="also write every number here")
    return parser


def run_compare(args: argparse.Namespace) -> int:
    """Reads both folders, prints or writes the table, and the JSON when asked."""
    archs = args.archs.split(",") if args.archs else None
    effects = compare_tuning(read_results(args.tuned, archs), read_results(args.untuned, archs))
    text = markdown(effects)
    if args.out:
        atomic_write_text(Path(args.out), text)
    else:
        print(text, end="")
    if args.json_path:
        data = {
            "tuned": str(args.tuned), "untuned": str(args.untuned),
            "architectures": [e.to_dict() for e in effects],
            "sign_test": dataclasses.asdict(sign_test(effects)),
        }  # fmt: skip
        write_json(Path(args.json_path), json_safe(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m studies.bench_compare``: errors as one line and exit status 2."""
    from memenv.cli import run_guarded

    return run_guarded("bench_compare", run_compare, build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
