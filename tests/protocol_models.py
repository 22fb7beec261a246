"""Building blocks of hand-built test networks that follow the recurrent protocol.

Imported as ``tests.protocol_models`` (pytest runs from the repository root).
"""

from __future__ import annotations

import torch
from torch import nn

from memenv import DelayedRecallTask


class StepwiseModel(nn.Module):
    """``forward`` by stepping ``transition`` then ``readout``: a hand-built network defines
    only ``initial_state``, ``transition`` and ``readout``."""

    def forward(self, obs_bxtxd: torch.Tensor, state=None):
        if state is None:
            state = self.initial_state(obs_bxtxd.shape[0])
        outputs = []
        for t in range(obs_bxtxd.shape[1]):
            state = self.transition(state, obs_bxtxd[:, t])
            outputs.append(self.readout(state))
        return torch.stack(outputs, dim=1), state


class ImagePoolModel(StepwiseModel):
    """A `StepwiseModel` that recognises the task's images: `match_image` tells an image frame
    (its pixels equal one of the pool's) from a noise frame, and gives the image's class."""

    def __init__(self, task: DelayedRecallTask) -> None:
        super().__init__()
        pool = torch.as_tensor(task.images.images_nxp, dtype=torch.float32) / 255
        self.register_buffer("pool_nxp", pool)
        self.n_per_class = task.images.n_per_class
        self.unused = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype

    def match_image(self, x_bxd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(is_image [B] bool, class [B] float)`` of observations ``x [B, D]``."""
        pixels_bxp = x_bxd[:, :-1].to(self.pool_nxp.dtype)
        distance_bxn = torch.cdist(
            pixels_bxp, self.pool_nxp, compute_mode="donot_use_mm_for_euclid_dist"
        )
        nearest, index = distance_bxn.min(dim=1)
        return nearest < 1e-3, (index // self.n_per_class).to(x_bxd.dtype)
