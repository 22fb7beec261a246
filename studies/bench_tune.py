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

Each trial is a job (``tune <arch> t<k>``) writing ``OUT/tuning/<arch>/t<k>/score.json`` last;
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
        steps: Training steps of each trial.
        eval_trials: Validation trials per delay.
        seed: Seed of the draws, of the trials' weights and of their validation trials.
    """

    trials: int = 8
    steps: int = 2500
    eval_trials: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("trials", "steps", "eval_trials"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"TuneBudget.{name} must be a positive integer, got {value!r}")


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
) -> float | None:
    """Trains trial ``k`` of ``arch`` on the fit images and scores it on the validation
    images; writes ``score.json`` last. Returns the score (None: the loss diverged)."""
    from agents.checkpoint import write_json
    from agents.evaluate import evaluate_delays
    from agents.trainer import NonFiniteLossError, train
    from memenv import DelayedRecallTask

    short = dataclasses.replace(protocol, total_steps=budget.steps, seeds=(budget.seed,))
    trial = arch.with_settings(lr=settings["lr"], options=settings["options"])
    config = trial.train_config(short, budget.seed).replace(split="fit")
    model = trial.build(config)
    folder = trial_dir(out, arch, k)
    record: dict[str, Any] = {"arch": arch.name, "trial": k, **settings, "steps": budget.steps}
    try:
        train(config, folder / "run", model=model, progress=False)
    except NonFiniteLossError as error:
        write_json(folder / SCORE_FILE, {**record, "score": None, "error": str(error)})
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
    write_json(folder / SCORE_FILE, {**record, "score": score, "delays": list(delays),
                                     "accuracy": accuracy})  # fmt: skip
    return score


def tune_plan(
    archs: list[BenchArchitecture], protocol: BenchProtocol, out: Path, budget: TuneBudget
) -> Plan:
    """One job per (architecture, trial), trial-major (every architecture's untuned trial
    first)."""
    jobs = []
    tried = {arch.name: candidates(arch, protocol, budget) for arch in archs}
    for k in range(budget.trials):
        for arch in archs:
            jobs.append(Job(
                f"tune {arch.name} t{k}", "train",
                partial(tune_one, arch, k, tried[arch.name][k], protocol, out, budget),
                partial(Path.is_file, trial_dir(out, arch, k) / SCORE_FILE),
                gpu=protocol.device != "cpu",
            ))  # fmt: skip
    return Plan("tune", out, tuple(jobs))


def tuning_results(
    archs: list[BenchArchitecture], out: Path, budget: TuneBudget
) -> dict[str, dict[str, Any]]:
    """``{arch: {"trials": [score records], "chosen": best record}}`` from the saved
    scores (UsageError naming the trials not finished)."""
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
        trials = [read_json(trial_dir(out, arch, k) / SCORE_FILE) for k in range(budget.trials)]
        scored = [t for t in trials if t["score"] is not None]
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
        f"Budget per architecture: {budget.trials} settings (trial 0 untuned), each trained "
        f"{budget.steps:,} steps on the fit images (9 in 10 training images per class) and "
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
    return "diverged" if record["score"] is None else f"{record['score']:.3f}"
