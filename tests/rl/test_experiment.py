"""`RLConfig` validation and short `train_rl` runs (files, summary, curriculum, figures)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from agents.rl.experiment import RLConfig, load_curve, plot_runs, train_rl


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("algo", "sac"),
        ("features", "resnet"),
        ("curriculum", "vocu"),
        ("device", "tpu"),
        ("num_envs", 0),
        ("num_envs", True),
        ("rollout_steps", 2.5),
        ("n_epochs", 0),
        ("lstm_hidden", -1),
        ("features_dim", 1),
        ("eval_every", -1),
        ("n_classes", 11),
        ("n_steps", 1),
        ("t_max", 25),
        ("torch_threads", 0),
        ("learning_rate", 0.0),
        ("gamma", 1.5),
        ("gae_lambda", -0.1),
        ("ent_coef", float("nan")),
        ("clip_range", 0),
        ("max_grad_norm", 0.0),
        ("threshold", 1.2),
        ("window", 0),
        ("time_limit_s", -5),
        ("net_arch", (64, 0)),
        ("net_arch", "64"),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RLConfig(**{field: value})


def test_cross_field_checks():
    with pytest.raises(ValueError, match="batch_size"):
        RLConfig(num_envs=4, rollout_steps=8, batch_size=64)
    with pytest.raises(ValueError, match="n_classes"):
        RLConfig(curriculum="adaptive-vocu", n_classes=2)
    with pytest.raises(ValueError, match="n_steps"):
        RLConfig(n_steps=4)


def test_config_round_trips_through_json():
    config = RLConfig(net_arch=[32, 16], n_steps=8, time_limit_s=10)
    assert config.net_arch == (32, 16)
    again = RLConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config
    with pytest.raises(ValueError, match="unknown RLConfig field"):
        RLConfig.from_dict({"lr": 0.1})


def _tiny(tmp_path, mnist_root, **changes) -> RLConfig:
    base = {
        "out_dir": str(tmp_path / "run"),
        "data_root": str(mnist_root),
        "num_envs": 8,
        "n_steps": 6,
        "n_classes": 3,
        "rollout_steps": 6,
        "batch_size": 24,
        "n_epochs": 1,
        "lstm_hidden": 8,
        "net_arch": (8,),
        "total_timesteps": 240,
        "eval_every": 2,
        "eval_episodes_during": 8,
        "eval_episodes": 16,
    }
    return RLConfig(**{**base, **changes})


@pytest.mark.parametrize("algo", ["recurrent-ppo", "ppo"])
def test_train_rl_writes_the_run(tmp_path, mnist_root, algo):
    config = _tiny(tmp_path, mnist_root, algo=algo)
    summary = train_rl(config)
    run = tmp_path / "run"
    for name in ("config.json", "curve.jsonl", "model.zip", "summary.json", "learning_curve.png"):
        assert (run / name).is_file(), name
    assert RLConfig.from_dict(json.loads((run / "config.json").read_text())) == config
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["test_episodes"] == 16
    assert 0 <= summary["test_accuracy"] <= 1
    assert summary["timesteps"] >= 240
    assert "IDX files" in summary["data_source"]
    curve = load_curve(run)
    assert len(curve) == summary["timesteps"] // (8 * 6)
    assert [row["timesteps"] for row in curve] == [48 * (i + 1) for i in range(len(curve))]
    assert all(row["episodes"] == 8 for row in curve)  # one whole episode per sub-env
    assert ["test_accuracy" in row for row in curve] == [i % 2 == 1 for i in range(len(curve))]


def test_time_limit_stops_learning_and_threads_are_restored(tmp_path, mnist_root):
    torch.set_num_threads(2)
    config = _tiny(tmp_path, mnist_root, total_timesteps=10**9, time_limit_s=1.0, eval_every=0)
    summary = train_rl(config)
    assert summary["train_seconds"] < 30
    assert summary["timesteps"] < 10**9
    assert summary["torch_threads"] == 1
    assert torch.get_num_threads() == 2


def test_adaptive_vocu_advances_the_vocabulary(tmp_path, mnist_root):
    # A threshold a random policy meets now and then (1 right answer in a report of 8).
    config = _tiny(
        tmp_path, mnist_root, curriculum="adaptive-vocu", n_classes=5, threshold=0.1, window=1
    )
    summary = train_rl(config)
    history = summary["curriculum_history"]
    assert history[0] == [0, 0]
    assert len(history) >= 2  # it advanced at least once
    classes = [row["n_classes"] for row in load_curve(tmp_path / "run")]
    assert classes[0] in (2, 3)
    assert classes == sorted(classes)  # the vocabulary only grows
    assert set(classes) <= {2 + stage for stage, _ in history}
    assert len(set(classes)) >= 2
    assert classes[-1] == summary["final_n_classes_in_training"]


def test_plot_runs_compares_run_directories(tmp_path, mnist_root):
    train_rl(_tiny(tmp_path, mnist_root, total_timesteps=96))
    figure = plot_runs({"a": tmp_path / "run", "b": tmp_path / "run"}, title="t")
    assert len(figure.axes) == 2
    assert len(figure.axes[0].lines) == 2


def _rewrite_zip(path, replace):
    """Rewrites ``path`` with ``replace(name, data) -> data`` applied to every member."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, replace(name, data))


def test_load_model_rebuilds_from_config_and_never_unpickles_the_zip(tmp_path, mnist_root):
    import base64
    import os
    import pickle

    from agents.rl.experiment import load_model
    from memenv.errors import UnsafeFileError

    config = _tiny(tmp_path, mnist_root, algo="ppo", total_timesteps=48)
    train_rl(config)
    run = tmp_path / "run"
    marker = tmp_path / "PWNED"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = base64.b64encode(pickle.dumps(RunsCode())).decode()

    def poison_data(name, data):
        if name != "data":
            return data
        fields = json.loads(data)
        fields["policy_class"][":serialized:"] = payload
        return json.dumps(fields).encode()

    clean = load_model(run, trusted=True).policy.state_dict()
    _rewrite_zip(run / "model.zip", poison_data)
    model = load_model(run)  # weights only: the crafted entry is never read
    assert not marker.exists()
    assert clean.keys() == model.policy.state_dict().keys()
    assert all(torch.equal(clean[k], v) for k, v in model.policy.state_dict().items())
    with pytest.raises(TypeError):  # SB3's own loader runs the payload: hence "trusted"
        load_model(run, trusted=True)
    assert marker.exists()

    marker.unlink()
    evil_weights = tmp_path / "evil.pth"
    torch.save({"x": RunsCode()}, evil_weights)
    _rewrite_zip(
        run / "model.zip",
        lambda name, data: evil_weights.read_bytes() if name == "policy.pth" else data,
    )
    with pytest.raises(UnsafeFileError, match="model.zip: its weights hold posix.system"):
        load_model(run)
    assert not marker.exists()
