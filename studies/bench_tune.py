"""Tuning every architecture before the benchmark (``memenv bench --tune``).

Each architecture gets the same budget: ``trials`` settings, each trained for ``steps`` steps
on the ``fit`` part of the training images and scored on the ``validation`` part (one image in
ten per class, `memenv.data.carve_validation`). Test images are never used to choose. The
settings are a random search, stratified (one draw per equal stratum of each range, a Latin
hypercube), the same draws for every architecture:

* the learning rate, log-uniform in `LR_RANGE`;
* whatever the architecture declares tunable (`agents.architectures.tunable`, e.g. the LRU's
  ring radius ``r_min``), uniform or log-uniform in its declared range.

Trial 0 is the untuned setting (the protocol's learning rate, the model's defaults), so tuning
can only pick something that did better on validation. The score is the mean validation
accuracy over the trained delays and 2x and 10x the longest one: memory past the trained range
counts, as in the benchmark. A trial whose loss diverges scores nothing.

With ``rungs`` > 1 the search is *successive halving* (Jamieson & Talwalkar 2016; the
synchronous form of ASHA, Li et al. 2020): every trial first trains ``steps / 2**(rungs-1)``
steps, the better half by validation score train on to twice as many (resuming from their
checkpoint: a trial's run always follows the learning-rate schedule of the full ``steps``),
and so on until the last rung's trials reach ``steps``. With 8 trials and 3 rungs that is 8
trials at 1/4 of the steps, 4 at 1/2 and 2 at the full budget: half the training of 8 full
trials. The chosen setting is the best of those that reached the last rung.

Each (trial, rung) is a job (``tune <arch> t<k>``, with `` r<rung>`` when there are rungs)
writing its record last: ``OUT/tuning/<arch>/t<k>/rung<r>.json`` for an early rung,
``score.json`` for the last one (a trial stopped earlier gets a ``score.json`` that says so).
`tuning_results` reads them, picks the best trial per architecture, and `tuned` gives the
architectures the final runs train with.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from memenv.errors import UsageError
from studies.bench import BenchArchitecture, BenchProtocol
from studies.jobs import Job, Plan

LR_RANGE = (1e-4, 1e-2)
SCORE_FILE = "score.json"


@dataclass(frozen=True)
class TuneBudget:
    """The same for every architecture.

    Attributes:
        trials: Settings tried per architecture (trial 0: the untuned one).
        steps: Training steps of a trial that reaches the last rung.
        eval_trials: Validation trials per delay.
        seed: Seed of the draws, of the trials' weights and of their validation trials.
        rungs: Rungs of successive halving (1: every trial trains ``steps``).
    """

    trials: int = 8
    steps: int = 2500
    eval_trials: int = 300
    seed: int = 0
    rungs: int = 1

    def __post_init__(self) -> None:
        for name in ("trials", "steps", "eval_trials", "rungs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"TuneBudget.{name} must be a positive integer, got {value!r}")
        if 2 ** (self.rungs - 1) > self.trials:
            raise UsageError(
                f"TuneBudget.rungs={self.rungs} halves {self.trials} trials below one trial; "
                f"use at most {self.trials.bit_length()} rungs"
            )
        if self.steps < 2 ** (self.rungs - 1):
            raise UsageError(
                f"TuneBudget.rungs={self.rungs} needs at least {2 ** (self.rungs - 1)} steps "
                f"(its first rung trains steps / {2 ** (self.rungs - 1)}), got steps={self.steps}"
            )

    def rung_steps(self, rung: int) -> int:
        """Steps a trial has trained when rung ``rung`` scores it (the last: ``steps``)."""
        return self.steps // 2 ** (self.rungs - 1 - rung)

    def kept(self, rung: int) -> int:
        """Trials that train on to rung ``rung`` (all at rung 0, then the better half)."""
        return math.ceil(self.trials / 2**rung)

    def checkpoint_every(self, every: int) -> int:
        """A trial's checkpoint interval, at most ``every``: every rung also ends on a
        checkpoint, so that the next rung resumes there."""
        return math.gcd(every, *(self.rung_steps(r) for r in range(self.rungs)))

    def training_steps(self) -> int:
        """Steps trained per architecture over the whole search."""
        ends = [0] + [self.rung_steps(r) for r in range(self.rungs)]
        return sum(self.kept(r) * (ends[r + 1] - ends[r]) for r in range(self.rungs))

    def describe(self) -> str:
        """The budget in words, for the report."""
        if self.rungs == 1:
            return f"{self.trials} settings (trial 0 untuned), each trained {self.steps:,} steps"
        rungs = ", then ".join(
            f"{self.kept(r)} at {self.rung_steps(r):,}" for r in range(self.rungs)
        )
        return (
            f"{self.trials} settings (trial 0 untuned) by successive halving over "
            f"{self.rungs} rungs: {rungs} steps, the better half by validation score going "
            f"on at each rung ({self.training_steps():,} training steps in all)"
        )


def candidates(arch: BenchArchitecture, protocol: BenchProtocol, budget: TuneBudget) -> list[dict]:
    """The settings tried for ``arch``: ``[{"lr": ..., "options": {...}}, ...]``."""
    from agents.architectures import tunable

    space = tunable(arch.spec)
    lr_default = protocol.train_config(protocol.seeds[0]).lr
    tried = [{"lr": lr_default, "options": {}}]
    log_low, log_high = math.log(LR_RANGE[0]), math.log(LR_RANGE[1])
    # one stream for the learning rate and one per option: the same learning rates for every
    # architecture, whatever else it tunes
    lr_u = _stratified(np.random.default_rng([budget.seed, 0]), budget.trials)
    option_u = {
        name: _stratified(np.random.default_rng([budget.seed, 1 + i]), budget.trials)
        for i, name in enumerate(sorted(space))
    }
    for k in range(1, budget.trials):
        options = {}
        for name, (low, high, scale) in sorted(space.items()):
            u = option_u[name][k]
            if scale == "log":
                options[name] = float(math.exp(math.log(low) + u * math.log(high / low)))
            else:
                options[name] = float(low + u * (high - low))
        lr = float(math.exp(log_low + lr_u[k] * (log_high - log_low)))
        tried.append({"lr": lr, "options": options})
    return tried


def _stratified(rng: np.random.Generator, trials: int) -> np.ndarray:
    """``[trials]`` draws in [0, 1): entry 0 unused (the untuned trial), the others one per
    equal stratum, in a random order (a Latin hypercube across options): even three trials
    try one low and one high learning rate, which independent draws need not (with seed 0
    they gave two low ones)."""
    n = max(trials - 1, 1)
    draws = (rng.permutation(n) + rng.uniform(size=n)) / n
    return np.concatenate([[0.0], draws])[:trials]


def trial_dir(out: Path, arch: BenchArchitecture, k: int) -> Path:
    return Path(out) / "tuning" / arch.name / f"t{k}"


def rung_file(out: Path, arch: BenchArchitecture, k: int, rung: int, budget: TuneBudget) -> Path:
    """Where trial ``k``'s record at ``rung`` is written (``score.json`` at the last rung)."""
    name = SCORE_FILE if rung == budget.rungs - 1 else f"rung{rung}.json"
    return trial_dir(out, arch, k) / name


def promoted(out: Path, arch: BenchArchitecture, rung: int, budget: TuneBudget) -> list[int]:
    """The trials that train on to ``rung``: all at rung 0, else the `TuneBudget.kept` best
    scored at ``rung - 1`` among those that trained there (ties go to the earlier trial)."""
    from agents.checkpoint import read_json

    if rung == 0:
        return list(range(budget.trials))
    records = [read_json(rung_file(out, arch, k, rung - 1, budget)) for k in range(budget.trials)]
    scored = [r for r in records if r["score"] is not None and not r.get("stopped")]
    best = sorted(scored, key=lambda r: (-r["score"], r["trial"]))[: budget.kept(rung)]
    return sorted(r["trial"] for r in best)


def score_delays(protocol: BenchProtocol) -> tuple[int, ...]:
    """The trained delays (shortest, middle, longest) and 2x and 10x the longest."""
    low, high = protocol.trained_delays
    return tuple(sorted({low, (low + high) // 2, high, 2 * high, 10 * high}))


def tune_one(
    arch: BenchArchitecture,
    k: int,
    settings: dict[str, Any],
    protocol: BenchProtocol,
    out: Path,
    budget: TuneBudget,
    rung: int = 0,
) -> float | None:
    """Trains trial ``k`` of ``arch`` on the fit images to rung ``rung``'s steps and scores it
    on the validation images; writes the rung's record (`rung_file`) last. A trial not
    promoted to ``rung`` is not trained: its record copies its last one, marked ``stopped``.
    Returns the score (None: the loss diverged, or the trial was stopped)."""
    from agents.checkpoint import read_json, write_json
    from agents.evaluate import evaluate_delays
    from agents.trainer import NonFiniteLossError, train
    from memenv import DelayedRecallTask

    path = rung_file(out, arch, k, rung, budget)
    if k not in promoted(out, arch, rung, budget):
        last = read_json(rung_file(out, arch, k, rung - 1, budget))
        write_json(path, {**last, "rung": rung, "stopped": True})
        return None
    short = dataclasses.replace(protocol, total_steps=budget.steps, seeds=(budget.seed,))
    trial = arch.with_settings(lr=settings["lr"], options=settings["options"])
    config = trial.train_config(short, budget.seed)
    config = config.replace(split="fit", checkpoint_every=budget.checkpoint_every(
        config.checkpoint_every))  # fmt: skip
    model = trial.build(config)
    folder = trial_dir(out, arch, k)
    steps = budget.rung_steps(rung)
    record: dict[str, Any] = {"arch": arch.name, "trial": k, **settings, "steps": steps}
    if budget.rungs > 1:
        record["rung"] = rung
    try:
        # a later rung resumes the run from the checkpoint its previous rung ended on
        train(config, folder / "run", model=model, progress=False, stop_at_step=steps)
    except NonFiniteLossError as error:
        write_json(path, {**record, "score": None, "error": str(error)})
        return None
    task = DelayedRecallTask(
        config.task_config().replace(split="validation"), root=config.data_root,
        download=config.download,
    )  # fmt: skip
    model.eval()
    delays = score_delays(protocol)
    result = evaluate_delays(
        model, task, delays=delays, n_trials=budget.eval_trials,
        batch_size=protocol.eval_batch_size, t_stim=0, seed=budget.seed,
    )  # fmt: skip
    accuracy = [float(a) for a in result.accuracy[0]]
    score = float(np.mean(accuracy))
    write_json(path, {**record, "score": score, "delays": list(delays), "accuracy": accuracy})
    return score


def tune_plan(
    archs: list[BenchArchitecture], protocol: BenchProtocol, out: Path, budget: TuneBudget
) -> Plan:
    """One job per (rung, trial, architecture), in that order (every architecture's untuned
    trial first); a rung's jobs come after the previous rung's of the same architecture."""
    jobs = []
    tried = {arch.name: candidates(arch, protocol, budget) for arch in archs}

    def key(arch: BenchArchitecture, k: int, rung: int) -> str:
        return f"tune {arch.name} t{k}" + (f" r{rung}" if budget.rungs > 1 else "")

    for rung in range(budget.rungs):
        for k in range(budget.trials):
            for arch in archs:
                before = [key(arch, j, rung - 1) for j in range(budget.trials)] if rung else []
                jobs.append(Job(
                    key(arch, k, rung), "train",
                    partial(tune_one, arch, k, tried[arch.name][k], protocol, out, budget, rung),
                    partial(Path.is_file, rung_file(out, arch, k, rung, budget)),
                    after=tuple(before), gpu=protocol.device != "cpu",
                ))  # fmt: skip
    return Plan("tune", out, tuple(jobs))


def tuning_results(
    archs: list[BenchArchitecture], out: Path, budget: TuneBudget
) -> dict[str, dict[str, Any]]:
    """``{arch: {"trials": [last-rung records], "chosen": best record}}`` from the saved
    scores (UsageError naming the trials not finished). The chosen trial is the best of those
    that reached the last rung. Under halving each record also has ``rung_scores``:
    ``[{"steps", "score"}]`` at every rung the trial trained to."""
    from agents.checkpoint import read_json

    missing = [
        f"{arch.name} t{k}"
        for arch in archs
        for k in range(budget.trials)
        if not (trial_dir(out, arch, k) / SCORE_FILE).is_file()
    ]
    if missing:
        raise UsageError(f"tuning is not finished: no score for {', '.join(missing)}")
    results = {}
    for arch in archs:
        trials = []
        for k in range(budget.trials):
            # one read per rung file; the last rung's (score.json) is the trial's record
            rungs = [read_json(rung_file(out, arch, k, r, budget)) for r in range(budget.rungs)]
            trial = rungs[-1]
            if budget.rungs > 1:  # each trial's way up: its score at every rung it trained to
                trial["rung_scores"] = [
                    {"steps": r["steps"], "score": r["score"]}
                    for r in rungs
                    if not r.get("stopped")
                ]
            trials.append(trial)
        scored = [t for t in trials if t["score"] is not None and not t.get("stopped")]
        # ties go to the earlier trial: the untuned setting wins a tie
        chosen = max(scored, key=lambda t: t["score"]) if scored else trials[0]
        results[arch.name] = {"trials": trials, "chosen": chosen}
    return results


def tuned(
    archs: list[BenchArchitecture], results: dict[str, dict[str, Any]]
) -> list[BenchArchitecture]:
    """The architectures with their chosen learning rate and options."""
    return [
        arch.with_settings(
            lr=results[arch.name]["chosen"]["lr"], options=results[arch.name]["chosen"]["options"]
        )
        for arch in archs
    ]


def tuning_markdown(results: dict[str, dict[str, Any]], budget: TuneBudget) -> str:
    """The tuning section of the report: the budget, then per architecture the chosen
    setting, its validation score and the untuned one's."""
    lines = [
        "## Tuning",
        "",
        f"Budget per architecture: {budget.describe()}, on the fit images (9 in 10 "
        "training images per class), "
        f"scored on the validation images (the 10th), {budget.eval_trials} trials per delay; "
        f"learning rate log-uniform in [{LR_RANGE[0]:g}, {LR_RANGE[1]:g}], plus what each "
        "architecture declares tunable. Score: mean validation accuracy over the trained "
        "delays and 2x and 10x the longest. Test images are not used.",
        "",
        "| architecture | chosen lr | chosen options | validation score | untuned score |",
        "|---|---:|---|---:|---:|",
    ]
    for name, result in results.items():
        chosen, untuned = result["chosen"], result["trials"][0]
        options = ", ".join(f"{k}={v:.3g}" for k, v in chosen["options"].items()) or "-"
        lines.append(
            f"| {name} | {chosen['lr']:.2e} | {options} | {_score(chosen)} | {_score(untuned)} |"
        )
    return "\n".join(lines) + "\n"


def _score(record: dict[str, Any]) -> str:
    if record["score"] is None:
        return "diverged"
    text = f"{record['score']:.3f}"
    # a trial stopped at an early rung was scored after fewer steps than the chosen one
    return f"{text} (stopped at {record['steps']:,} steps)" if record.get("stopped") else text
