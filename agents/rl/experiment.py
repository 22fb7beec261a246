"""Train a stable-baselines3 agent on delayed recall, with an optional adaptive curriculum.

Reads top to bottom: `RLConfig` (every knob, validated), then `train_rl` (threads, seeding, the
`SB3VecEnv`, the model, SB3's learning loop with a callback that logs response accuracy,
evaluates on held-out images now and then, and drives the curriculum), then the final
held-out evaluation and the figure.

A run directory gets ``config.json``, ``curve.jsonl`` (one line per rollout; ``test_accuracy``
on the lines where a held-out evaluation ran), ``model.zip``, ``summary.json`` and
``learning_curve.png``.

Two accuracies, on purpose:

* *training* accuracy: the share of the rollout's finished episodes whose return was 1 (the
  response was right; episodes are graded by their return, so ``null_penalty`` stays 0). It
  uses the **stochastic** policy that collects the data, over the vocabulary in force.
* *held-out* accuracy: the **deterministic** policy (argmax) on test-split images, over the
  final vocabulary ``n_classes``: what the agent would score if deployed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_json, read_jsonl, refused_object
from memenv.errors import CorruptFileError, MissingFileError, UnsafeFileError, UsageError

ALGOS = ("recurrent-ppo", "ppo")
FEATURES = ("mlp", "cnn")
CURRICULA = ("none", "adaptive-vocu")


@dataclass(frozen=True)
class RLConfig:
    """One RL run. Invalid values raise ValueError naming the field.

    The task defaults are the paper's (10 classes, 20-step trials); the learning defaults are
    the settings tuned in docs/rl.md on a shared 2-core CPU (small nets, one torch thread,
    ``gamma = 0``, learning rate 1e-3, whole episodes per rollout).
    """

    out_dir: str = "runs/rl"
    """Run directory (created; an existing curve is overwritten)."""
    env_id: str = "DelayedRecall-MNIST-v0"
    """Registered base env id (no curriculum id: the curriculum is driven here)."""
    data_root: str | None = None
    """Folder with the data set files (the env's ``root``); None: ``MEMENV_DATA`` or the
    embedded MNIST subset (see docs/task.md)."""
    algo: str = "recurrent-ppo"
    """``recurrent-ppo`` (sb3-contrib's RecurrentPPO, ``MlpLstmPolicy``) or ``ppo``
    (SB3's PPO, ``MlpPolicy``: the memoryless control)."""
    features: str = "mlp"
    """``mlp`` (SB3's flatten: the 785 values go straight into the LSTM / MLP) or ``cnn``
    (`FrameTriggerExtractor`: a small CNN over the frame, trigger passed around it)."""
    features_dim: int = 65
    """Output size of the CNN extractor (trigger included); ``features="cnn"`` only."""
    num_envs: int = 64
    """Sub-envs of the vector-native env (one `SB3VecEnv`)."""
    n_classes: int = 10
    """Final vocabulary: the task the run is evaluated on."""
    n_steps: int = 20
    """Trial length (steps per episode)."""
    t_max: int | None = None
    """Latest response + 1; None: ``n_steps``."""
    curriculum: str = "none"
    """``none`` or ``adaptive-vocu`` (classes 2, 3, ... ``n_classes``, advanced when the
    training accuracy over ``window`` trials reaches ``threshold``)."""
    threshold: float = 0.8
    """Adaptive curriculum: training accuracy that advances the vocabulary."""
    window: int = 2000
    """Adaptive curriculum: trials the accuracy is measured over."""
    total_timesteps: int = 100_000_000
    """Environment steps (all sub-envs together); ``time_limit_s`` usually ends a run first."""
    time_limit_s: float | None = None
    """Stop learning after this many seconds of wall time (periodic evaluations included);
    the run still evaluates and saves. None: no limit."""
    learning_rate: float = 1e-3
    """Adam learning rate (constant)."""
    rollout_steps: int = 20
    """Steps per sub-env per rollout (SB3's ``n_steps``); a multiple of ``n_steps`` keeps
    whole episodes in one rollout."""
    batch_size: int = 640
    """PPO minibatch in transitions (RecurrentPPO cuts it into sequences at episode starts)."""
    n_epochs: int = 4
    """PPO epochs per rollout."""
    gamma: float = 0.0
    """Discount. The task's actions never change later observations or rewards, so every
    discount has the same optimal policy; 0 gives each step the advantage of its own reward,
    the lowest-variance choice (see docs/rl.md)."""
    gae_lambda: float = 0.95
    """GAE lambda (irrelevant when ``gamma`` is 0)."""
    ent_coef: float = 0.01
    """Entropy bonus. Keep it > 0 with a curriculum: at 0 the policy stops trying the
    actions of classes it has not met yet, and a new class is never learned."""
    clip_range: float = 0.2
    """PPO clip range."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping."""
    lstm_hidden: int = 64
    """RecurrentPPO LSTM size (one LSTM shared by actor and critic)."""
    sequence_lstm: bool = True
    """Use `SequenceLstmPolicy` (the LSTM over whole sequences in one call during updates;
    same results as ``MlpLstmPolicy``, faster); False: sb3-contrib's ``MlpLstmPolicy``."""
    net_arch: tuple[int, ...] = (64,)
    """Hidden layers of the policy and value heads (after the LSTM / features)."""
    torch_threads: int | None = 1
    """``torch.set_num_threads`` for the run; None leaves torch's default. On a shared
    machine more threads than free cores make small-batch training many times slower."""
    device: str = "cpu"
    """Torch device for the model (``cpu``, ``cuda``, ``auto``)."""
    eval_every: int = 10
    """Held-out evaluation every this many rollouts (0: only at the end)."""
    eval_episodes_during: int = 200
    """Held-out episodes per periodic evaluation."""
    eval_episodes: int = 1000
    """Held-out (test split) episodes for the final accuracy."""
    seed: int = 0
    """Seeds torch, the envs and SB3."""

    def __post_init__(self) -> None:
        _choice("algo", self.algo, ALGOS)
        _choice("features", self.features, FEATURES)
        _choice("curriculum", self.curriculum, CURRICULA)
        _choice("device", self.device, ("cpu", "cuda", "auto"))
        for name in (
            "num_envs",
            "total_timesteps",
            "rollout_steps",
            "batch_size",
            "n_epochs",
            "eval_episodes",
            "eval_episodes_during",
            "window",
            "lstm_hidden",
        ):
            _integer(name, getattr(self, name), 1)
        _integer("features_dim", self.features_dim, 2)
        _integer("eval_every", self.eval_every, 0)
        _integer("seed", self.seed, 0)
        _integer("n_classes", self.n_classes, 1, 10)
        _integer("n_steps", self.n_steps, 2)
        if self.t_max is not None:
            _integer("t_max", self.t_max, 5, self.n_steps)
        elif self.n_steps < 5:
            raise UsageError(f"n_steps must be >= 5 (min_delay 4 + 1), got {self.n_steps!r}")
        if self.torch_threads is not None:
            _integer("torch_threads", self.torch_threads, 1)
        if self.curriculum == "adaptive-vocu" and self.n_classes < 3:
            raise UsageError(
                f"n_classes must be >= 3 with curriculum='adaptive-vocu' (it starts at 2), "
                f"got {self.n_classes!r}"
            )
        if self.batch_size < 2 or self.batch_size > self.num_envs * self.rollout_steps:
            raise UsageError(
                f"batch_size must be in [2, num_envs * rollout_steps = "
                f"{self.num_envs * self.rollout_steps}], got {self.batch_size!r}"
            )
        _real("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _real("gamma", self.gamma, 0.0, 1.0)
        _real("gae_lambda", self.gae_lambda, 0.0, 1.0)
        _real("ent_coef", self.ent_coef, 0.0, 1.0)
        _real("clip_range", self.clip_range, 0.0, 1.0, low_open=True)
        _real("vf_coef", self.vf_coef, 0.0, 10.0)
        _real("max_grad_norm", self.max_grad_norm, 0.0, math.inf, low_open=True)
        _real("threshold", self.threshold, 0.0, 1.0, low_open=True)
        if self.time_limit_s is not None:
            _real("time_limit_s", self.time_limit_s, 0.0, math.inf, low_open=True)
        if not isinstance(self.net_arch, tuple | list) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
            for n in self.net_arch
        ):
            raise UsageError(
                f"net_arch must be a tuple of positive integers, got {self.net_arch!r}"
            )
        object.__setattr__(self, "net_arch", tuple(int(n) for n in self.net_arch))

    @property
    def task_kwargs(self) -> dict[str, Any]:
        """The env arguments shared by the training and the held-out envs."""
        kwargs: dict[str, Any] = {"n_steps": self.n_steps, "t_max": self.t_max or self.n_steps}
        if self.data_root is not None:
            kwargs["root"] = self.data_root
        return kwargs

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RLConfig:
        """A config from ``config.json`` (lists become tuples; unknown keys raise)."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise UsageError(f"unknown RLConfig field(s): {unknown}")
        data = dict(data)
        if "net_arch" in data:
            data["net_arch"] = tuple(data["net_arch"])
        return cls(**data)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {allowed}, got {value!r}")


def _integer(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UsageError(f"{name} must be {bound}, got {value!r}")


def _real(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise UsageError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def train_rl(config: RLConfig, progress: bool = False) -> dict[str, Any]:
    """Trains, evaluates on held-out images, writes the run directory; returns the summary.

    Args:
        config: The run.
        progress: Show SB3's progress bar (needs ``tqdm`` and ``rich``).

    Returns:
        The summary also written to ``summary.json``: ``test_accuracy`` (deterministic policy,
        test images, final vocabulary), ``train_seconds``, ``timesteps``, the curriculum's
        last vocabulary, the first time the periodic held-out accuracy reached 0.95 and 0.8,
        and the data source.
    """
    import torch

    threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    try:
        return _train(config, progress)
    finally:
        torch.set_num_threads(threads)


def _train(config: RLConfig, progress: bool) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.rl.evaluate import run_sb3_episodes
    from agents.rl.vec_env import make_sb3_vec_env
    from curricula import AdaptiveSchedule

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    torch.manual_seed(config.seed)

    schedule = None
    first_classes = config.n_classes
    if config.curriculum == "adaptive-vocu":
        stages = [{"n_classes": k} for k in range(2, config.n_classes + 1)]
        schedule = AdaptiveSchedule(
            stages, name="adaptive-vocu", threshold=config.threshold, window=config.window
        )
        first_classes = 2
    envs = make_sb3_vec_env(
        config.env_id, config.num_envs, n_classes=first_classes, **config.task_kwargs
    )
    envs.seed(config.seed)
    test_envs = make_sb3_vec_env(
        config.env_id,
        min(config.num_envs, 100),
        n_classes=config.n_classes,
        split="test",
        **config.task_kwargs,
    )
    model = build_model(config, envs)

    curve_path = out / "curve.jsonl"
    curve_path.write_text("")
    start = time.perf_counter()

    class Monitor(BaseCallback):
        """Grades finished episodes by their return; evaluates; advances the curriculum."""

        def _on_training_start(self) -> None:
            self.returns = np.zeros(config.num_envs)
            self.correct = self.total = self.rollouts = 0

        def _on_step(self) -> bool:
            self.returns += self.locals["rewards"]
            dones = self.locals["dones"]
            if dones.any():
                n_done = int(dones.sum())
                n_correct = int((self.returns[dones] > 0.5).sum())
                self.correct += n_correct
                self.total += n_done
                self.returns[dones] = 0.0
                if schedule is not None and schedule.observe(self.num_timesteps, n_correct, n_done):
                    envs.env_method("set_next_episode_options", schedule.at(self.num_timesteps))
            elapsed = time.perf_counter() - start
            return config.time_limit_s is None or elapsed < config.time_limit_s

        def _on_rollout_end(self) -> None:
            self.rollouts += 1
            row: dict[str, Any] = {
                "timesteps": self.num_timesteps,
                "seconds": round(time.perf_counter() - start, 2),
                "accuracy": self.correct / max(self.total, 1),
                "episodes": self.total,
                "n_classes": envs.get_attr("config")[0].n_classes,
            }
            if config.eval_every and self.rollouts % config.eval_every == 0:
                held_out = run_sb3_episodes(
                    self.model, test_envs, config.eval_episodes_during, seed=self.rollouts
                )
                row["test_accuracy"] = float(held_out["correct"].mean())
                row["seconds_after_eval"] = round(time.perf_counter() - start, 2)
            with curve_path.open("a") as stream:
                stream.write(json.dumps(row) + "\n")
            self.correct = self.total = 0

    model.learn(config.total_timesteps, callback=Monitor(), progress_bar=progress)
    train_seconds = time.perf_counter() - start
    model.save(out / "model.zip")

    # Seeds far from the periodic evaluations' (1, 2, ...), so the final episodes are fresh.
    result = run_sb3_episodes(model, test_envs, config.eval_episodes, seed=config.seed + 10_000)
    test_envs.close()
    curve = [json.loads(line) for line in curve_path.read_text().splitlines()]
    summary = {
        "test_accuracy": float(result["correct"].mean()),
        "test_episodes": int(len(result["correct"])),
        "chance": 1.0 / config.n_classes,
        "train_seconds": round(train_seconds, 1),
        "timesteps": int(model.num_timesteps),
        "steps_per_second": round(model.num_timesteps / max(train_seconds, 1e-9), 1),
        "final_n_classes_in_training": curve[-1]["n_classes"] if curve else first_classes,
        "curriculum_history": (
            [list(entry) for entry in schedule.history] if schedule is not None else None
        ),
        "first_seconds_test_accuracy_ge_0.95": _first_seconds(curve, 0.95),
        "first_seconds_test_accuracy_ge_0.8": _first_seconds(curve, 0.8),
        "torch_threads": torch.get_num_threads(),
        "data_source": envs.get_attr("data_source")[0],
    }
    envs.close()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    figure = plot_learning_curve(
        curve,
        title=f"{config.algo} ({config.features}), {config.n_classes} classes, "
        f"{config.n_steps}-step trials",
        final_test_accuracy=summary["test_accuracy"],
    )
    figure.savefig(out / "learning_curve.png", dpi=100, bbox_inches="tight")
    return summary


def _first_seconds(curve: list[dict[str, Any]], level: float) -> float | None:
    for row in curve:
        if row.get("test_accuracy", -1.0) >= level:
            return row["seconds"]
    return None


def build_model(config: RLConfig, envs: Any) -> Any:
    """The SB3 / sb3-contrib model that ``config`` describes, on ``envs``."""
    from agents.rl.features import FrameTriggerExtractor

    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": list(config.net_arch), "vf": list(config.net_arch)}
    }
    if config.features == "cnn":
        policy_kwargs["features_extractor_class"] = FrameTriggerExtractor
        policy_kwargs["features_extractor_kwargs"] = {"features_dim": config.features_dim}
    common = {
        "learning_rate": config.learning_rate,
        "n_steps": config.rollout_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.n_epochs,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "ent_coef": config.ent_coef,
        "clip_range": config.clip_range,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "verbose": 0,
        "device": config.device,
    }
    if config.algo == "ppo":
        from stable_baselines3 import PPO

        return PPO("MlpPolicy", envs, policy_kwargs=policy_kwargs, **common)
    from sb3_contrib import RecurrentPPO

    from agents.rl.policies import SequenceLstmPolicy

    policy_kwargs.update(
        lstm_hidden_size=config.lstm_hidden, enable_critic_lstm=False, shared_lstm=True
    )
    policy = SequenceLstmPolicy if config.sequence_lstm else "MlpLstmPolicy"
    return RecurrentPPO(policy, envs, policy_kwargs=policy_kwargs, **common)


def smoothed_training_accuracy(curve: list[dict[str, Any]], min_episodes: int = 500) -> list[float]:
    """Training accuracy at each row over the fewest latest rows holding ``min_episodes``
    episodes (all rows so far at the start)."""
    correct = np.cumsum([row["accuracy"] * row["episodes"] for row in curve])
    episodes = np.cumsum([row["episodes"] for row in curve])
    smoothed = []
    first = 0
    for i in range(len(curve)):
        while first < i and episodes[i] - episodes[first] >= min_episodes:
            first += 1
        done = episodes[i] - (episodes[first - 1] if first else 0)
        right = correct[i] - (correct[first - 1] if first else 0)
        smoothed.append(float(right / max(done, 1)))
    return smoothed


def plot_learning_curve(
    curve: list[dict[str, Any]],
    title: str = "",
    final_test_accuracy: float | None = None,
    min_episodes: int = 500,
):
    """Training and held-out response accuracy (and the vocabulary, if it changed) against
    environment steps; returns a matplotlib Figure (nothing is shown).

    The training accuracy is smoothed over the last ``min_episodes`` or more episodes
    (`smoothed_training_accuracy`); the held-out points are plotted as measured."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    ax = figure.add_subplot()
    steps = [row["timesteps"] for row in curve]
    ax.plot(
        steps,
        smoothed_training_accuracy(curve, min_episodes),
        color="C0",
        lw=1,
        label=f"training episodes (stochastic policy, last {min_episodes}+)",
    )
    evaluated = [row for row in curve if "test_accuracy" in row]
    if evaluated:
        ax.plot(
            [row["timesteps"] for row in evaluated],
            [row["test_accuracy"] for row in evaluated],
            "o-",
            color="C2",
            ms=3,
            label="held-out images (deterministic)",
        )
    if final_test_accuracy is not None and steps:
        ax.plot([steps[-1]], [final_test_accuracy], "*", color="C3", ms=10, label="final held-out")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("response accuracy")
    ax.set_ylim(0, 1.02)
    classes = [row["n_classes"] for row in curve]
    if len(set(classes)) > 1:
        twin = ax.twinx()
        twin.step(steps, classes, where="post", color="C1", lw=1)
        twin.set_ylabel("classes in training vocabulary", color="C1")
        twin.set_ylim(0, 10.5)
    if curve:
        seconds = curve[-1]["seconds"]
        ax.text(0.99, 0.02, f"{seconds:.0f} s wall", transform=ax.transAxes, ha="right")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return figure


def load_curve(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``curve.jsonl``."""
    return read_jsonl(Path(run_dir) / "curve.jsonl")


def plot_runs(runs: dict[str, str | Path], title: str = ""):
    """Held-out accuracy (deterministic policy) of several runs against wall time and steps.

    Args:
        runs: Legend label -> run directory (as written by `train_rl`).
        title: Figure title.

    Returns:
        A matplotlib Figure with two panels (against environment steps and against seconds).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.2))
    by_steps, by_time = figure.subplots(1, 2, sharey=True)
    for i, (label, run_dir) in enumerate(runs.items()):
        rows = [row for row in load_curve(run_dir) if "test_accuracy" in row]
        final = read_json(Path(run_dir) / "summary.json")["test_accuracy"]
        text = f"{label} (final {final:.1%})"
        steps = [row["timesteps"] for row in rows]
        seconds = [row["seconds"] for row in rows]
        accuracy = [row["test_accuracy"] for row in rows]
        by_steps.plot(steps, accuracy, "o-", ms=2, color=f"C{i}", label=text)
        by_time.plot(seconds, accuracy, "o-", ms=2, color=f"C{i}", label=text)
    by_steps.set_xlabel("environment steps")
    by_time.set_xlabel("wall seconds")
    by_steps.set_ylabel("held-out response accuracy")
    by_steps.set_ylim(0, 1.02)
    for ax in (by_steps, by_time):
        ax.grid(alpha=0.3)
    by_time.legend(loc="lower right", fontsize=8)
    figure.suptitle(title, fontsize=10)
    return figure


def load_model(run_dir: str | Path, device: str = "cpu", *, trusted: bool = False) -> Any:
    """The trained model of a `train_rl` run, without running code from its files.

    SB3's own ``PPO.load`` unpickles objects stored in ``model.zip`` with cloudpickle, which
    runs whatever code the file carries. By default the model is instead rebuilt from the
    run's ``config.json`` (plain JSON) and only its weights are read from ``model.zip``
    (``policy.pth`` and ``policy.optimizer.pth``, through ``torch.load(weights_only=True)``).

    Args:
        run_dir: A `train_rl` run directory.
        device: Where to put the model.
        trusted: Use SB3's own loader (cloudpickle) instead: only for a file you made yourself,
            e.g. one saved by a model this code cannot rebuild.

    Raises:
        MissingFileError: no ``config.json`` or ``model.zip``.
        CorruptFileError: either file is damaged, or the weights do not fit the config.
        UnsafeFileError: a weights file holds objects other than tensors.
    """
    run_dir = Path(run_dir)
    config = read_rl_config(run_dir / "config.json")
    zip_path = run_dir / "model.zip"
    if not zip_path.is_file():
        raise MissingFileError(f"{run_dir} holds no model.zip: the run did not finish")
    if trusted:
        if config.algo == "ppo":
            from stable_baselines3 import PPO

            return PPO.load(zip_path, device=device)
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO.load(zip_path, device=device)
    from agents.rl.vec_env import make_sb3_vec_env

    envs = make_sb3_vec_env(
        config.env_id, config.num_envs, n_classes=config.n_classes, **config.task_kwargs
    )
    model = build_model(dataclasses.replace(config, device=device), envs)
    _set_weights(model, zip_path, device)
    return model


def _set_weights(model: Any, zip_path: Path, device: str) -> None:
    """SB3's weights-only load (``load_data=False``: no cloudpickle) with errors naming the file."""
    import pickle
    import zipfile

    try:
        model.set_parameters(str(zip_path), exact_match=True, device=device)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(
            f"refused to load {zip_path}: its weights hold {refused_object(error)}, and loading "
            "them could run code the file carries; do not use a file from a source you do not "
            "trust"
        ) from None
    except (zipfile.BadZipFile, ValueError, KeyError, RuntimeError, EOFError) as error:
        raise CorruptFileError(
            f"{zip_path} is damaged or does not fit the run's config.json "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"
        ) from None


def read_rl_config(path: Path) -> RLConfig:
    """A run's ``config.json`` as an `RLConfig`; a damaged file is a CorruptFileError naming it."""
    if not path.is_file():
        raise MissingFileError(f"{path.parent} is not a train_rl run (no config.json)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} holds a JSON {type(data).__name__}, not an RLConfig")
    try:
        return RLConfig.from_dict(data)
    except (UsageError, TypeError) as error:
        raise CorruptFileError(f"{path} is not a valid RLConfig: {error}") from None
