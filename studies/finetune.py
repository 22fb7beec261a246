"""Speed-regularised fine-tuning of a trained run (`regularize_run`) and training from scratch
with the penalty (`train_with_speed_penalty`).

`regularize_run` never touches the source run. It writes a new run directory (an ordinary
`agents.train` run, started from the source's weights) plus:

* ``source.json``: the source run, member and step;
* ``anchors.npz``: the fixed anchors (`analysis.regularizer.Anchors`), computed once;
* ``accuracy_before.json`` / ``accuracy_after.json``: accuracy vs delay on held-out images,
  the same trials before and after (a paired comparison);
* ``regularize.json``: the summary (speeds at the anchors before and after, accuracies);
* ``accuracy_before_after.png`` and ``summary.md``.

Every piece is written when finished, so a killed call resumes where it stopped.

`regularize_modes` fine-tunes one source once per mode (by default ``center`` and its
``control``, lambda = 0) on the same trials into ``OUT/<mode>/`` and writes the paired comparison
(``comparison.json``, ``summary.md``, ``accuracy.png``): the penalty's effect is the difference
to the control, not the change from before to after, which fine-tuning alone also makes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_json, read_jsonl
from analysis.regularizer import (
    PAPER_LAMBDA,
    PAPER_NOISE_DRAWS,
    Anchors,
    SpeedPenalty,
    anchor_speeds,
    check_lam,
    check_mode,
    compute_anchors,
)
from memenv.errors import MissingFileError, UsageError

FINETUNE_PRESETS = ("paper", "fast")
EVAL_DELAYS = (4, 10, 19, 40, 100, 200, 500, 1000, 2000)
"""Delays of the before/after evaluation: inside the trained range 4..19, then 2x to 100x."""
DEFAULT_MODES = ("center", "control")
"""Modes of one `regularize_modes` call by default: the paper's anchors and their control."""
PENALTY_FRAMES = 100
"""Noise frames per anchor with which `expected_penalty` estimates S before and after."""
PENALTY_SEED = 20190
"""Seed of those frames (the same frames for the source and the fine-tuned network)."""
RESUME_FREE = ("device", "evaluate")
"""`RegularizeConfig` fields that may differ when an output directory is used again."""

S_DEFINITION = (
    "**S** (the penalty): the sum over the anchors h*_k (one per class) and n_noise fresh "
    "noise frames x_j of ||phi(F(h*_k, x_j)) - phi(h*_k)||^2, the squared one-step "
    "displacement of the state from the anchor (phi: tanh on LSTM cell coordinates, the "
    "identity elsewhere); fine-tuning adds lambda * S to the loss."
)
Q_DEFINITION = (
    "**q** (the slow-point speed): ||phi(F(h*, x_bar)) - phi(h*)||^2 at an anchor h* under the "
    "mean noise frame x_bar, the speed the paper's slow-point analysis measures; shown as the "
    "mean over the anchors."
)
WHY_S_AND_Q_DIFFER = (
    "S and q can move in opposite directions: S is measured under noise frames, q under the "
    "mean frame. Per anchor and frame, S is about q plus the network's response to the noise "
    "around the mean frame, so fine-tuning can lower S by making the network less sensitive to "
    "the noise while q, the drift left under the mean frame, stays or grows."
)
DEFINITIONS = (S_DEFINITION, Q_DEFINITION, WHY_S_AND_Q_DIFFER)
"""One sentence each on S and q and why they can disagree (printed with every summary)."""


@dataclass(frozen=True)
class RegularizeConfig:
    """One speed-regularised fine-tuning (docs/paper.md, "The speed regulariser").

    Attributes:
        mode: Anchors: ``"center"`` (paper's choice), ``"slow"`` or ``"control"`` (lam = 0).
        lam: Penalty weight; None = the paper's for the data set (`PAPER_LAMBDA`), 0 for
            ``control``.
        lr: Adam learning rate (paper: 1e-5 MNIST, 1e-4 CIFAR-10), constant.
        total_steps: Fine-tuning steps (paper: 5,000).
        n_noise: Noise frames per anchor per step (paper: 10).
        recompute_every: Recompute the anchors every this many steps (None: fixed, as in the
            paper).
        seed: Seeds the fine-tuning trials and the penalty's noise.
        n_per_class: Trials per class for the centres of mass (paper: 100).
        settle_steps: Steps from image to centre state (paper: 15).
        eval_delays: Delays of the before/after evaluation.
        eval_trials: Trials per delay of that evaluation.
        evaluate: Run the before/after evaluation.
        checkpoint_every: Steps between kept checkpoints.
        log_every: Steps between metrics lines.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    mode: str = "center"
    lam: float | None = None
    lr: float = 1e-5
    total_steps: int = 5_000
    n_noise: int = PAPER_NOISE_DRAWS
    recompute_every: int | None = None
    seed: int = 0
    n_per_class: int = 100
    settle_steps: int = 15
    eval_delays: tuple[int, ...] = EVAL_DELAYS
    eval_trials: int = 1000
    evaluate: bool = True
    checkpoint_every: int = 1_000
    log_every: int = 50
    device: str = "auto"

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.lam is not None:
            check_lam(self.lam, self.mode)
        for name in ("total_steps", "n_noise", "n_per_class", "settle_steps", "eval_trials"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(
                    f"RegularizeConfig.{name} must be a positive integer, got {value!r}"
                )
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise UsageError(f"RegularizeConfig.lr must be a positive number, got {self.lr!r}")
        if not self.eval_delays or any(int(d) < 1 for d in self.eval_delays):
            raise UsageError(f"eval_delays must be positive integers, got {self.eval_delays!r}")

    def lam_for(self, dataset: str) -> float:
        """The weight used on ``dataset``."""
        if self.mode == "control":
            return 0.0
        return PAPER_LAMBDA[dataset] if self.lam is None else float(self.lam)

    def replace(self, **changes: Any) -> RegularizeConfig:
        return replace(self, **changes)


def finetune_preset(name: str, dataset: str = "mnist", **overrides: Any) -> RegularizeConfig:
    """``paper``: 5,000 steps at lr 1e-5 (MNIST) / 1e-4 (CIFAR-10), the paper's lambda.
    ``fast``: for `agents.preset("fast")` runs: 1,000 steps at lr 1e-4 (the fast preset's
    final learning rate), the paper's lambda."""
    if name not in FINETUNE_PRESETS:
        raise UsageError(f"preset must be one of {FINETUNE_PRESETS}, got {name!r}")
    if name == "paper":
        values: dict[str, Any] = {
            "total_steps": 5_000,
            "lr": 1e-4 if dataset == "cifar10" else 1e-5,
        }
    else:
        values = {"total_steps": 1_000, "lr": 1e-4, "checkpoint_every": 250}
    values.update(overrides)
    return RegularizeConfig(**values)


@dataclass
class RegularizeResult:
    """What `regularize_run` found (also in ``regularize.json``)."""

    out_dir: Path
    source: dict[str, Any]
    config: dict[str, Any]
    lam: float
    anchors: Anchors
    speeds_before: np.ndarray
    speeds_after: np.ndarray
    penalty_first: float | None
    penalty_last: float | None
    slow_speeds_before: np.ndarray | None = None
    slow_speeds_after: np.ndarray | None = None
    accuracy_before: Any = None
    accuracy_after: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    penalty_before: float | None = None
    """S of the source at the anchors (`expected_penalty`; None in results made before it)."""
    penalty_after: float | None = None
    """S of the fine-tuned network at the same anchors, with the same noise frames."""

    @property
    def n_anchors(self) -> int:
        """Anchors that enter S (classes with a centre)."""
        return int(self.anchors.valid.sum())

    def to_dict(self) -> dict[str, Any]:
        def acc(result: Any) -> dict[str, float] | None:
            if result is None:
                return None
            return {
                str(d): float(a) for d, a in zip(result.delays, result.accuracy[0], strict=True)
            }

        return {
            "source": self.source,
            "config": self.config,
            "lam": self.lam,
            "mode": self.anchors.mode,
            "anchor_classes": self.anchors.classes.tolist(),
            "speeds_before": _list(self.speeds_before),
            "speeds_after": _list(self.speeds_after),
            "mean_speed_before": _nanmean(self.speeds_before),
            "mean_speed_after": _nanmean(self.speeds_after),
            "penalty_first": self.penalty_first,
            "penalty_last": self.penalty_last,
            "penalty_before": self.penalty_before,
            "penalty_after": self.penalty_after,
            "n_anchors": self.n_anchors,
            "slow_speeds_before": _maybe_list(self.slow_speeds_before),
            "slow_speeds_after": _maybe_list(self.slow_speeds_after),
            "mean_slow_speed_before": _maybe_mean(self.slow_speeds_before),
            "mean_slow_speed_after": _maybe_mean(self.slow_speeds_after),
            "accuracy_before": acc(self.accuracy_before),
            "accuracy_after": acc(self.accuracy_after),
            "info": self.info,
        }


def _list(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def _maybe_list(values: np.ndarray | None) -> list[float | None] | None:
    return None if values is None else _list(values)


def _maybe_mean(values: np.ndarray | None) -> float | None:
    return None if values is None else _nanmean(values)


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def default_out_dir(run_dir: str | Path, mode: str, member: int | None = None) -> Path:
    """``<run_dir>-<mode>`` beside the source (``<run_dir>-m<k>-<mode>`` for a member); with
    ``mode="regularize"`` the folder of a `regularize_modes` comparison."""
    run_dir = Path(run_dir)
    tag = f"-m{member}" if member is not None else ""
    return run_dir.with_name(f"{run_dir.name}{tag}-{mode}")


def source_label(member: int | None) -> str:
    """``"single network"`` or ``"member k"``: which network of a run was fine-tuned."""
    return "single network" if member is None else f"member {member}"


def expected_penalty(
    model: Any,
    anchors: Anchors,
    task: Any,
    n_noise: int,
    *,
    n_frames: int = PENALTY_FRAMES,
    seed: int = PENALTY_SEED,
) -> float:
    """S of ``model`` at ``anchors`` as the penalty computes it (`SpeedPenalty.speed_sum`), its
    expectation over noise frames: ``K' * n_noise`` times the mean squared displacement over
    ``n_frames`` frames per anchor (K' anchors with a state). The frames depend only on
    ``seed``, so two networks are compared on the same frames."""
    import torch

    from analysis.protocol import model_device_dtype

    probe = SpeedPenalty(anchors, task, 0.0, n_noise=n_frames, seed=seed)
    device, _ = model_device_dtype(model)
    with torch.no_grad():
        total = float(probe.speed_sum(model, probe.noise(device)))
    return total * n_noise / n_frames


def regularize_run(
    run_dir: str | Path,
    config: RegularizeConfig | None = None,
    out_dir: str | Path | None = None,
    *,
    member: int | None = None,
    progress: bool = True,
    figures: bool = True,
    before_file: str | Path | None = None,
) -> RegularizeResult:
    """Fine-tunes a trained run with the speed penalty into a new run directory.

    Args:
        run_dir: A finished run of `agents.train` (its ``model.pt``; never modified).
        config: The fine-tuning; default `RegularizeConfig()` (the paper's MNIST settings).
        out_dir: The new run directory; default `default_out_dir`. Must not be, or lie inside,
            ``run_dir``.
        member: For an ensemble run, the member to fine-tune (required there).
        progress: tqdm bars.
        figures: Write the before/after figure.
        before_file: Where to keep (and find) the source's before-evaluation, so that several
            fine-tunings of one source evaluate it once; default ``out_dir``'s own file.

    Returns:
        A `RegularizeResult`; a finished ``out_dir`` is read back, not redone.
    """
    from agents.checkpoint import checkpoint_step, load_model, write_json
    from agents.config import TrainConfig
    from agents.trainer import train

    config = config or RegularizeConfig()
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise MissingFileError(f"{run_dir} holds no finished run (no model.pt)")
    source_config = TrainConfig.from_json(run_dir / "config.json")
    if source_config.n_members > 1 and member is None:
        raise UsageError(f"{run_dir} is an ensemble of {source_config.n_members}; pass member")
    out_dir = (
        Path(out_dir) if out_dir is not None else default_out_dir(run_dir, config.mode, member)
    )
    if out_dir.resolve() == run_dir.resolve() or run_dir.resolve() in out_dir.resolve().parents:
        raise UsageError(f"out_dir {out_dir} must lie outside the source run {run_dir}")
    lam = config.lam_for(source_config.dataset)
    before_file = Path(before_file) if before_file else out_dir / "accuracy_before.json"
    ft_config = source_config.replace(
        total_steps=config.total_steps,
        lr=float(config.lr),
        lr_decay_step=None,
        curriculum="none",
        curriculum_scale=1.0,
        n_members=1,
        seed=config.seed,
        checkpoint_every=min(config.checkpoint_every, config.total_steps),
        log_every=min(config.log_every, config.total_steps),
        device=config.device,
        split="train",
    )
    source = {
        "run_dir": str(run_dir),
        "member": member,
        "step": checkpoint_step(run_dir),
        "cell": source_config.cell,
        "hidden_size": source_config.hidden_size,
        "curriculum": source_config.curriculum,
        "seed": source_config.seed + (member or 0),
    }
    summary_file = out_dir / "regularize.json"
    _check_same_settings(out_dir, config, member)
    if summary_file.is_file():
        return load_result(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "source.json", {"source": source, "regularize": _config_dict(config)})

    from agents.device import resolve_device

    device = resolve_device(config.device)

    source_model = load_model(run_dir, member=member, device=device)  # read once; never trained

    from memenv import DelayedRecallTask

    train_task = DelayedRecallTask(
        ft_config.task_config(), root=ft_config.data_root, download=ft_config.download
    )
    anchors_file = out_dir / "anchors.npz"
    if anchors_file.is_file():
        anchors = Anchors.load(anchors_file)
    else:
        anchors = compute_anchors(
            source_model, train_task, config.mode, n_per_class=config.n_per_class,
            settle_steps=config.settle_steps, seed=config.seed,
        )  # fmt: skip
        anchors.save(anchors_file)
    penalty = SpeedPenalty(
        anchors, train_task, lam, n_noise=config.n_noise,
        recompute_every=config.recompute_every, seed=config.seed,
        n_per_class=config.n_per_class, settle_steps=config.settle_steps,
    )  # fmt: skip
    started = time.perf_counter()
    result = train(
        ft_config, out_dir, model=copy.deepcopy(source_model), task=train_task, penalty=penalty,
        progress=progress,
    )  # fmt: skip
    # held-out images for the evaluation; the anchors come from the training images
    test_task = DelayedRecallTask(
        train_task.config.replace(split="test"),
        root=ft_config.data_root,
        download=ft_config.download,
    )
    before = after = None
    if config.evaluate:
        before = _evaluate(source_model, test_task, config, before_file)
        before.save(out_dir / "accuracy_before.json")
        after = _evaluate(result.model, test_task, config, out_dir / "accuracy_after.json")
    metrics = _metrics(out_dir)
    n_noise = config.n_noise
    outcome = RegularizeResult(
        out_dir=out_dir,
        source=source,
        config=_config_dict(config),
        lam=lam,
        anchors=anchors,
        speeds_before=anchor_speeds(source_model, anchors, train_task),
        speeds_after=anchor_speeds(result.model, anchors, train_task),
        penalty_first=metrics[0].get("penalty") if metrics else None,
        penalty_last=metrics[-1].get("penalty") if metrics else None,
        # mode "slow": the anchors are exactly these points (same network, settings and seed)
        slow_speeds_before=anchors.speeds
        if config.mode == "slow"
        else _slow_speeds(source_model, train_task, config),
        slow_speeds_after=_slow_speeds(result.model, train_task, config),
        accuracy_before=before,
        accuracy_after=after,
        info={
            "data_source": result.data_source,
            "wall_s": round(time.perf_counter() - started, 2),
            "recomputed_anchors": penalty.history,
        },
        penalty_before=expected_penalty(source_model, anchors, train_task, n_noise),
        penalty_after=expected_penalty(result.model, anchors, train_task, n_noise),
    )
    if figures and before is not None:
        _write_figure(outcome)
    (out_dir / "summary.md").write_text(summary_markdown(outcome))
    write_json(summary_file, outcome.to_dict())
    return outcome


def _check_same_settings(out_dir: Path, config: RegularizeConfig, member: int | None) -> None:
    """A directory started with other settings is not read back or resumed as if it were this
    fine-tuning (only `RESUME_FREE` fields may differ)."""
    path = out_dir / "source.json"
    if not path.is_file():
        return
    saved = read_json(path)
    wanted = _config_dict(config)
    changed = sorted(
        name
        for name, value in saved.get("regularize", {}).items()
        if name not in RESUME_FREE and name in wanted and value != wanted[name]
    )
    if saved.get("source", {}).get("member") != member:
        changed.append("member")
    if changed:
        old = saved.get("regularize", {}) | {"member": saved.get("source", {}).get("member")}
        new = wanted | {"member": member}
        detail = ", ".join(f"{n} {old.get(n)!r} (now {new.get(n)!r})" for n in changed)
        raise UsageError(
            f"{out_dir} holds a fine-tuning with other settings: {detail}; choose another "
            "output directory (--out) or remove this one"
        )


def _slow_speeds(model: Any, task: Any, config: RegularizeConfig) -> np.ndarray:
    """Per class, the speed of the slow point found from the network's own centre of mass
    (the paper's speed; unlike the fixed anchors, it follows the network as it changes)."""
    anchors = compute_anchors(
        model, task, "slow", n_per_class=config.n_per_class, settle_steps=config.settle_steps,
        seed=config.seed,
    )  # fmt: skip
    return anchors.speeds


def _config_dict(config: RegularizeConfig) -> dict[str, Any]:
    data = asdict(config)
    data["eval_delays"] = list(config.eval_delays)
    return data


def _evaluate(model: Any, task: Any, config: RegularizeConfig, path: Path) -> Any:
    from agents.evaluate import DelayAccuracy, evaluate_delays

    if path.is_file():
        cached = DelayAccuracy.load(path)
        same = cached.delays.tolist() == sorted(set(config.eval_delays)) and int(
            cached.n_trials[0]
        ) == int(config.eval_trials)
        if same:
            return cached
    result = evaluate_delays(
        model, task, delays=config.eval_delays, n_trials=config.eval_trials, t_stim=0, seed=12345
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    result.save(path)
    return result


def _metrics(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return read_jsonl(path)


def load_result(out_dir: Path) -> RegularizeResult:
    from agents.evaluate import DelayAccuracy

    data = read_json(out_dir / "regularize.json")

    def maybe(name: str) -> Any:
        path = out_dir / f"{name}.json"
        return DelayAccuracy.load(path) if path.is_file() else None

    def array(values: list) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    return RegularizeResult(
        out_dir=out_dir,
        source=data["source"],
        config=data["config"],
        lam=data["lam"],
        anchors=Anchors.load(out_dir / "anchors.npz"),
        speeds_before=array(data["speeds_before"]),
        speeds_after=array(data["speeds_after"]),
        penalty_first=data["penalty_first"],
        penalty_last=data["penalty_last"],
        slow_speeds_before=array(data["slow_speeds_before"]),
        slow_speeds_after=array(data["slow_speeds_after"]),
        accuracy_before=maybe("accuracy_before"),
        accuracy_after=maybe("accuracy_after"),
        info=data["info"],
        penalty_before=data.get("penalty_before"),
        penalty_after=data.get("penalty_after"),
    )


def _write_figure(result: RegularizeResult) -> None:
    from agents.plots import plot_delay_accuracy

    mode = result.anchors.mode
    fig = plot_delay_accuracy(
        {"before": result.accuracy_before, f"after ({mode})": result.accuracy_after},
        title=f"speed regularisation, mode {mode}, lambda {result.lam:g} (no control here)",
    )
    fig.savefig(result.out_dir / "accuracy_before_after.png", dpi=120)


def _source_line(result: RegularizeResult) -> str:
    source = result.source
    return (
        f"Source: `{source['run_dir']}` ({source_label(source['member'])}, step {source['step']})."
    )


def speeds_markdown(results: dict[str, RegularizeResult]) -> list[str]:
    """The speeds table of one or more fine-tunings of one source, with the definitions of
    S and q (`DEFINITIONS`) below it."""
    first = next(iter(results.values()))
    n_noise = first.config["n_noise"]
    lines = [
        "| mode | lambda | q at the anchors | S | S per anchor and frame | S in training "
        "(first / last log interval) | slow-point q |",
        "|---|---:|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        per = r.n_anchors * n_noise

        def per_frame(value: float | None, per: int = per) -> float | None:
            return None if value is None else value / per

        lines.append(
            f"| {mode} | {r.lam:g} | {_fmt(_nanmean(r.speeds_before))} -> "
            f"{_fmt(_nanmean(r.speeds_after))} | {_fmt(r.penalty_before)} -> "
            f"{_fmt(r.penalty_after)} | {_fmt(per_frame(r.penalty_before))} -> "
            f"{_fmt(per_frame(r.penalty_after))} | {_fmt(r.penalty_first)} / "
            f"{_fmt(r.penalty_last)} | {_fmt(_maybe_mean(r.slow_speeds_before))} -> "
            f"{_fmt(_maybe_mean(r.slow_speeds_after))} |"
        )
    return lines + [
        "",
        f"Before -> after, at the anchors fixed before fine-tuning ({first.n_anchors} "
        f"anchor{'' if first.n_anchors == 1 else 's'}, n_noise = {n_noise}). S is its expected value over noise frames (estimated from "
        f"{PENALTY_FRAMES} frames per anchor, the same frames before and after); S in training "
        "is the penalty as logged (mean over the steps of a log interval, fresh frames each "
        "step; measured, not penalised, in the control). Slow-point q: the speed of the slow "
        "point found from each network's own class centres (the paper's measure).",
        "",
        *[f"* {sentence}" for sentence in DEFINITIONS],
        "",
    ]


def summary_markdown(result: RegularizeResult) -> str:
    """A short human summary of one fine-tuning."""
    mode = result.anchors.mode
    lines = [
        f"# Speed regularisation: mode `{mode}`, lambda {result.lam:g}",
        "",
        f"{_source_line(result)} Fine-tuned for {result.config['total_steps']} steps at lr "
        f"{result.config['lr']:g} (trial seed {result.config['seed']}).",
        "",
    ]
    before, after = result.accuracy_before, result.accuracy_after
    if before is not None and after is not None:
        lines += ["| delay | before | after |", "|---:|---:|---:|"]
        for i, d in enumerate(before.delays):
            lines.append(f"| {d} | {before.accuracy[0, i]:.3f} | {after.accuracy[0, i]:.3f} |")
        lines.append("")
    if mode == "control":
        lines += [
            "This is a control: the same fine-tuning without the penalty (lambda = 0), the "
            "baseline a penalised fine-tuning of the same source and trial seed is compared "
            "with.",
            "",
        ]
    else:
        lines += [
            "Before -> after mixes the penalty's effect with that of fine-tuning itself: compare "
            "with a control (mode `control`, lambda = 0, same source and trial seed), as "
            "`memenv regularize RUN` does by default.",
            "",
        ]
    lines += ["## Speeds at the anchors", ""]
    return "\n".join(lines + speeds_markdown({mode: result}))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4g}"


# ------------------------------------------------------------------- paired comparison
@dataclass
class ModeComparison:
    """What `regularize_modes` found (also in ``comparison.json``).

    Attributes:
        out_dir: The comparison folder (one run directory per mode inside).
        results: ``{mode: RegularizeResult}``, in the order run.
        delays: The evaluated delays (empty without evaluation).
        differences: ``{mode: [n_delays]}``: accuracy after fine-tuning of each anchor mode
            minus the control's, same source and trials (empty without a control).
    """

    out_dir: Path
    results: dict[str, RegularizeResult]
    delays: list[int]
    differences: dict[str, list[float]]

    @property
    def member(self) -> int | None:
        return next(iter(self.results.values())).source["member"]

    def to_dict(self) -> dict[str, Any]:
        first = next(iter(self.results.values()))
        before = first.to_dict()["accuracy_before"]
        return {
            "source": first.source,
            "modes": list(self.results),
            "run_dirs": {m: str(r.out_dir) for m, r in self.results.items()},
            "delays": self.delays,
            "accuracy_before": before,
            "accuracy_after": {m: r.to_dict()["accuracy_after"] for m, r in self.results.items()},
            "minus_control": self.differences,
            "n_networks": 1,
        }


def regularize_modes(
    run_dir: str | Path,
    config: RegularizeConfig | None = None,
    modes: tuple[str, ...] | list[str] = DEFAULT_MODES,
    out_dir: str | Path | None = None,
    *,
    member: int | None = None,
    progress: bool = True,
    figures: bool = True,
) -> ModeComparison:
    """Fine-tunes one source once per mode, on the same trials, and compares them paired.

    Every mode starts from the same weights with the same trial seed (the penalty draws its
    noise from its own generator, so the training trials are identical), and before / after
    are evaluated on the same held-out trials; so each anchor mode minus the control is the
    penalty's effect net of fine-tuning itself, for this one network (no test: n = 1).

    Args:
        run_dir: A finished run (never modified).
        config: The fine-tuning (its ``mode`` is replaced by each of ``modes``; the control's
            lambda is 0 whatever ``config.lam`` says).
        modes: Modes to run (`analysis.regularizer.ANCHOR_MODES`), e.g. ``center, control``.
        out_dir: The comparison folder, default ``<run_dir>-regularize`` beside the source
            (``<run_dir>-m<k>-regularize`` for a member); mode ``m`` goes to ``out_dir/m/``.
        member: For an ensemble run, the member to fine-tune.
        progress: tqdm bars.
        figures: Write the figures.

    Returns:
        A `ModeComparison`; ``out_dir`` also holds ``comparison.json``, ``summary.md``,
        ``accuracy_before.json`` (shared) and ``accuracy.png``.
    """
    from agents.checkpoint import write_json

    config = config or RegularizeConfig()
    modes = tuple(dict.fromkeys(modes))
    if not modes:
        raise UsageError("modes must name at least one mode, got none")
    for mode in modes:
        check_mode(mode)
    out_dir = (
        Path(out_dir) if out_dir is not None else default_out_dir(run_dir, "regularize", member)
    )
    results: dict[str, RegularizeResult] = {}
    for mode in modes:
        mode_config = config.replace(mode=mode, lam=None if mode == "control" else config.lam)
        results[mode] = regularize_run(
            run_dir, mode_config, out_dir / mode, member=member, progress=progress,
            figures=figures, before_file=out_dir / "accuracy_before.json",
        )  # fmt: skip
    first = next(iter(results.values()))
    delays: list[int] = []
    differences: dict[str, list[float]] = {}
    if all(r.accuracy_after is not None for r in results.values()):
        delays = [int(d) for d in first.accuracy_before.delays]
        if "control" in results:
            control = results["control"].accuracy_after.accuracy[0]
            differences = {
                m: (r.accuracy_after.accuracy[0] - control).tolist()
                for m, r in results.items()
                if m != "control"
            }
    comparison = ModeComparison(out_dir, results, delays, differences)
    if figures and delays:
        _write_comparison_figure(comparison)
    (out_dir / "summary.md").write_text(comparison_markdown(comparison))
    write_json(out_dir / "comparison.json", comparison.to_dict())
    return comparison


def comparison_markdown(comparison: ModeComparison) -> str:
    """The summary of a `regularize_modes` call: accuracy per delay before and after each
    mode, the paired difference to the control, the speeds and what S and q are."""
    results = comparison.results
    first = next(iter(results.values()))
    config, source = first.config, first.source
    lams = ", ".join(f"{m} {r.lam:g}" for m, r in results.items())
    lines = [
        f"# Speed regularisation with its control: `{source['run_dir']}`",
        "",
        f"{_source_line(first)} Each mode fine-tuned this network for {config['total_steps']} "
        f"steps at lr {config['lr']:g} on the same training trials (seed {config['seed']}); "
        f"lambda: {lams}.",
        "",
    ]
    anchor_modes = [m for m in results if m != "control"]
    if comparison.delays:
        before = first.accuracy_before
        header = ["delay", "before", *results, *(f"{m} - control" for m in comparison.differences)]
        lines += [
            f"Accuracy on the same {int(before.n_trials[0])} held-out trials per delay, before "
            "and after fine-tuning:",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---:|" * len(header),
        ]
        for i, d in enumerate(comparison.delays):
            cells = [str(d), f"{before.accuracy[0, i]:.3f}"]
            cells += [f"{r.accuracy_after.accuracy[0, i]:.3f}" for r in results.values()]
            cells += [f"{diff[i]:+.3f}" for diff in comparison.differences.values()]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if comparison.differences:
            names = ", ".join(f"`{m} - control`" for m in comparison.differences)
            lines += [
                f"{names}: the paired difference (same source network, same training and test "
                "trials), the penalty's effect net of what fine-tuning alone does; the change "
                "from before to after is not (the control changes too). n = 1 network: this is "
                "one network's difference, no test. For a test over networks, fine-tune several "
                "members of an ensemble run: `memenv regularize RUN --seeds 5`.",
                "",
            ]
    if "control" not in results and anchor_modes:
        lines += [
            "No control was run (mode `control`, lambda = 0): before -> after mixes the "
            "penalty's effect with that of fine-tuning itself.",
            "",
        ]
    lines += ["## Speeds at the anchors", "", *speeds_markdown(results)]
    lines.append(
        "Run directories: "
        + ", ".join(f"`{r.out_dir}/`" for r in results.values())
        + " (each with its own summary.md)."
    )
    return "\n".join(lines) + "\n"


def _write_comparison_figure(comparison: ModeComparison) -> None:
    from matplotlib.figure import Figure

    from agents.plots import plot_delay_accuracy

    results = comparison.results
    first = next(iter(results.values()))
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    curves = {"before": first.accuracy_before}
    curves |= {f"after {m} (lambda {r.lam:g})": r.accuracy_after for m, r in results.items()}
    plot_delay_accuracy(
        curves, ax=left, title=f"{first.source['run_dir']} ({source_label(comparison.member)})"
    )
    delays = np.asarray(comparison.delays)
    right.axhline(0.0, color="0.3", lw=1)
    for i, (mode, diff) in enumerate(comparison.differences.items()):
        right.plot(delays, diff, "o-", ms=3, color=f"C{i + 1}", label=f"{mode} - control")
    if not comparison.differences:
        right.text(0.5, 0.5, "no control run", ha="center", va="center", transform=right.transAxes)
    right.set_xscale("log")
    right.set_xlabel("delay (steps)")
    right.set_ylabel("accuracy difference after fine-tuning")
    right.set_title("paired difference to the control (n = 1 network)")
    right.grid(True, alpha=0.3)
    if comparison.differences:
        right.legend(loc="best", fontsize="small")
    fig.savefig(comparison.out_dir / "accuracy.png", dpi=120)


def train_with_speed_penalty(
    train_config: Any,
    run_dir: str | Path,
    *,
    mode: str = "center",
    lam: float | None = None,
    recompute_every: int = 250,
    n_noise: int = PAPER_NOISE_DRAWS,
    progress: bool = True,
) -> Any:
    """`agents.train` from scratch with the speed penalty (anchors recomputed as it learns).

    The initial network has no meaningful class centres, so the anchors are recomputed every
    ``recompute_every`` steps; a class never answered correctly yet is anchored at the mean
    over all its trials. Returns the `agents.TrainResult`.
    """
    from agents.trainer import initial_model, train
    from memenv import DelayedRecallTask

    check_mode(mode)
    lam = 0.0 if mode == "control" else PAPER_LAMBDA[train_config.dataset] if lam is None else lam
    if train_config.n_members != 1:
        raise UsageError(f"the penalty needs n_members = 1, got {train_config.n_members}")
    task = DelayedRecallTask(
        train_config.task_config(), root=train_config.data_root, download=train_config.download
    )
    model = initial_model(train_config)
    anchors = compute_anchors(model, task, mode, seed=train_config.seed, all_trials_fallback=True)
    penalty = SpeedPenalty(
        anchors, task, lam, n_noise=n_noise, recompute_every=recompute_every,
        seed=train_config.seed, all_trials_fallback=True,
    )  # fmt: skip
    return train(train_config, run_dir, model=model, task=task, penalty=penalty, progress=progress)
