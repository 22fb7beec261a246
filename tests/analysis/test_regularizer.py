"""The speed penalty: its value, its gradient, its use in training, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.config import TrainConfig
from agents.models import build_model
from agents.trainer import train
from analysis.regularizer import Anchors, SpeedPenalty, anchor_speeds, check_lam, compute_anchors
from memenv import DelayedRecallTask, TaskConfig


@pytest.fixture
def task(mnist_root) -> DelayedRecallTask:
    return DelayedRecallTask(TaskConfig(), root=mnist_root)


def _model(cell: str, hidden: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cell=cell, hidden_size=hidden)


def _anchors(n_state: int, k: int = 3, seed: int = 0, mode: str = "center") -> Anchors:
    states = np.random.default_rng(seed).uniform(-0.5, 0.5, (k, n_state))
    return Anchors(states, np.arange(k), mode, np.zeros(k))


def _direct_speed_sum(model, anchors: Anchors, noise_bxd: torch.Tensor, n_noise: int, lstm: bool):
    """S written out one anchor and one noise frame at a time, straight from the paper."""
    hidden = model.hidden_size
    total = torch.zeros((), dtype=torch.float64)
    for k, state in enumerate(anchors.states):
        for j in range(n_noise):
            x = noise_bxd[k * n_noise + j][None]
            s = torch.as_tensor(state, dtype=torch.float32)[None]
            if lstm:
                h, c = s[:, :hidden], s[:, hidden:]
                h2, c2 = model.transition((h, c), x)
                term = (h2 - h).square().sum() + (torch.tanh(c2) - torch.tanh(c)).square().sum()
            else:
                term = (model.transition(s, x) - s).square().sum()
            total = total + term.double()
    return total.detach()


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_penalty_value_matches_a_direct_computation(cell, task):
    model = _model(cell)
    n_state = model.hidden_size * (2 if cell == "lstm" else 1)
    anchors = _anchors(n_state)
    penalty = SpeedPenalty(anchors, task, lam=0.5, n_noise=4, seed=3)
    noise = penalty.noise(torch.device("cpu"))
    assert noise.shape == (3 * 4, task.obs_dim)
    assert torch.all(noise[:, -1] == 0)  # trigger off
    assert noise[:, :-1].std() > 0.5 * task.images.pixel_std  # full-strength noise
    value = penalty.speed_sum(model, noise).detach()
    direct = _direct_speed_sum(model, anchors, noise, 4, cell == "lstm")
    assert float(value) == pytest.approx(float(direct), rel=1e-5)
    # the training term is lam * S on the authors' loss scale: the torch family's loss is 11x
    # theirs, so its term is 11 * lam * S; the same noise stream from the same seed
    term, logged = SpeedPenalty(anchors, task, lam=0.5, n_noise=4, seed=3)(model, 0)
    assert float(term.detach()) == pytest.approx(11 * 0.5 * float(direct), rel=1e-5)
    assert float(logged) == pytest.approx(float(direct), rel=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_lambda_means_the_papers_for_both_families(cell, task):
    """The penalty's share of the loss is the same for both families: lam * S next to the
    authors' loss, i.e. 11 * lam * S next to the torch family's 11-times-larger loss."""
    from agents.authors import AuthorsModel
    from agents.loss import authors_loss, weighted_ce
    from analysis.regularizer import loss_scale

    torch.manual_seed(0)
    authors = AuthorsModel(cell, task.obs_dim, 5)
    torch_model = _model(cell)
    assert loss_scale(authors) == 1.0 and loss_scale(torch_model) == 11.0
    n_state = 5 * (2 if cell == "lstm" else 1)
    anchors = _anchors(n_state)
    term, logged = SpeedPenalty(anchors, task, lam=0.5, n_noise=4, seed=3)(authors, 0)
    assert float(term.detach()) == pytest.approx(0.5 * float(logged), rel=1e-12)
    # the scales themselves: on the same outputs, the torch loss is ~11x the authors' (exactly
    # 11x without the authors' 1e-4 inside the log and their -1000 mask)
    batch = task.sample(8, torch.Generator().manual_seed(1))
    with torch.no_grad():
        outputs, _ = authors(batch.obs)
    probs = torch.softmax(outputs, dim=-1)
    ratio = weighted_ce(torch.log(probs), batch.target, batch.loss_weight, 10) / authors_loss(
        outputs, batch.target, batch.loss_weight, 10
    )
    assert float(ratio) == pytest.approx(11.0, rel=2e-3)


def test_anchors_without_a_correct_trial_are_left_out(task):
    model = _model("gru")
    anchors = _anchors(model.hidden_size, k=3)
    anchors.states[1] = np.nan
    penalty = SpeedPenalty(anchors, task, lam=1.0, n_noise=2)
    noise = penalty.noise(torch.device("cpu"))
    assert noise.shape[0] == 2 * 2
    kept = Anchors(anchors.states[[0, 2]], [0, 2], "center", [0.0, 0.0])
    direct = _direct_speed_sum(model, kept, noise, 2, lstm=False)
    value = penalty.speed_sum(model, noise).detach()
    assert float(value) == pytest.approx(float(direct), rel=1e-5)
    with pytest.raises(ValueError, match="no valid anchor"):
        SpeedPenalty(Anchors(np.full((2, 5), np.nan), [0, 1], "center", [0, 0]), task, 1.0)


def test_gradient_reaches_the_recurrent_weights(task):
    model = _model("gru")
    penalty = SpeedPenalty(_anchors(model.hidden_size), task, lam=1.0)
    term, _ = penalty(model, 0)
    term.backward()
    recurrent = [p for n, p in model.named_parameters() if "hh" in n and "weight" in n]
    assert recurrent, [n for n, _ in model.named_parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in recurrent)


def _config(mnist_root, **changes) -> TrainConfig:
    values = dict(
        data_root=str(mnist_root), hidden_size=6, batch_size=8, total_steps=20, lr=1e-2,
        lr_decay_step=None, checkpoint_every=5, log_every=5, device="cpu",
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


def test_a_short_penalised_training_lowers_the_speed_at_the_anchors(tmp_path, mnist_root, task):
    config = _config(mnist_root)
    torch.manual_seed(config.seed)
    model = build_model(cell="gru", hidden_size=6)
    anchors = _anchors(6, k=4)
    before = anchor_speeds(model, anchors, task)
    penalty = SpeedPenalty(anchors, task, lam=1.0, n_noise=4)
    result = train(
        config, tmp_path / "run", model=model, task=task, penalty=penalty, progress=False
    )
    after = anchor_speeds(result.model, anchors, task)
    assert after.mean() < 0.5 * before.mean()
    logged = [line["penalty"] for line in _lines(tmp_path / "run")]
    assert logged[-1] < logged[0]


def _lines(run_dir):
    import json

    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lambda_zero_gives_exactly_the_unpenalised_weights(tmp_path, mnist_root, task):
    config = _config(mnist_root, total_steps=8)
    runs = {}
    for name, penalty in [
        ("plain", None),
        ("control", SpeedPenalty(_anchors(6, mode="control"), task, lam=0.0)),
        ("center0", SpeedPenalty(_anchors(6, seed=1), task, lam=0.0, seed=9)),
        ("center", SpeedPenalty(_anchors(6), task, lam=1.0)),
    ]:
        torch.manual_seed(config.seed)
        model = build_model(cell="gru", hidden_size=6)
        result = train(
            config, tmp_path / name, model=model, task=task, penalty=penalty, progress=False
        )
        runs[name] = _weights(result.model)
    for name in ("control", "center0"):
        assert all(torch.equal(runs["plain"][k], runs[name][k]) for k in runs["plain"])
    assert not all(torch.equal(runs["plain"][k], runs["center"][k]) for k in runs["plain"])


def test_a_killed_penalised_run_resumes_to_the_same_weights(tmp_path, mnist_root, task):
    config = _config(mnist_root, total_steps=10)

    def run(run_dir, stop=None):
        torch.manual_seed(config.seed)
        model = build_model(cell="lstm", hidden_size=6)
        penalty = SpeedPenalty(_anchors(12), task, lam=0.3, n_noise=3, seed=5)
        return train(
            config, run_dir, model=model, task=task, penalty=penalty, progress=False,
            stop_at_step=stop,
        )  # fmt: skip

    whole = _weights(run(tmp_path / "whole").model)
    run(tmp_path / "killed", stop=5)
    resumed = _weights(run(tmp_path / "killed").model)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)

    def logged(run_dir):
        return [(line["step"], line["loss"], line["penalty"]) for line in _lines(run_dir)]

    assert logged(tmp_path / "whole") == logged(tmp_path / "killed")


def test_a_resume_with_another_penalty_is_refused(tmp_path, mnist_root, task):
    config = _config(mnist_root, total_steps=6)
    penalty = SpeedPenalty(_anchors(6), task, lam=0.3)
    train(config, tmp_path / "r", task=task, penalty=penalty, progress=False, stop_at_step=5)
    other = SpeedPenalty(_anchors(6), task, lam=0.4)
    with pytest.raises(ValueError, match="penalty"):
        train(config, tmp_path / "r", task=task, penalty=other, progress=False)
    with pytest.raises(ValueError, match="penalty"):
        train(config, tmp_path / "r", task=task, progress=False)


def test_recomputed_anchors_are_recorded(tmp_path, mnist_root, task):
    config = _config(mnist_root, total_steps=9)
    torch.manual_seed(0)
    model = build_model(cell="gru", hidden_size=6)
    anchors = compute_anchors(model, task, "center", n_per_class=3, all_trials_fallback=True)
    assert anchors.valid.all()  # every class anchored, correct or not
    penalty = SpeedPenalty(
        anchors, task, lam=0.1, recompute_every=4, n_per_class=3, all_trials_fallback=True
    )
    train(config, tmp_path / "r", model=model, task=task, penalty=penalty, progress=False)
    assert [h["step"] for h in penalty.history] == [4, 8]
    assert penalty.anchors.step == 8


def test_slow_anchors_are_slower_than_the_centres(task):
    model = _model("gru", hidden=6)
    centers = compute_anchors(model, task, "center", n_per_class=3, all_trials_fallback=True)
    slow = compute_anchors(model, task, "slow", n_per_class=3, all_trials_fallback=True)
    assert slow.mode == "slow"
    assert np.all(slow.speeds <= centers.speeds + 1e-12)
    assert slow.speeds.max() < 1e-8  # a tiny random GRU has a fixed point the search reaches


def test_anchors_save_and_load(tmp_path):
    anchors = _anchors(4, mode="slow")
    anchors.save(tmp_path / "a.npz")
    back = Anchors.load(tmp_path / "a.npz")
    assert back.mode == "slow" and back.step == 0
    np.testing.assert_array_equal(back.states, anchors.states)
    with pytest.raises(ValueError, match="classes"):
        Anchors(np.zeros((2, 3)), [0, 1, 2], "center", [0, 0])


@pytest.mark.parametrize("lam", [-1e-3, float("nan"), float("inf"), "0.1", True])
def test_a_bad_weight_raises_naming_it(lam, task):
    with pytest.raises(ValueError, match=r"lam must be .*" + repr(lam)[:3]):
        SpeedPenalty(_anchors(5), task, lam)


def test_control_means_lambda_zero(task):
    with pytest.raises(ValueError, match="'control' means lam = 0"):
        SpeedPenalty(_anchors(5, mode="control"), task, 0.1)
    assert check_lam(0, "control") == 0.0


@pytest.mark.parametrize("mode", ["fast", "centre", None])
def test_a_bad_mode_raises_naming_it(mode, task):
    with pytest.raises(ValueError, match=f"mode must be one of .* got {mode!r}"):
        compute_anchors(_model("gru"), task, mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        Anchors(np.zeros((1, 5)), [0], mode, [0.0])


def test_bad_penalty_settings_raise(task):
    with pytest.raises(ValueError, match="n_noise .* got 0"):
        SpeedPenalty(_anchors(5), task, 0.1, n_noise=0)
    with pytest.raises(ValueError, match="recompute_every .* got -2"):
        SpeedPenalty(_anchors(5), task, 0.1, recompute_every=-2)
