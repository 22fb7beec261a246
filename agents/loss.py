"""The paper's training loss and response accuracy.

Loss (PAPER.md): cross-entropy at every step, weighted by the trial's ``loss_weight`` (1 at
null steps before ``t_max``, 20 at the response, 0 at steps ``>= t_max``), with the classes
outside the active vocabulary masked out of the softmax (the null class is always active), and
``mean over batch x steps``: the weighted sum over the ``B x T`` grid divided by ``B * T``
(``T`` = the trial length, zero-weight steps included), as ``reduce_mean`` over the whole
grid does.
"""

from __future__ import annotations

import torch

from agents.protocol import N_OUTPUTS


def active_mask(n_classes, n_outputs: int = N_OUTPUTS, device=None) -> torch.Tensor:
    """Boolean mask of active output units: null and classes ``0 .. n_classes - 1``.

    Args:
        n_classes: An int (same vocabulary everywhere) or an int64 tensor ``[B]`` (one per row).

    Returns:
        ``[n_outputs]`` for an int, ``[B, n_outputs]`` for a tensor.
    """
    units = torch.arange(n_outputs, device=device)
    if isinstance(n_classes, torch.Tensor):
        return units[None, :] <= n_classes.to(units.device)[:, None]
    return units <= int(n_classes)


def mask_logits(logits: torch.Tensor, n_classes) -> torch.Tensor:
    """Sets the logits of inactive classes to ``-inf``.

    Args:
        logits: ``[B, ..., 11]``.
        n_classes: Active vocabulary size: an int, or an int64 tensor ``[B]`` (one per row).

    Returns:
        Masked logits of the same shape (a new tensor; no-op copy for ``n_classes == 10``).
    """
    if not isinstance(n_classes, torch.Tensor) and int(n_classes) >= logits.shape[-1] - 1:
        return logits
    mask = active_mask(n_classes, logits.shape[-1], logits.device)
    if mask.dim() == 2:  # per row: broadcast over the middle axes
        mask = mask.reshape(mask.shape[0], *([1] * (logits.dim() - 2)), mask.shape[1])
    return logits.masked_fill(~mask, float("-inf"))


def weighted_ce(
    logits: torch.Tensor, target: torch.Tensor, loss_weight: torch.Tensor, n_classes
) -> torch.Tensor:
    """The paper's loss for one network.

    Args:
        logits: ``[B, T, 11]`` unmasked.
        target: int64 ``[B, T]``.
        loss_weight: float32 ``[B, T]``.
        n_classes: Active vocabulary (int or ``[B]`` tensor).

    Returns:
        Scalar: ``sum(loss_weight * CE) / (B * T)``.
    """
    return weighted_ce_members(logits[None], target[None], loss_weight[None], n_classes)[0]


def weighted_ce_members(
    logits: torch.Tensor, target: torch.Tensor, loss_weight: torch.Tensor, n_classes
) -> torch.Tensor:
    """The paper's loss for each of K networks.

    Args:
        logits: ``[K, B, T, 11]``.
        target: int64 ``[K, B, T]``.
        loss_weight: float32 ``[K, B, T]``.
        n_classes: int, or int64 ``[K]`` (one vocabulary per member).

    Returns:
        ``[K]``: each member's ``sum(loss_weight * CE) / (B * T)``.
    """
    k, b, t, _ = logits.shape
    if isinstance(n_classes, torch.Tensor):
        n_classes = n_classes.repeat_interleave(b)  # one entry per (member, trial) row
    masked = mask_logits(logits.reshape(k * b, t, -1), n_classes)
    log_p = torch.log_softmax(masked, dim=-1)
    nll = -log_p.gather(-1, target.reshape(k * b, t, 1)).squeeze(-1)
    weight = loss_weight.reshape(k * b, t)
    # where(): a zero-weight step must contribute 0 even if its nll were inf (masked target)
    per_step = torch.where(weight > 0, weight * nll, torch.zeros_like(nll))
    return per_step.reshape(k, b * t).sum(dim=1) / (b * t)


def predictions(logits: torch.Tensor, n_classes) -> torch.Tensor:
    """Argmax over the active outputs: int64 ``logits.shape[:-1]``."""
    return mask_logits(logits, n_classes).argmax(dim=-1)


def response_logits(logits: torch.Tensor, t_resp: torch.Tensor) -> torch.Tensor:
    """The logits at each trial's response step.

    Args:
        logits: ``[..., B, T, 11]``.
        t_resp: int64 ``[..., B]``.

    Returns:
        ``[..., B, 11]``.
    """
    index = t_resp[..., None, None].expand(*t_resp.shape, 1, logits.shape[-1])
    return logits.gather(-2, index).squeeze(-2)


def response_correct(
    logits: torch.Tensor, t_resp: torch.Tensor, label: torch.Tensor, n_classes
) -> torch.Tensor:
    """Whether the answer at the response step is the stimulus class.

    Args:
        logits: ``[B, T, 11]`` (or ``[K, B, T, 11]`` with ``t_resp``, ``label`` ``[K, B]``).
        t_resp: int64 ``[B]``.
        label: int64 ``[B]`` stimulus classes (0-9).
        n_classes: Active vocabulary (int, or int64 ``[K]`` for member-stacked input).

    Returns:
        bool ``[B]`` (or ``[K, B]``).
    """
    at_resp = response_logits(logits, t_resp)
    if isinstance(n_classes, torch.Tensor) and at_resp.dim() == 3:
        k, b, o = at_resp.shape
        pred = predictions(at_resp.reshape(k * b, o), n_classes.repeat_interleave(b))
        return pred.reshape(k, b) == label + 1
    return predictions(at_resp, n_classes) == label + 1
