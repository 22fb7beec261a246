"""Model family ``authors``: the authors' TensorFlow networks and loss, transcribed to numpy here
from TriggerMNISTCloud.py (GRURNN, LSTMRNN, the weights/biases dicts, the loss line) and checked
against agents.authors / agents.loss, and their training, ensembles and checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents import load_model, train
from agents.authors import GATE_ORDER, AuthorsEnsemble, AuthorsModel, build_authors_model
from agents.batches import BatchSource
from agents.config import TrainConfig, preset
from agents.ensemble import EnsembleModel, build_ensemble
from agents.loss import (
    LOSS_SCALE_VS_AUTHORS,
    authors_loss,
    authors_loss_members,
    member_loss,
    model_family,
    response_correct,
    weighted_ce,
    weighted_ce_members,
)
from agents.models import RecurrentModel, build_family_model, build_model, model_from_spec
from agents.protocol import state_tensor
from agents.trainer import initial_model, trial_seed
from memenv import TaskConfig


# ----------------------------------------------------------------- numpy transcription
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _tf_weights(model: AuthorsModel) -> dict[str, np.ndarray]:
    """The authors' ``weights`` / ``biases`` dicts (``Wz [D, N]``, ``Uz [N, N]``, ``bz [N]``,
    ..., ``out_weights [N, 11]``, ``out_biases [11]``) of ``model``."""
    n = model.hidden_size
    blocks = {}
    for i, gate in enumerate(GATE_ORDER[model.cell]):
        cols = slice(i * n, (i + 1) * n)
        blocks["W" + gate] = model.weight_x.detach()[:, cols].double().numpy()
        blocks["U" + gate] = model.weight_h.detach()[:, cols].double().numpy()
        blocks["b" + gate] = model.bias.detach()[cols].double().numpy()
    blocks["out_weights"] = model.readout_weight.detach().double().numpy()
    blocks["out_biases"] = model.readout_bias.detach().double().numpy()
    return blocks


def _tf_gru_step(w, xt, ht, first):
    """One step of GRURNN (``first``: its ``j == 0`` branch, no recurrent terms)."""
    if first:
        zt = _sigmoid(xt @ w["Wz"] + w["bz"])
        return zt * np.tanh(xt @ w["Wh"] + w["bh"])
    zt = _sigmoid(xt @ w["Wz"] + ht @ w["Uz"] + w["bz"])
    rt = _sigmoid(xt @ w["Wr"] + ht @ w["Ur"] + w["br"])
    return (1 - zt) * ht + zt * np.tanh(xt @ w["Wh"] + (rt * ht) @ w["Uh"] + w["bh"])


def _tf_lstm_step(w, xt, state, first):
    """One step of LSTMRNN, state ``(ht, ct)``."""
    if first:
        ft = _sigmoid(xt @ w["Wf"] + w["bf"])  # unused at c = 0, as in their code
        it = _sigmoid(xt @ w["Wi"] + w["bi"])
        ot = _sigmoid(xt @ w["Wo"] + w["bo"])
        ct = it * np.tanh(xt @ w["Wc"] + w["bc"])
        return ot * np.tanh(ct), ct
    ht, ct = state
    ft = _sigmoid(xt @ w["Wf"] + ht @ w["Uf"] + w["bf"])
    it = _sigmoid(xt @ w["Wi"] + ht @ w["Ui"] + w["bi"])
    ot = _sigmoid(xt @ w["Wo"] + ht @ w["Uo"] + w["bo"])
    ct = ft * ct + it * np.tanh(xt @ w["Wc"] + ht @ w["Uc"] + w["bc"])
    return ot * np.tanh(ct), ct


def _tf_network(w, cell, x_btd):
    """The whole GRURNN / LSTMRNN: outputs ``sigmoid(h out_weights + out_biases)``, ``[B, 11, T]``
    (their axis order)."""
    step = _tf_gru_step if cell == "gru" else _tf_lstm_step
    state = None
    outputs = []
    for j in range(x_btd.shape[1]):
        state = step(w, x_btd[:, j], state, first=j == 0)
        ht = state if cell == "gru" else state[0]
        outputs.append(_sigmoid(ht @ w["out_weights"] + w["out_biases"]))
    return np.stack(outputs, axis=2)


def _tf_loss(output_b11t, t_resp, label, t_max_now, n_classes, t_max_global=20, alpha=1.0):
    """Their loss on a batch laid out as generate_batch does (``MaxClasses = n_classes + 1``)."""
    b, o, t = output_b11t.shape
    max_classes = n_classes + 1
    ones_mat = -1000 * np.ones((b, o, t))
    ones_mat[:, :max_classes, :] = 1
    y = np.zeros((b, o, t))
    y[:, 0, :t_max_now] = 1
    z = np.zeros((b, o, t))
    for i in range(b):
        true_label = np.zeros(o)
        true_label[label[i] + 1] = 1
        z[i, :max_classes, t_resp[i]] = 1
        y[i, :, t_resp[i]] = true_label
        y[i, :, t_max_now:] = 0
    logits = output_b11t * ones_mat
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prediction = e / e.sum(axis=1, keepdims=True)
    log_p = np.log(prediction + 1e-4)
    return -np.mean((t_max_global - 1) * z * y * log_p + alpha * y * log_p)


def _double(model):
    return model.double().eval()


# --------------------------------------------------------------------------- the step
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@torch.no_grad()
def test_one_step_equals_the_tf_equations(cell):
    torch.manual_seed(0)
    model = _double(AuthorsModel(cell, 13, 9))
    w = _tf_weights(model)
    x = torch.randn(5, 13, dtype=torch.float64)
    state = model.initial_state(5)
    # from h = c = 0: their j == 0 branch
    stepped = model.transition(state, x)
    expected = _tf_gru_step(w, x.numpy(), None, first=True) if cell == "gru" else None
    if cell == "lstm":
        expected = np.concatenate(_tf_lstm_step(w, x.numpy(), None, first=True), axis=1)
    np.testing.assert_allclose(state_tensor(stepped).numpy(), expected, rtol=0, atol=1e-12)
    # from a non-zero state (large enough to saturate some gates)
    h = 1.5 * torch.randn(5, 9, dtype=torch.float64)
    if cell == "gru":
        stepped = model.transition(h, x)
        expected = _tf_gru_step(w, x.numpy(), h.numpy(), first=False)
    else:
        c = 2.0 * torch.randn(5, 9, dtype=torch.float64)
        stepped = model.transition((h, c), x)
        expected = np.concatenate(
            _tf_lstm_step(w, x.numpy(), (h.numpy(), c.numpy()), first=False), axis=1
        )
    np.testing.assert_allclose(state_tensor(stepped).numpy(), expected, rtol=0, atol=1e-12)
    readout = model.readout(stepped).numpy()
    h_next = expected[:, :9]
    np.testing.assert_allclose(
        readout, _sigmoid(h_next @ w["out_weights"] + w["out_biases"]), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@torch.no_grad()
def test_ensemble_members_step_like_the_tf_equations(cell):
    ensemble = _double(
        AuthorsEnsemble.build([4, 5, 6], cell=cell, hidden_size=7, dataset=None, obs_dim=10)
    )
    x_per = torch.randn(3, 4, 10, dtype=torch.float64)
    x_shared = torch.randn(4, 10, dtype=torch.float64)
    h = torch.randn(3, 4, 7, dtype=torch.float64)
    c = torch.randn(3, 4, 7, dtype=torch.float64)
    state = h if cell == "gru" else (h, c)
    for x in (x_per, x_shared):
        stepped = ensemble.transition(state, x)
        outputs = ensemble.readout(stepped).numpy()
        for k in range(3):
            w = _tf_weights(ensemble.member(k))
            xk = (x[k] if x.dim() == 3 else x).numpy()
            if cell == "gru":
                want_h = _tf_gru_step(w, xk, h[k].numpy(), first=False)
                got_h = stepped[k].numpy()
            else:
                want_h, want_c = _tf_lstm_step(w, xk, (h[k].numpy(), c[k].numpy()), first=False)
                got_h = stepped[0][k].numpy()
                np.testing.assert_allclose(stepped[1][k].numpy(), want_c, rtol=0, atol=1e-12)
            np.testing.assert_allclose(got_h, want_h, rtol=0, atol=1e-12)
            np.testing.assert_allclose(
                outputs[k], _sigmoid(want_h @ w["out_weights"] + w["out_biases"]), atol=1e-12
            )


def _step_by_step(model, obs, state):
    outputs = []
    for t in range(obs.shape[-2]):
        state = model.transition(state, obs[..., t, :])
        outputs.append(model.readout(state))
    return torch.stack(outputs, dim=-2), state


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_forward_equals_repeated_transition_and_readout(cell):
    torch.manual_seed(1)
    single = _double(AuthorsModel(cell, 11, 6))
    ensemble = _double(AuthorsEnsemble.build([0, 1], cell=cell, hidden_size=6, obs_dim=11,
                                             dataset=None))  # fmt: skip
    cases = [
        (single, torch.randn(3, 5, 11, dtype=torch.float64)),
        (ensemble, torch.randn(2, 3, 5, 11, dtype=torch.float64)),  # per member
        (ensemble, torch.randn(3, 5, 11, dtype=torch.float64)),  # shared
    ]
    for model, obs in cases:
        for start in (None, "warm"):
            state = model.initial_state(3)
            if start == "warm":  # continue from a non-zero state
                _, state = model(obs)
            outputs, last = model(obs, None if start is None else state)
            stepped, stepped_last = _step_by_step(model, obs, state)
            torch.testing.assert_close(outputs, stepped, rtol=0, atol=1e-13)
            torch.testing.assert_close(state_tensor(last), state_tensor(stepped_last), rtol=0,
                                       atol=1e-13)  # fmt: skip
            assert outputs.min() >= 0 and outputs.max() <= 1


def test_whole_network_and_loss_equal_the_tf_code(tiny_task):
    """Outputs of a whole trial and the loss, with n_classes = 4 and t_max = 14 < T = 20 (so the
    -1000 mask and the zero-weight steps matter), against the transcription of their code."""
    task = tiny_task.with_config(TaskConfig(t_max=14, n_classes=4))
    batch = task.sample(6, torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    for cell in ("gru", "lstm"):
        model = _double(build_authors_model(cell, hidden_size=10))
        outputs, _ = model(batch.obs.double())
        want_b11t = _tf_network(_tf_weights(model), cell, batch.obs.double().numpy())
        np.testing.assert_allclose(
            outputs.detach().numpy(), want_b11t.transpose(0, 2, 1), rtol=0, atol=1e-12
        )
        loss = authors_loss(outputs, batch.target, batch.loss_weight.double(), 4).detach()
        want = _tf_loss(want_b11t, batch.t_resp.numpy(), batch.label.numpy(), 14, 4)
        assert float(loss) == pytest.approx(want, rel=1e-12)
        # the mask matters: the same outputs with all classes active give another loss
        everything = authors_loss(outputs, batch.target, batch.loss_weight.double(), 10).detach()
        assert abs(float(everything) - want) > 1e-3
        assert float(everything) == pytest.approx(
            _tf_loss(want_b11t, batch.t_resp.numpy(), batch.label.numpy(), 14, 10), rel=1e-12
        )


def test_loss_of_members_and_per_member_vocabulary():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(2, 3, 7, 11, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 7), generator=g)
    weight = torch.rand(2, 3, 7, generator=g, dtype=torch.float64)
    per = authors_loss_members(s, target, weight, torch.tensor([3, 10]))
    torch.testing.assert_close(per[0], authors_loss(s[0], target[0], weight[0], 3))
    torch.testing.assert_close(per[1], authors_loss(s[1], target[1], weight[1], 10))
    # by hand, one term: softmax over M * s, M = 1 on outputs 0..3, -1000 on 4..10
    m = torch.where(torch.arange(11) <= 3, 1.0, -1000.0).double()
    p = torch.softmax(m * s[0], dim=-1).gather(-1, target[0, ..., None])[..., 0]
    expected = (weight[0] * -torch.log(p + 1e-4)).sum() / (3 * 7 * 11)
    torch.testing.assert_close(per[0], expected, rtol=1e-14, atol=0)


def test_family_dispatch_and_loss_scale():
    torch.manual_seed(0)
    assert model_family(object()) == "torch"
    assert model_family(build_model("gru", 4)) == "torch"
    assert model_family(EnsembleModel.build([0], cell="gru", hidden_size=4)) == "torch"
    assert model_family(AuthorsModel("gru", 5, 4)) == "authors"
    assert model_family(AuthorsEnsemble.build([0], cell="lstm", hidden_size=4)) == "authors"
    assert member_loss("torch") is weighted_ce_members
    assert member_loss("authors") is authors_loss_members
    assert LOSS_SCALE_VS_AUTHORS == {"torch": 11.0, "authors": 1.0}
    with pytest.raises(ValueError, match="'tf'"):
        member_loss("tf")

    class Odd(torch.nn.Module):
        family = "keras"

    with pytest.raises(ValueError, match="keras"):
        model_family(Odd())


# -------------------------------------------------------------------- initialisation
def test_initialisation_statistics_are_the_authors():
    torch.manual_seed(0)
    state = np.random.get_state()  # noqa: NPY002 (checks that the global numpy RNG is unused)
    for cell in ("gru", "lstm"):
        model = build_authors_model(cell, hidden_size=200)  # MNIST: D = 785
        w = _tf_weights(model)
        for gate in GATE_ORDER[cell]:
            for name, fan_in in (("W" + gate, 785), ("U" + gate, 200)):
                values = w[name]
                assert abs(values.mean()) < 5 / np.sqrt(values.size) / np.sqrt(fan_in), name
                assert values.std() * np.sqrt(fan_in) == pytest.approx(1.0, abs=0.02), name
        biases = np.concatenate([w["b" + gate] for gate in GATE_ORDER[cell]])
        assert abs(biases.mean()) < 5 * 0.01 / np.sqrt(biases.size)
        assert biases.std() == pytest.approx(0.01, rel=0.15)
        out = w["out_weights"]
        assert abs(out.mean()) < 5 / np.sqrt(out.size * 200)
        assert out.std() * np.sqrt(200) == pytest.approx(1.0, abs=0.08)
        assert 0.002 < w["out_biases"].std() < 0.02 and np.abs(w["out_biases"]).max() < 0.05
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3], strict=True))


def test_seeding_comes_from_torch_and_members_match_their_seed():
    torch.manual_seed(8)
    single = build_authors_model("lstm", hidden_size=6)
    torch.manual_seed(8)
    again = build_authors_model("lstm", hidden_size=6)
    ensemble = AuthorsEnsemble.build([7, 8], cell="lstm", hidden_size=6)
    for name, p in single.named_parameters():
        assert torch.equal(p, again.get_parameter(name))
        assert torch.equal(p, ensemble.member(1).get_parameter(name)), name
        assert not torch.equal(p, ensemble.member(0).get_parameter(name)), name


def test_builders_refuse_what_the_authors_family_lacks():
    with pytest.raises(ValueError, match="cifar10"):
        build_authors_model("gru", dataset="cifar10")
    with pytest.raises(ValueError, match="'rnn'"):
        build_authors_model("rnn")
    with pytest.raises(ValueError, match="front-end"):
        build_authors_model("gru", frontend="cnn")
    with pytest.raises(ValueError, match="cifar10"):
        TrainConfig(model_family="authors", dataset="cifar10")
    with pytest.raises(ValueError, match="TrainConfig.cell"):
        TrainConfig(model_family="authors", cell="rnn")
    with pytest.raises(ValueError, match="model_family"):
        TrainConfig(model_family="tf")
    with pytest.raises(ValueError, match="member 1"):
        AuthorsEnsemble([AuthorsModel("gru", 5, 3), AuthorsModel("gru", 5, 4)])
    ensemble = AuthorsEnsemble.build([0, 1], cell="gru", hidden_size=3, obs_dim=5, dataset=None)
    with pytest.raises(ValueError, match="member 2"):
        ensemble.member(2)
    with pytest.raises(ValueError, match="obs must be"):
        ensemble(torch.zeros(3, 2, 4, 5))


def test_presets_and_initial_models_choose_the_family():
    assert preset("paper").model_family == "authors"
    assert preset("paper", "fashion-mnist").model_family == "authors"
    assert preset("paper", "cifar10").model_family == "torch"
    assert preset("fast").model_family == "torch"
    assert preset("paper", model_family="torch", cell="rnn").cell == "rnn"
    assert TrainConfig.from_dict({"cell": "lstm"}).model_family == "torch"  # an old config.json
    config = preset("fast", hidden_size=4, model_family="authors")
    assert isinstance(initial_model(config), AuthorsModel)
    ensemble = initial_model(config.replace(n_members=2))
    assert isinstance(ensemble, AuthorsEnsemble) and ensemble.n_members == 2
    assert isinstance(initial_model(config.replace(model_family="torch")), RecurrentModel)
    assert isinstance(build_family_model("authors", cell="gru", hidden_size=3), AuthorsModel)
    assert isinstance(build_ensemble("torch", [0], cell="gru", hidden_size=3), EnsembleModel)


# ------------------------------------------------------------------------- training
def _authors_config(tiny_config, **changes):
    values = dict(model_family="authors", lr=3e-2, total_steps=24, lr_decay_step=None,
                  log_every=4, checkpoint_every=8)  # fmt: skip
    return tiny_config.replace(**{**values, **changes})


@pytest.mark.parametrize("n_members", [1, 2])
def test_authors_model_learns_through_train(tiny_config, tmp_path, n_members):
    config = _authors_config(tiny_config, n_members=n_members)
    result = train(config, tmp_path, progress=False)
    assert result.finished
    assert isinstance(result.model, AuthorsModel if n_members == 1 else AuthorsEnsemble)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first, last = np.array(lines[0]["loss"]), np.array(lines[-1]["loss"])
    # about 0.40 -> 0.37: towards 0.364, the loss of answering null at every step (the
    # plateau before classes are learnt; the floor, p = e / (e + 10) everywhere, is 0.273)
    assert (last < first - 0.02).all(), (first, last)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model_family"] == "authors" and run["model_spec"]["family"] == "authors"


def test_trainer_minimises_the_authors_loss(tiny_config, tiny_task, tmp_path):
    """The logged loss of step 0 is the authors' loss of the initial model on batch 0."""
    config = _authors_config(tiny_config, total_steps=1, log_every=1, checkpoint_every=1)
    model = initial_model(config)
    batch = BatchSource(tiny_task, 1, config.batch_size, torch.device("cpu")).draw(
        [{}], torch.Generator().manual_seed(trial_seed(config.seed))
    )
    with torch.no_grad():
        outputs, _ = model(batch.obs)
    want = authors_loss(outputs, batch.target[0], batch.loss_weight[0], batch.n_classes)
    other = weighted_ce(outputs, batch.target[0], batch.loss_weight[0], batch.n_classes)
    train(config, tmp_path, progress=False)
    logged = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    assert logged == pytest.approx(float(want), rel=1e-6)
    assert abs(logged - float(other)) > 1e-2


def test_ensemble_member_trains_exactly_as_alone(tiny_task):
    """Adam on the summed member losses == each member trained alone on its own batches
    (float64, so that summation order leaves no trace)."""
    ensemble = _double(AuthorsEnsemble.build([0, 1], cell="gru", hidden_size=8))
    singles = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        singles.append(_double(build_authors_model("gru", hidden_size=8)))
    initial = [{n: p.detach().clone() for n, p in m.named_parameters()} for m in singles]
    opt_ens = torch.optim.Adam(ensemble.parameters(), lr=1e-2)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in singles]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        batches = [tiny_task.sample(6, g) for _ in range(2)]
        obs = torch.stack([b.obs for b in batches]).double()
        target = torch.stack([b.target for b in batches])
        weight = torch.stack([b.loss_weight for b in batches]).double()
        outputs, _ = ensemble(obs)
        opt_ens.zero_grad()
        authors_loss_members(outputs, target, weight, 10).sum().backward()
        opt_ens.step()
        for k, (model, opt) in enumerate(zip(singles, opts, strict=True)):
            opt.zero_grad()
            authors_loss(model(obs[k])[0], target[k], weight[k], 10).backward()
            opt.step()
    for k, model in enumerate(singles):
        exported = ensemble.member(k)
        for name, p in model.named_parameters():
            assert not torch.equal(p, initial[k][name]), name  # trained
            torch.testing.assert_close(exported.get_parameter(name), p, atol=1e-10, rtol=0)


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_member_export(tiny_config, tiny_task, tmp_path):
    single = train(_authors_config(tiny_config, total_steps=8), tmp_path / "one", progress=False)
    loaded = load_model(tmp_path / "one")
    assert isinstance(loaded, AuthorsModel) and loaded.cell == "gru"
    obs = tiny_task.sample(4, torch.Generator().manual_seed(0)).obs
    with torch.no_grad():
        assert torch.equal(loaded(obs)[0], single.model.eval()(obs)[0])

    config = _authors_config(tiny_config, total_steps=8, n_members=2, cell="lstm")
    trained = train(config, tmp_path / "two", progress=False).model
    whole = load_model(tmp_path / "two")
    assert isinstance(whole, AuthorsEnsemble) and whole.n_members == 2 and whole.cell == "lstm"
    member = load_model(tmp_path / "two", member=1)
    assert isinstance(member, AuthorsModel)
    with torch.no_grad():
        ens_out = whole(obs)[0]
        assert torch.equal(ens_out, trained.eval()(obs)[0])
        torch.testing.assert_close(member(obs)[0], ens_out[1], rtol=0, atol=1e-6)
    # a one-member stacked ensemble stays an ensemble (its tensors carry the member axis)
    from agents.checkpoint import atomic_torch_save, weights_record

    atomic_torch_save(weights_record(AuthorsEnsemble([member]), 3, None), tmp_path / "k1.pt")
    assert isinstance(load_model(tmp_path / "k1.pt"), AuthorsEnsemble)


def test_old_torch_checkpoints_and_configs_still_load(tiny_config, tmp_path):
    """A spec without "family" loads as torch; a config.json without model_family resumes."""
    train(tiny_config, tmp_path, progress=False, stop_at_step=4)
    path = tmp_path / "checkpoints" / "step_000004.pt"
    record = torch.load(path, weights_only=True)
    assert record["spec"].pop("family") == "torch"
    torch.save(record, path)
    assert isinstance(load_model(path), RecurrentModel)
    assert isinstance(model_from_spec(record["spec"]), RecurrentModel)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["model_family"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    resumed = train(tiny_config, tmp_path, progress=False)
    assert resumed.finished and isinstance(resumed.model, RecurrentModel)
    with pytest.raises(ValueError, match="model_family"):  # a run keeps its family
        train(tiny_config.replace(model_family="authors"), tmp_path, progress=False)


def test_authors_model_answers_through_response_correct():
    """An output above the others among the active classes is the answer; inactive ones never
    are (the argmax over active s is the argmax of softmax(M * s))."""
    s = torch.full((1, 3, 11), 0.1)
    s[0, 2, 3] = 0.9  # class 2 at the response step
    s[0, 2, 8] = 1.0  # class 7: outside a vocabulary of 4
    correct = response_correct(s, torch.tensor([2]), torch.tensor([2]), 4)
    assert correct.tolist() == [True]
    assert response_correct(s, torch.tensor([2]), torch.tensor([2]), 10).tolist() == [False]


def test_trained_authors_ensemble_member_evaluates_identically(tiny_config, tiny_task, tmp_path):
    from agents import evaluate_delays

    train(_authors_config(tiny_config, total_steps=4, n_members=2), tmp_path, progress=False)
    whole = load_model(tmp_path)
    with torch.no_grad():  # make the barely trained networks answer classes, not null
        whole.readout_bias[:, 0] -= 100.0
        whole.readout_weight.mul_(30.0)
    member = whole.member(1)
    kwargs = dict(delays=[4, 9, 30], n_trials=100, batch_size=50, seed=3)
    ens = evaluate_delays(whole, tiny_task, **kwargs)
    one = evaluate_delays(member, tiny_task, **kwargs)
    assert ens.n_members == 2 and one.n_members == 1
    assert 0 < one.correct.sum() < one.n_trials.sum()  # a non-trivial comparison
    assert (ens.correct[1] == one.correct[0]).all()
    assert (ens.class_correct[1] == one.class_correct[0]).all()
