"""The paper's loss: weighted CE, masked steps and classes, mean over batch x steps."""

from __future__ import annotations

import math

import torch

from agents.loss import mask_logits, response_correct, weighted_ce, weighted_ce_members


def _batch(b=3, t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, 11, generator=g)
    target = torch.zeros(b, t, dtype=torch.long)
    weight = torch.ones(b, t)
    t_resp = torch.tensor([2, 3, 1])
    label = torch.tensor([0, 1, 1])
    target[torch.arange(b), t_resp] = label + 1
    weight[torch.arange(b), t_resp] = 20.0
    weight[:, 4] = 0.0  # a step at or beyond t_max
    return logits, target, weight, t_resp, label


def test_matches_hand_computation():
    logits, target, weight, _, _ = _batch()
    n_classes = 2
    loss = weighted_ce(logits, target, weight, n_classes)
    total = 0.0
    for i in range(3):
        for t in range(5):
            active = logits[i, t, : n_classes + 1]
            nll = -(active[target[i, t]] - torch.logsumexp(active, 0))
            total += float(weight[i, t]) * float(nll)
    assert math.isclose(float(loss), total / 15, rel_tol=1e-5)


def test_ignores_masked_steps_and_inactive_classes():
    logits, target, weight, _, _ = _batch()
    logits.requires_grad_(True)
    loss = weighted_ce(logits, target, weight, n_classes=2)
    loss.backward()
    assert torch.all(logits.grad[:, 4] == 0)  # zero-weight step
    assert torch.all(logits.grad[..., 3:] == 0)  # classes 2..9 (outputs 3..10) are inactive
    changed = logits.detach().clone()
    changed[:, 4] = 1e4
    changed[..., 3:] = 1e4
    assert torch.equal(weighted_ce(changed, target, weight, 2), loss.detach())
    # an inactive target on a zero-weight step must not turn the loss into NaN/inf
    target2 = target.clone()
    target2[:, 4] = 9
    assert torch.isfinite(weighted_ce(logits.detach(), target2, weight, 2))


def test_members_are_independent_and_per_member_vocabulary():
    logits, target, weight, _, _ = _batch()
    other = torch.randn(3, 5, 11)
    stacked = torch.stack([logits, other])
    per = weighted_ce_members(
        stacked, target.expand(2, -1, -1), weight.expand(2, -1, -1), torch.tensor([2, 10])
    )
    torch.testing.assert_close(per[0], weighted_ce(logits, target, weight, 2))
    torch.testing.assert_close(per[1], weighted_ce(other, target, weight, 10))


def test_response_correct_masks_inactive_answers():
    logits = torch.zeros(2, 4, 11)
    t_resp = torch.tensor([1, 2])
    label = torch.tensor([0, 1])
    logits[0, 1, 1] = 5.0  # correct
    logits[1, 2, 2] = 1.0  # correct, but class 5 (output 6) is larger
    logits[1, 2, 6] = 9.0
    assert response_correct(logits, t_resp, label, 10).tolist() == [True, False]
    assert response_correct(logits, t_resp, label, 2).tolist() == [True, True]
    masked = mask_logits(logits, 2)
    assert torch.isinf(masked[..., 3:]).all() and torch.isfinite(masked[..., :3]).all()
