"""Training: learning, resume equivalence, divergence handling, configs, curricula."""

from __future__ import annotations

import json

import pytest
import torch

from agents import NonFiniteLossError, TrainConfig, build_model, list_checkpoints, load_model
from agents.config import preset
from agents.loss import response_correct, weighted_ce
from agents.trainer import train


def test_tiny_model_overfits_a_fixed_batch(tiny_task):
    torch.manual_seed(0)
    model = build_model("gru", hidden_size=32)
    batch = tiny_task.sample(16, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    first = None
    for _ in range(60):
        logits, _ = model(batch.obs)
        loss = weighted_ce(logits, batch.target, batch.loss_weight, 10)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits, _ = model(batch.obs)
    assert float(weighted_ce(logits, batch.target, batch.loss_weight, 10)) < first / 20
    assert response_correct(logits, batch.t_resp, batch.label, 10).all()


def _metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"n_members": 2, "cell": "lstm", "curriculum": "decu", "curriculum_scale": 1e-4},
        {"model_family": "authors"},
        {"model_family": "authors", "n_members": 2, "curriculum": "decu", "curriculum_scale": 1e-4},
    ],
    ids=["single", "ensemble-lstm-decu", "authors-single", "authors-ensemble-decu"],
)
def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_config, tmp_path, changes):
    config = tiny_config.replace(**changes)
    whole = train(config, tmp_path / "whole", progress=False)
    assert whole.finished and whole.step == 12
    # "kill" after step 7: the last checkpoint is step 4, steps 5-7 are lost and redone
    killed = train(config, tmp_path / "resumed", progress=False, stop_at_step=7)
    assert not killed.finished
    assert not (tmp_path / "resumed" / "model.pt").exists()
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as stream:
        stream.write('{"step": 8, "loss": 0.')  # a line torn by the kill
    resumed = train(config, tmp_path / "resumed", progress=False)
    assert resumed.finished
    _assert_same_weights(whole.model, resumed.model)
    _assert_same_weights(load_model(tmp_path / "whole"), load_model(tmp_path / "resumed"))
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "resumed")
    steps = [s for s, _ in list_checkpoints(tmp_path / "resumed")]
    assert steps == [0, 4, 8, 12]
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["status"] == "done" and "mnist" in run["data_source"].lower()
    if "curriculum" in changes:
        t_max = [line["t_max"] for line in _metrics(tmp_path / "whole")]
        # decu at scale 1e-4: t_max 6 @0, 8 @2, 10 @3, ... 20 @8; lines log steps 1, 3, ...
        assert t_max == [6, 10, 14, 18, 20, 20]


def test_resume_refuses_a_different_config(tiny_config, tmp_path):
    train(tiny_config, tmp_path, progress=False, stop_at_step=4)
    with pytest.raises(ValueError, match="lr"):
        train(tiny_config.replace(lr=0.5), tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_config, tmp_path, progress=False, resume=False)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    torch.manual_seed(tiny_config.seed)
    model = build_model("gru", tiny_config.hidden_size)
    calls = {"n": 0}

    def poison(module, inputs, output):
        calls["n"] += 1
        if calls["n"] > 6:  # steps 0-5 are fine, step 6 diverges
            return output[0] * float("nan"), output[1]
        return output

    model.register_forward_hook(poison)
    with pytest.raises(NonFiniteLossError, match="step 6") as info:
        train(tiny_config, tmp_path, model=model, progress=False)
    assert "step_000004.pt" in str(info.value)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [0, 4]
    good = load_model(tmp_path)
    assert all(torch.isfinite(p).all() for p in good.parameters())
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_size", 0),
        ("cell", "transformer"),
        ("lr", -1.0),
        ("batch_size", 2.5),
        ("dataset", "imagenet"),
        ("lr_decay_factor", 2.0),
        ("n_members", True),
        ("device", "tpu"),
        ("min_delay", 20),
        ("model_family", "keras"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_presets_follow_the_paper():
    mnist = preset("paper")
    assert (mnist.hidden_size, mnist.lr, mnist.batch_size) == (200, 1e-5, 128)
    assert (mnist.total_steps, mnist.lr_decay_step, mnist.lr_decay_factor) == (
        140_000,
        120_000,
        0.1,
    )
    assert mnist.model_family == "authors"  # the authors' own networks and loss
    cifar = preset("paper", "cifar10", cell="lstm")
    assert cifar.model_family == "torch"  # the authors family has no CNN front-end
    assert (cifar.hidden_size, cifar.lr, cifar.batch_size) == (512, 1e-4, 64)
    assert (cifar.total_steps, cifar.lr_decay_step, cifar.cell) == (300_000, 280_000, "lstm")
    assert cifar.lr_at(279_999) == 1e-4 and cifar.lr_at(280_000) == pytest.approx(1e-5)
    fast = preset("fast")
    assert 128 <= fast.hidden_size <= 200 and fast.total_steps <= 3_000
    assert fast.model_family == "torch"
    with pytest.raises(ValueError, match="preset"):
        preset("slow")
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        preset("fast", hidden=3)


def test_unknown_curriculum_names_the_field(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="curriculum"):
        train(tiny_config.replace(curriculum="bogus"), tmp_path, progress=False)


class _StepUpSchedule:
    """A duck-typed adaptive schedule: one more class each time a batch is >= 0% correct
    and this member has seen an odd number of reports (so members can diverge)."""

    is_adaptive = True

    def __init__(self):
        self.n_classes = 2
        self.reports = []

    def at(self, step):
        return {"n_classes": self.n_classes}

    def observe(self, step, n_correct, n_total):
        self.reports.append((step, n_correct, n_total))
        if len(self.reports) % 2 == 1:
            self.n_classes = min(10, self.n_classes + 1)

    def state_dict(self):
        return {"n_classes": self.n_classes, "reports": list(self.reports)}

    def load_state_dict(self, state):
        self.n_classes = state["n_classes"]
        self.reports = [tuple(r) for r in state["reports"]]


def test_adaptive_schedule_gets_feedback_and_resumes(tiny_config, tmp_path):
    config = tiny_config.replace(n_members=2)
    whole = train(config, tmp_path / "a", schedule=_StepUpSchedule(), progress=False)
    metrics = _metrics(tmp_path / "a")
    assert metrics[0]["n_classes"] == [3, 3]  # steps 0, 1: 2 then 3 classes
    assert metrics[-1]["n_classes"] == [8, 8]
    train(config, tmp_path / "b", schedule=_StepUpSchedule(), progress=False, stop_at_step=5)
    resumed = train(config, tmp_path / "b", schedule=_StepUpSchedule(), progress=False)
    _assert_same_weights(whole.model, resumed.model)


class _UserAgent(torch.nn.Module):
    """A user model following the RecurrentAgent protocol (an Elman cell written by hand)."""

    def __init__(self, obs_dim=785, n=6):
        super().__init__()
        self.inp = torch.nn.Linear(obs_dim, n)
        self.rec = torch.nn.Linear(n, n, bias=False)
        self.out = torch.nn.Linear(n, 11)
        self.n = n

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, self.n)

    def transition(self, state, x):
        return torch.tanh(self.inp(x) + self.rec(state))

    def readout(self, state):
        return self.out(state)

    def forward(self, obs, state=None):
        state = self.initial_state(obs.shape[0]) if state is None else state
        logits = []
        for t in range(obs.shape[1]):
            state = self.transition(state, obs[:, t])
            logits.append(self.readout(state))
        return torch.stack(logits, 1), state


def test_user_model_trains_through_the_same_loop(tiny_config, tmp_path):
    model = _UserAgent()
    before = [p.detach().clone() for p in model.parameters()]
    result = train(tiny_config, tmp_path, model=model, progress=False)
    assert result.finished and result.model is model
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="user-defined"):
        load_model(tmp_path)
    from agents import load_state

    fresh = _UserAgent()
    assert load_state(tmp_path, fresh) == 12
    _assert_same_weights(fresh, model)
