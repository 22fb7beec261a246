"""Benchmark of memory architectures on delayed recall: one protocol, many models, many seeds.

`BenchProtocol` fixes how every architecture is trained and measured; `run_one` trains one
(architecture, seed) in its own run directory, evaluates it far past its trained delays and
measures the speed of its slowest class anchor, and saves a `RunResult` there. A run directory
that already holds a result is not redone; one that holds a partly trained run resumes it
(`agents.train`). Either is reused only when it was made with the requested protocol: its saved
train config, evaluation settings and architecture spec (`saved_settings`) must equal the
requested ones (`requested_settings`; the device may differ), else `run_one` and
`load_results` refuse it (`settings_mismatch`, `mismatch_message`). `studies.bench_report` turns the saved results into the table and figure;
`studies.bench_commands` is ``memenv bench``.

Anchor speed. For a model whose state has a fixed size (a recurrent model; the Transformer's
key/value cache grows, so it has none), the anchor of class k is the centre of mass of the
settled state over correctly answered trials, 15 steps after the image at t = 0
(`analysis.class_centers`, the authors' protocol), and its speed is
``q = ||F(h_k, x_bar) - h_k||^2`` with ``x_bar`` the mean noise frame (trigger off), computed in
float64 by `analysis.FlatDynamics` (LSTM cell coordinates through tanh, as the paper). The
slowest class anchor is the minimum over classes. Centres, not slow points: the LRU's and the
minGRU's dynamics are linear in the state, so under a fixed input they have exactly one fixed
point, shared by all classes, and a slow-point search would end there for every class; the
centres are where each class's memory actually sits (the paper also prefers them as anchors for
its regulariser). Speeds are in each model's own state coordinates, so they compare models of one
kind better than kinds with different state scales.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_json
from memenv.errors import CorruptFileError, UsageError

RESULT_FILE = "bench.json"
FAILED_FILE = "failed.json"
RUN_FILE = "bench_run.json"
"""Written before a run trains: its architecture name and spec (compared on resume)."""
IGNORED_SETTINGS = ("device",)
"""Train-config fields that may differ between a saved run and the requested protocol (the
trainer also resumes a run on another device: `agents.trainer.RESUME_IGNORED_FIELDS`)."""
ANCHOR = "centre of mass (15 steps after the image), mean noise frame as input"
MULTIPLES = (2, 10, 100)
"""Delays reported beyond training, as multiples of the longest trained delay."""
PER_ARCHITECTURE = ("lr", "hidden_size", "options")
"""Settings an architecture may have of its own (``--tune``, ``--match-params``)."""


@dataclass(frozen=True)
class BenchArchitecture:
    """One architecture of a benchmark.

    Attributes:
        name: Label in tables and figures, and the run directories' name.
        spec: A built-in name (`agents.architectures.BUILTIN`) or ``"package.module:factory"``.
        hidden_size: Its own size (``--match-params``); None: the protocol's.
        lr: Its own learning rate (chosen by ``--tune``); None: the protocol's.
        options: Its own model options (``--tune``: what it declares tunable), as sorted
            ``(name, value)`` pairs.

    Without these, every architecture trains with the protocol's settings.
    """

    name: str
    spec: str
    hidden_size: int | None = None
    lr: float | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def with_settings(self, **changes: Any) -> BenchArchitecture:
        """A copy with ``hidden_size``, ``lr`` or ``options`` (a dict) changed."""
        if isinstance(changes.get("options"), dict):
            changes["options"] = tuple(sorted(changes["options"].items()))
        return dataclasses.replace(self, **changes)

    def build(self, config: Any) -> Any:
        """A fresh model of this architecture for a `TrainConfig` (its size, data set and
        seed), with this architecture's own options."""
        from agents.architectures import build_architecture

        return build_architecture(
            self.spec, config.hidden_size, obs_dim_of(config.dataset), seed=config.seed,
            options=dict(self.options),
        )  # fmt: skip

    def train_config(self, protocol: BenchProtocol, seed: int):
        """The protocol's `TrainConfig` of ``seed`` with this architecture's own size and
        learning rate."""
        config = protocol.train_config(seed)
        own = {k: v for k, v in (("hidden_size", self.hidden_size), ("lr", self.lr)) if v}
        return config.replace(**own) if own else config


def obs_dim_of(dataset: str) -> int:
    """Observation size of a data set's trials: its frame's pixels and the trigger."""
    from memenv.data import FRAME_SHAPES

    return math.prod(FRAME_SHAPES[dataset]) + 1


def resolve_architectures(
    archs: list[str] | tuple[str, ...], models: list[str] | tuple[str, ...] = ()
) -> list[BenchArchitecture]:
    """Built-in names plus plug-in specs -> architectures, checked up front.

    Args:
        archs: Built-in names (`agents.architectures.BUILTIN`).
        models: Plug-in specs ``"package.module:factory"`` or ``"name=package.module:factory"``;
            the factory is imported now, so a bad spec fails before any training.

    Raises:
        ValueError: naming the bad value (unknown name, bad spec, duplicate name, nothing given).
    """
    from agents.architectures import BUILTIN, load_factory

    chosen: list[BenchArchitecture] = []
    for name in archs:
        if name not in BUILTIN:
            raise UsageError(f"unknown architecture {name!r}: built-ins are {tuple(BUILTIN)}")
        chosen.append(BenchArchitecture(name, name))
    for spec in models:
        name, _ = load_factory(spec)
        target = spec.split("=", 1)[1] if "=" in spec else spec
        chosen.append(BenchArchitecture(name, target))
    names = [a.name for a in chosen]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"architecture names must be unique, got {duplicates} more than once")
    if not chosen:
        raise UsageError("no architecture to benchmark: give built-in names and/or model specs")
    return chosen


@dataclass(frozen=True)
class BenchProtocol:
    """How every architecture is trained and measured.

    Attributes:
        preset: `agents.preset` name (``"fast"``: 128 units, lr 1e-3, 2,500 steps).
        dataset: ``"mnist"`` or ``"fashion-mnist"`` (``fast`` does not take cifar10).
        curriculum: Schedule name (``"none"``, ``"decu"``, ``"vocu"``, ...).
        curriculum_scale: Stretch of the curriculum's steps.
        seeds: One run per seed and architecture (weights and trial stream).
        hidden_size, total_steps, batch_size, lr: Override the preset when given.
        data_root: Data folder (else ``$MEMENV_DATA`` / the embedded MNIST).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        n_trials: Evaluation trials per delay (held-out images, image at t = 0).
        eval_batch_size: Trials evaluated at once (bounds the Transformer's cache memory).
        anchor_trials: Trials per class for the class centres.
        eval_seed: Seed of the evaluation trials (the same trials for every model).
    """

    preset: str = "fast"
    dataset: str = "mnist"
    curriculum: str = "none"
    curriculum_scale: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden_size: int | None = None
    total_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    data_root: str | None = None
    device: str = "auto"
    n_trials: int = 1000
    eval_batch_size: int = 100
    anchor_trials: int = 100
    eval_seed: int = 0

    def __post_init__(self) -> None:
        seeds = tuple(self.seeds)
        if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
            raise UsageError(f"seeds must be non-negative integers, got {self.seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise UsageError(f"seeds must be distinct, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        for name in ("n_trials", "eval_batch_size", "anchor_trials"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"BenchProtocol.{name} must be a positive integer, got {value!r}")
        config = self.train_config(seeds[0])  # validates preset, dataset, overrides
        from agents.schedule import resolve_schedule

        resolve_schedule(config.curriculum, config.dataset, config.curriculum_scale)  # the name

    def train_config(self, seed: int):
        """The `TrainConfig` of one run."""
        from agents.config import preset

        values: dict[str, Any] = {
            "curriculum": self.curriculum,
            "curriculum_scale": float(self.curriculum_scale),
            "seed": int(seed),
            "data_root": self.data_root,
            "device": self.device,
        }
        for name in ("hidden_size", "total_steps", "batch_size", "lr"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        config = preset(self.preset, self.dataset, **values)
        if self.total_steps is None:
            return config
        # a shortened run keeps the preset's lr decay at the same share of the run, and ten
        # checkpoints
        base = preset(self.preset, self.dataset)
        changes: dict[str, Any] = {
            "checkpoint_every": max(1, self.total_steps // 10),
            "log_every": max(1, min(config.log_every, self.total_steps)),
        }
        if base.lr_decay_step is not None:
            share = base.lr_decay_step / base.total_steps
            changes["lr_decay_step"] = max(1, round(share * self.total_steps))
        return config.replace(**changes)

    @property
    def trained_delays(self) -> tuple[int, int]:
        """Shortest and longest delay seen in training."""
        config = self.train_config(self.seeds[0])
        return config.min_delay, config.n_steps - 1

    def table_delays(self) -> tuple[int, ...]:
        """Delays of the table: shortest, middle and longest trained, then 2x, 10x, 100x the
        longest."""
        low, high = self.trained_delays
        inside = (low, (low + high) // 2, high)
        return tuple(sorted(set(inside))) + tuple(m * high for m in MULTIPLES)

    def curve_delays(self) -> tuple[int, ...]:
        """Delays evaluated (the figure's): the table's plus intermediate ones. They share one
        trajectory per trial, so the longest delay sets the cost."""
        low, high = self.trained_delays
        inside = np.unique(np.round(np.geomspace(low, high, 6)).astype(int)).tolist()
        # to 2,000 steps at least: the memory half-life is read on this grid
        beyond = [round(f * high) for f in (1.5, 2, 3, 5, 10, 20, 50, 100)] + [
            max(2000, 100 * high)
        ]
        return tuple(sorted(set(inside) | set(beyond) | set(self.table_delays())))

    def evaluation_settings(self) -> dict[str, Any]:
        """What decides a run's measurements besides its weights (saved with each result)."""
        return {
            "n_trials": self.n_trials,
            "eval_batch_size": self.eval_batch_size,  # the trials are drawn batch by batch
            "anchor_trials": self.anchor_trials,
            "eval_seed": self.eval_seed,
            "eval_delays": list(self.curve_delays()),
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["seeds"] = list(self.seeds)
        return data


@dataclass
class RunResult:
    """What one (architecture, seed) run measured; saved as ``bench.json`` in its directory.

    Attributes:
        arch: Architecture name. spec: its built-in name or plug-in spec. seed: run seed.
        status: ``"done"`` or ``"diverged"`` (non-finite loss; no measurements then).
        n_parameters: Trainable parameters.
        train_s: Training wall time (``run.json``'s ``elapsed_s``; summed over resumes).
        eval_s: Wall time of the evaluation and anchor measurement.
        recurrent: Whether the state has a fixed size (anchor speed measured).
        evaluation: `agents.DelayAccuracy.to_dict()` (None when diverged).
        anchor: ``{"speeds" [K], "n_correct" [K], "slowest", "slowest_class", "anchor"}`` or
            None (not recurrent, diverged, or no class answered correctly).
        train_config: The `TrainConfig` used, as a dict.
        error: Why a run diverged.
        meta: The code's commit when the run started, torch threads.
        evaluation_settings: `BenchProtocol.evaluation_settings` of the measurement (None for
            a diverged run, and in results saved before memenv recorded them).
        options: The architecture's own model options (`BenchArchitecture.options`), if any.
    """

    arch: str
    spec: str
    seed: int
    status: str
    n_parameters: int
    train_s: float
    eval_s: float
    recurrent: bool
    evaluation: dict[str, Any] | None
    anchor: dict[str, Any] | None
    train_config: dict[str, Any]
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    evaluation_settings: dict[str, Any] | None = None
    options: dict[str, Any] | None = None

    def accuracy_at(self, delays: tuple[int, ...]) -> np.ndarray:
        """float64 ``[len(delays)]``: accuracy at each delay (NaN where not measured)."""
        out = np.full(len(delays), np.nan)
        if self.evaluation is None:
            return out
        measured = dict(zip(self.evaluation["delays"], self.evaluation["accuracy"][0], strict=True))
        for i, d in enumerate(delays):
            out[i] = measured.get(int(d), np.nan)
        return out

    def save(self, path: str | Path) -> None:
        from agents.checkpoint import write_json

        write_json(Path(path), dataclasses.asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        data = read_json(path)
        try:
            return cls(**data)
        except TypeError as error:  # missing or unknown fields, or not a JSON object
            raise CorruptFileError(f"{path} is not a benchmark result ({error})") from None


def run_dir_of(runs_dir: str | Path, arch: BenchArchitecture, seed: int) -> Path:
    """``runs_dir/<arch name>/seed<seed>``."""
    return Path(runs_dir) / arch.name / f"seed{int(seed)}"


def is_finished(run_dir: str | Path) -> bool:
    """The run holds its measured result. ``bench.json`` is written after the final weights,
    so a crash cannot leave one without the other; a run folder shared without its weights
    (``*.pt`` left out to keep it small) still counts as finished."""
    return (Path(run_dir) / RESULT_FILE).is_file()


def requested_settings(
    arch: BenchArchitecture, seed: int, protocol: BenchProtocol
) -> dict[str, Any]:
    """The settings a run of ``arch`` and ``seed`` must have been made with to be reused: the
    spec, every `TrainConfig` field but `IGNORED_SETTINGS`, and the evaluation settings (JSON
    values, as they are saved)."""
    config = arch.train_config(protocol, seed).to_dict()
    train = {k: v for k, v in config.items() if k not in IGNORED_SETTINGS}
    own = {"options": dict(arch.options)} if arch.options else {}
    return json.loads(
        json.dumps({"spec": arch.spec, **own, **train, **protocol.evaluation_settings()})
    )


def saved_settings(run_dir: str | Path) -> dict[str, Any] | None:
    """The settings a run directory was made with, as far as it recorded them; None when it
    holds no run yet.

    A finished run: its result's spec, train config and evaluation settings (results saved
    before memenv recorded evaluation settings give the delays, trials per delay and seed of
    their evaluation). A partly trained or diverged run: its ``config.json`` (what training
    resumes with) and the spec of ``bench_run.json`` or ``failed.json``; it has no
    measurements yet, so no evaluation settings. Keys a run did not record are absent.
    """
    from agents.config import TrainConfig

    run_dir = Path(run_dir)
    if is_finished(run_dir):
        return result_settings(RunResult.load(run_dir / RESULT_FILE))
    saved: dict[str, Any] = {}
    for name in (FAILED_FILE, RUN_FILE):
        if (run_dir / name).is_file():
            data = read_json(run_dir / name)
            if isinstance(data, dict) and "spec" in data:
                saved["spec"] = data["spec"]
            if isinstance(data, dict) and data.get("options"):
                saved["options"] = data["options"]
            if name == FAILED_FILE and isinstance(data, dict):
                saved.update(data.get("train_config") or {})
    if (run_dir / "config.json").is_file():
        saved.update(TrainConfig.from_json(run_dir / "config.json").to_dict())
    return json.loads(json.dumps(saved)) if saved else None


def result_settings(result: RunResult) -> dict[str, Any]:
    """The settings a saved result records (a diverged one: no evaluation settings)."""
    own = {"options": result.options} if result.options else {}
    saved = {"spec": result.spec, **own, **result.train_config, **_evaluation_settings(result)}
    return json.loads(json.dumps(saved))


def shared_settings(results: list[RunResult]) -> dict[str, Any]:
    """The settings all ``results`` were made with (`result_settings`, without the seed and the
    spec, which differ between runs): what a report's protocol line states.

    Raises:
        UsageError: two results recorded different values of one setting (naming it).
    """
    shared: dict[str, Any] = {}
    for result in results:
        for key, value in result_settings(result).items():
            if key in ("seed", "spec"):
                continue
            if key in PER_ARCHITECTURE:  # tuned or matched: one value per architecture
                if shared.setdefault(key, value) != value:
                    shared[key] = "per architecture"
                continue
            if key in shared and shared[key] != value:
                raise UsageError(
                    f"the results mix protocols: {key} is {shared[key]!r} in some runs and "
                    f"{value!r} in {result.arch} seed {result.seed}; no report written"
                )
            shared.setdefault(key, value)
    return shared


def _evaluation_settings(result: RunResult) -> dict[str, Any]:
    if result.status != "done":
        return {}
    if result.evaluation_settings is not None:
        return dict(result.evaluation_settings)
    if result.evaluation is None:
        return {}
    known: dict[str, Any] = {"eval_delays": list(result.evaluation.get("delays", []))}
    if result.evaluation.get("n_trials"):
        known["n_trials"] = int(result.evaluation["n_trials"][0])
    if "seed" in result.evaluation.get("meta", {}):
        known["eval_seed"] = int(result.evaluation["meta"]["seed"])
    return known


def settings_mismatch(saved: dict[str, Any] | None, requested: dict[str, Any]) -> list[str]:
    """``["field: saved X vs requested Y", ...]`` for every recorded setting that differs
    (`IGNORED_SETTINGS` excepted); empty when the run may be reused (or there is none)."""
    if saved is None:
        return []
    return [
        f"{key}: saved {saved[key]!r} vs requested {value!r}"
        for key, value in requested.items()
        if key in saved and key not in IGNORED_SETTINGS and saved[key] != value
    ]


def run_mismatch(
    runs_dir: str | Path, arch: BenchArchitecture, seed: int, protocol: BenchProtocol
) -> list[str]:
    """`settings_mismatch` of the run directory of ``arch`` and ``seed`` under ``runs_dir``."""
    run_dir = run_dir_of(runs_dir, arch, seed)
    return settings_mismatch(saved_settings(run_dir), requested_settings(arch, seed, protocol))


def describe_mismatch(mismatched: list[tuple[Path, list[str]]]) -> str:
    """``"DIR, DIR (field: saved X vs requested Y, ...); DIR (...)"``: runs that differ the same
    way are listed together."""
    groups: dict[str, list[str]] = {}
    for run_dir, differences in mismatched:
        groups.setdefault(", ".join(differences), []).append(str(run_dir))
    return "; ".join(f"{', '.join(dirs)} ({fields})" for fields, dirs in groups.items())


def mismatch_message(mismatched: list[tuple[Path, list[str]]], advice: str) -> str:
    """One line naming every mismatched run directory and its differing fields, then
    ``advice``."""
    count = "1 run was" if len(mismatched) == 1 else f"{len(mismatched)} runs were"
    return (
        f"{count} made with another protocol than the one requested: "
        f"{describe_mismatch(mismatched)}. Reusing them would mix protocols in one table; {advice}"
    )


def check_architectures(archs: list[BenchArchitecture], protocol: BenchProtocol) -> None:
    """Builds every plug-in architecture once with the protocol's sizes, so that a factory that
    does not follow the recurrent protocol fails before any run trains (UsageError naming it)."""
    from agents.architectures import BUILTIN

    for arch in archs:
        if arch.spec not in BUILTIN:
            arch.build(arch.train_config(protocol, protocol.seeds[0]))


def run_one(
    arch: BenchArchitecture,
    seed: int,
    protocol: BenchProtocol,
    runs_dir: str | Path,
    *,
    progress: bool = False,
    threads: int | None = None,
    meta: dict[str, Any] | None = None,
) -> RunResult:
    """Trains, evaluates and measures one (architecture, seed); returns the saved result.

    A finished run (`is_finished`) is loaded, not redone; a partly trained one resumes; either
    only when it was made with ``protocol`` (`run_mismatch`), else UsageError naming the run
    directory and the differing fields (``saved X vs requested Y``). A
    non-finite loss is a result (``status="diverged"``), saved as ``failed.json`` so that a later
    call tries it again. ``meta`` (e.g. the git commit the code came from) is saved with it.
    """
    import torch

    from agents.checkpoint import load_state, write_json
    from agents.trainer import NonFiniteLossError, train

    if threads:
        torch.set_num_threads(int(threads))
    run_dir = run_dir_of(runs_dir, arch, seed)
    differences = run_mismatch(runs_dir, arch, seed, protocol)
    if differences:
        raise UsageError(
            mismatch_message([(run_dir, differences)], "delete the run directory or use another")
        )
    if is_finished(run_dir):
        return RunResult.load(run_dir / RESULT_FILE)
    config = arch.train_config(protocol, seed)
    model = arch.build(config)
    common = dict(arch=arch.name, spec=arch.spec, seed=int(seed), train_config=config.to_dict(),
                  options=dict(arch.options) or None)  # fmt: skip
    if (run_dir / "model.pt").is_file():
        load_state(run_dir, model)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        own = {"options": dict(arch.options)} if arch.options else {}
        write_json(run_dir / RUN_FILE, {"arch": arch.name, "spec": arch.spec, **own})
        try:
            train(config, run_dir, model=model, progress=progress)
        except NonFiniteLossError as error:
            failed = RunResult(
                **common, status="diverged", n_parameters=_n_parameters(model),
                train_s=_train_seconds(run_dir), eval_s=0.0, recurrent=False, evaluation=None,
                anchor=None, error=str(error), meta=dict(meta or {}),
            )  # fmt: skip
            failed.save(run_dir / FAILED_FILE)
            return failed
    start = time.perf_counter()
    evaluation, anchor, recurrent = measure(model, protocol, config, progress=progress)
    result = RunResult(
        **common, status="done", n_parameters=_n_parameters(model),
        train_s=_train_seconds(run_dir), eval_s=round(time.perf_counter() - start, 3),
        recurrent=recurrent, evaluation=evaluation, anchor=anchor,
        meta={**(meta or {}), "torch_threads": torch.get_num_threads()},
        evaluation_settings=protocol.evaluation_settings(),
    )  # fmt: skip
    result.save(run_dir / RESULT_FILE)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    return result


def measure(model, protocol: BenchProtocol, config, progress: bool = False):
    """Accuracy vs delay on held-out images and, for a fixed-size state, the anchor speeds.

    Returns:
        ``(DelayAccuracy dict, anchor dict or None, recurrent)``.
    """
    from agents.evaluate import evaluate_delays
    from memenv import DelayedRecallTask

    model.eval()
    task = DelayedRecallTask(
        config.task_config().replace(split="test"), root=config.data_root, download=config.download
    )
    evaluation = evaluate_delays(
        model, task, delays=protocol.curve_delays(), n_trials=protocol.n_trials,
        batch_size=protocol.eval_batch_size, t_stim=0, seed=protocol.eval_seed,
        progress=progress,
    )  # fmt: skip
    anchor = anchor_speed(model, task, protocol.anchor_trials, protocol.eval_seed)
    return evaluation.to_dict(), anchor, has_fixed_state(model, task.obs_dim)


def has_fixed_state(model, obs_dim: int) -> bool:
    """Whether one `transition` keeps every state tensor's shape (False for a growing cache)."""
    import torch

    from analysis.protocol import model_device_dtype

    device, dtype = model_device_dtype(model)
    with torch.no_grad():
        before = model.initial_state(1)
        after = model.transition(before, torch.zeros(1, obs_dim, device=device, dtype=dtype))
    return _shapes(before) == _shapes(after)


def _shapes(state: Any) -> list[tuple[int, ...]]:
    if isinstance(state, tuple | list):
        return [shape for part in state for shape in _shapes(part)]
    return [tuple(state.shape)]


def anchor_speed(model, task, n_per_class: int = 100, seed: int = 0) -> dict[str, Any] | None:
    """Speeds of the class anchors (module docstring) and the slowest of them.

    Returns None for a model whose state grows (no fixed-size state to take centres of), and
    ``slowest = None`` when no class is answered correctly 15 steps after its image.
    """
    from analysis.centers import class_centers
    from analysis.protocol import FlatDynamics
    from analysis.speed_accuracy import speeds_at

    if not has_fixed_state(model, task.obs_dim):
        return None
    dynamics = FlatDynamics(model)
    centers = class_centers(dynamics, task, n_per_class=n_per_class, seed=seed)
    speeds = speeds_at(dynamics, centers.centers, task.mean_frame)
    finite = np.isfinite(speeds)
    slowest = int(np.nanargmin(speeds)) if finite.any() else None
    return {
        "anchor": ANCHOR,
        "speeds": [float(q) if math.isfinite(q) else None for q in speeds],
        "n_correct": centers.n_correct.tolist(),
        "slowest": None if slowest is None else float(speeds[slowest]),
        "slowest_class": slowest,
    }


def _n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _train_seconds(run_dir: Path) -> float:
    info = run_dir / "run.json"
    return float(read_json(info).get("elapsed_s", math.nan)) if info.is_file() else 0.0


def load_results(
    runs_dir: str | Path,
    archs: list[BenchArchitecture],
    seeds: tuple[int, ...],
    protocol: BenchProtocol | None = None,
) -> tuple[list[RunResult], list[tuple[str, int]]]:
    """The saved results of every (architecture, seed), and the pairs that have none yet.

    With ``protocol``, every result must have been made with it (`requested_settings`), else
    UsageError naming the run directories and the differing fields: a table never mixes
    protocols.
    """
    results, missing, mismatched = [], [], []
    for arch in archs:
        for seed in seeds:
            run_dir = run_dir_of(runs_dir, arch, seed)
            if is_finished(run_dir):
                result = RunResult.load(run_dir / RESULT_FILE)
            elif (run_dir / FAILED_FILE).is_file():
                result = RunResult.load(run_dir / FAILED_FILE)
            else:
                missing.append((arch.name, seed))
                continue
            results.append(result)
            if protocol is not None:
                requested = requested_settings(arch, seed, protocol)
                differences = settings_mismatch(result_settings(result), requested)
                if differences:
                    mismatched.append((run_dir, differences))
    if mismatched:
        raise UsageError(mismatch_message(mismatched, "no report written"))
    return results, missing
