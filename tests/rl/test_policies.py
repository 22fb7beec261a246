"""`SequenceLstmPolicy` computes what sb3-contrib's step loop computes."""

from __future__ import annotations

import pytest
import torch
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from torch import nn

from agents.rl.policies import SequenceLstmPolicy


def _inputs(starts_nxl: torch.Tensor, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    n_seq, length = starts_nxl.shape
    lstm = nn.LSTM(5, 7)
    features = torch.randn(n_seq * length, 5, generator=generator, requires_grad=True)
    states = (torch.randn(1, n_seq, 7, generator=generator),) * 2
    return features, states, starts_nxl.reshape(-1).float(), lstm


def _run(process, features, states, starts, lstm):
    output, (h, c) = process(features, states, starts, lstm)
    loss = output.square().sum() + h.sum() + c.sum()
    grads = torch.autograd.grad(loss, [features, *lstm.parameters()])
    return output, h, c, grads


@pytest.mark.parametrize(
    "starts",
    [
        [[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]],  # starts only at sequence starts: one call
        [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]],  # starts inside: sb3-contrib's loop
        [[1], [0], [1]],  # data collection: sequences of one step
    ],
)
def test_equals_the_step_loop_with_gradients(starts):
    features, states, flat_starts, lstm = _inputs(torch.tensor(starts))
    ours = _run(SequenceLstmPolicy._process_sequence, features, states, flat_starts, lstm)
    theirs = _run(RecurrentActorCriticPolicy._process_sequence, features, states, flat_starts, lstm)
    for a, b in zip(ours[:3], theirs[:3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(ours[3], theirs[3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_start_resets_the_initial_state():
    features, states, flat_starts, lstm = _inputs(torch.tensor([[1, 0, 0], [0, 0, 0]]))
    zeros = (torch.zeros_like(states[0]), torch.zeros_like(states[1]))
    with_states, _ = SequenceLstmPolicy._process_sequence(features, states, flat_starts, lstm)
    from_zero, _ = SequenceLstmPolicy._process_sequence(features, zeros, flat_starts, lstm)
    torch.testing.assert_close(with_states[:3], from_zero[:3])  # sequence 0 starts an episode
    assert not torch.allclose(with_states[3:], from_zero[3:])  # sequence 1 continues one
