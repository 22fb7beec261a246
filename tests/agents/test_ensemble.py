"""Ensembles: K stacked networks == K ordinary networks."""

from __future__ import annotations

import pytest
import torch

from agents import EnsembleModel, build_model, evaluate_delays, load_model, train
from agents.frontend import ConvFrontend
from agents.loss import weighted_ce, weighted_ce_members
from agents.models import RecurrentModel


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_members_match_exported_single_models(cell):
    ensemble = EnsembleModel.build([3, 4, 5], cell=cell, hidden_size=10, dataset=None, obs_dim=7)
    per_member = torch.randn(3, 2, 6, 7)
    shared = torch.randn(2, 6, 7)
    logits_per, state_per = ensemble(per_member)
    logits_shared, _ = ensemble(shared)
    assert logits_per.shape == logits_shared.shape == (3, 2, 6, 11)
    for k in range(3):
        single = ensemble.member(k)
        assert isinstance(single, RecurrentModel)
        out, state = single(per_member[k])
        torch.testing.assert_close(logits_per[k], out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logits_shared[k], single(shared)[0], atol=1e-5, rtol=1e-5)
        h_ens = state_per[0][k] if cell == "lstm" else state_per[k]
        h_one = state[0] if cell == "lstm" else state
        torch.testing.assert_close(h_ens, h_one, atol=1e-5, rtol=1e-5)


def test_member_k_is_initialised_like_a_single_run_with_its_seed():
    ensemble = EnsembleModel.build([7, 8], cell="gru", hidden_size=6)
    torch.manual_seed(8)
    single = build_model("gru", hidden_size=6)
    for (name, a), b in zip(
        ensemble.member(1).state_dict().items(), single.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_cnn_members_match():
    def make(seed):
        torch.manual_seed(seed)
        frontend = ConvFrontend((1, 8, 8), channels=4, fc_sizes=(16,))
        return RecurrentModel("lstm", 65, 5, frontend=frontend)

    ensemble = EnsembleModel([make(0), make(1)])
    obs = torch.rand(2, 3, 4, 65)
    logits, _ = ensemble(obs)
    for k in range(2):
        torch.testing.assert_close(logits[k], ensemble.member(k)(obs[k])[0], atol=1e-5, rtol=1e-5)
    state = ensemble.transition(ensemble.initial_state(3), obs[:, :, 0])
    torch.testing.assert_close(
        ensemble.readout(state)[1], ensemble.member(1)(obs[1, :, :1])[0][:, 0], atol=1e-5, rtol=1e-5
    )


def test_summed_loss_gives_each_member_its_own_gradient(tiny_task):
    ensemble = EnsembleModel.build([0, 1], cell="gru", hidden_size=8)
    singles = ensemble.members()
    batch = tiny_task.sample(6, torch.Generator().manual_seed(0))
    obs = torch.stack([batch.obs, batch.obs.flip(0)])
    target = torch.stack([batch.target, batch.target.flip(0)])
    weight = torch.stack([batch.loss_weight, batch.loss_weight.flip(0)])
    logits, _ = ensemble(obs)
    weighted_ce_members(logits, target, weight, 10).sum().backward()
    for k, single in enumerate(singles):
        out, _ = single(obs[k])
        weighted_ce(out, target[k], weight[k], 10).backward()
        torch.testing.assert_close(
            ensemble.weight_hh.grad[k], single.rnn.weight_hh_l0.grad, atol=1e-6, rtol=1e-4
        )
        torch.testing.assert_close(
            ensemble.head_weight.grad[k], single.head.weight.grad, atol=1e-6, rtol=1e-4
        )


def test_trained_ensemble_member_evaluates_identically(tiny_config, tiny_task, tmp_path):
    train(tiny_config.replace(n_members=2, total_steps=8), tmp_path, progress=False)
    whole = load_model(tmp_path)
    assert isinstance(whole, EnsembleModel) and whole.n_members == 2
    loaded_member = load_model(tmp_path, member=1)
    assert isinstance(loaded_member, RecurrentModel)
    for a, b in zip(loaded_member.parameters(), whole.member(1).parameters(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():  # make the barely trained networks answer classes, not null
        whole.head_bias[:, 0] -= 100.0
        whole.head_weight.mul_(30.0)
    member = whole.member(1)
    kwargs = dict(delays=[4, 9, 30], n_trials=100, batch_size=50, seed=3)
    ens = evaluate_delays(whole, tiny_task, **kwargs)
    one = evaluate_delays(member, tiny_task, **kwargs)
    assert ens.n_members == 2 and one.n_members == 1
    assert 0 < one.correct.sum() < one.n_trials.sum()  # a non-trivial comparison
    assert (ens.correct[1] == one.correct[0]).all()
    assert (ens.class_correct[1] == one.class_correct[0]).all()
    assert (ens.class_trials == one.class_trials).all()
