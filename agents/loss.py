"""The paper's training loss, in the form of each model family, and response accuracy.

Family ``torch`` (`weighted_ce`, docs/paper.md): cross-entropy of the logits at every step, weighted
by the trial's ``loss_weight`` (``null_weight``, 1 by default, at null steps before ``t_max``;
``19 + null_weight``, 20 by default, at the response; 0 at steps ``>= t_max``), with the classes outside the active vocabulary masked out of the softmax (the
null class is always active), divided by ``B * T`` (``T`` = the trial length, zero-weight steps
included)::

    sum_{b,t} w[b,t] * CE(masked logits[b,t], target[b,t]) / (B * T)

Family ``authors`` (`authors_loss`, the authors' TensorFlow code): the readout ``s`` (sigmoid
outputs in [0, 1]) gives ``p = softmax(M * s)`` with ``M`` = 1 on active outputs and -1000 on
inactive classes, and the loss is ``-reduce_mean(w * y * log(p + 1e-4))`` over the whole
``[B, 11, T]`` grid (``y`` the one-hot target)::

    sum_{b,t} w[b,t] * -log(p[b,t,target] + 1e-4) / (B * 11 * T)

Their ``(t_max - 1) * Z * Y + alpha * Y`` weight is our ``loss_weight`` (alpha = 1). The
trainer picks the loss from the model's family (`model_family`, `member_loss`). The ``torch``
loss is on a scale ``N_OUTPUTS`` = 11 times larger per unit of weighted log-loss
(`LOSS_SCALE_VS_AUTHORS`), which matters when another term (a speed penalty) is added to it.

Predictions take the argmax over active outputs (`predictions`); for the authors' ``s`` this is
the argmax of their ``p``, because softmax is monotone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from agents.protocol import MODEL_FAMILIES, N_OUTPUTS, check_model_family, model_family

__all__ = [
    "AUTHORS_INACTIVE_SCALE",
    "AUTHORS_LOG_EPSILON",
    "LOSS_SCALE_VS_AUTHORS",
    "MODEL_FAMILIES",
    "active_mask",
    "authors_loss",
    "authors_loss_members",
    "authors_probabilities",
    "mask_logits",
    "member_loss",
    "model_family",
    "predictions",
    "response_correct",
    "response_logits",
    "weighted_ce",
    "weighted_ce_members",
]

AUTHORS_INACTIVE_SCALE = -1000.0
"""The authors' ``M`` on classes outside the vocabulary (1 on active outputs)."""
AUTHORS_LOG_EPSILON = 1e-4
"""The authors' ``TINY`` in ``log(p + TINY)``."""
LOSS_SCALE_VS_AUTHORS = {"torch": float(N_OUTPUTS), "authors": 1.0}
"""Factor from the authors' loss scale to each family's: the ``torch`` loss divides by ``B * T``,
the authors' by ``B * 11 * T``; divide a family's loss by it to put it on the authors' scale."""


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


def authors_probabilities(outputs: torch.Tensor, n_classes) -> torch.Tensor:
    """The authors' ``p = softmax(M * s)`` over the last axis.

    Args:
        outputs: ``s [B, ..., 11]`` (sigmoid outputs of an `agents.authors.AuthorsModel`).
        n_classes: Active vocabulary: an int, or an int64 tensor ``[B]`` (one per row).

    Returns:
        ``[B, ..., 11]``; ``M`` = 1 on null and classes ``< n_classes``, -1000 elsewhere.
    """
    active = active_mask(n_classes, outputs.shape[-1], outputs.device)
    if active.dim() == 2:  # per row: broadcast over the middle axes
        active = active.reshape(active.shape[0], *([1] * (outputs.dim() - 2)), active.shape[1])
    scale = torch.where(active, 1.0, AUTHORS_INACTIVE_SCALE).to(outputs.dtype)
    return torch.softmax(scale * outputs, dim=-1)


def authors_loss(
    outputs: torch.Tensor, target: torch.Tensor, loss_weight: torch.Tensor, n_classes
) -> torch.Tensor:
    """The authors' loss for one network.

    Args:
        outputs: ``s [B, T, 11]`` in [0, 1].
        target: int64 ``[B, T]``.
        loss_weight: float32 ``[B, T]``.
        n_classes: Active vocabulary (int or ``[B]`` tensor).

    Returns:
        Scalar: ``sum(loss_weight * -log(p[target] + 1e-4)) / (B * 11 * T)``.
    """
    return authors_loss_members(outputs[None], target[None], loss_weight[None], n_classes)[0]


def authors_loss_members(
    outputs: torch.Tensor, target: torch.Tensor, loss_weight: torch.Tensor, n_classes
) -> torch.Tensor:
    """The authors' loss for each of K networks.

    Args:
        outputs: ``s [K, B, T, 11]``.
        target: int64 ``[K, B, T]``.
        loss_weight: float32 ``[K, B, T]``.
        n_classes: int, or int64 ``[K]`` (one vocabulary per member).

    Returns:
        ``[K]``: each member's ``sum(loss_weight * -log(p[target] + 1e-4)) / (B * 11 * T)``.
    """
    k, b, t, o = outputs.shape
    if isinstance(n_classes, torch.Tensor):
        n_classes = n_classes.repeat_interleave(b)  # one entry per (member, trial) row
    p = authors_probabilities(outputs.reshape(k * b, t, o), n_classes)
    p_target = p.gather(-1, target.reshape(k * b, t, 1)).squeeze(-1)
    per_step = loss_weight.reshape(k * b, t) * -torch.log(p_target + AUTHORS_LOG_EPSILON)
    return per_step.reshape(k, b * t).sum(dim=1) / (b * t * o)


_MEMBER_LOSSES = {"torch": weighted_ce_members, "authors": authors_loss_members}


def member_loss(family: str) -> Callable[..., torch.Tensor]:
    """The per-member loss of a model family: `weighted_ce_members` (``"torch"``) or
    `authors_loss_members` (``"authors"``), called as ``f(outputs [K, B, T, 11], target,
    loss_weight, n_classes) -> [K]``."""
    check_model_family(family)
    return _MEMBER_LOSSES[family]


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
