"""`FrameTriggerExtractor`: a small CNN over the frame, with the trigger passed around it."""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from memenv.errors import UsageError

FRAME_SHAPES = {784: (1, 28, 28), 3072: (3, 32, 32)}


class FrameTriggerExtractor(BaseFeaturesExtractor):
    """Features for SB3 policies from a flat delayed-recall observation ``[B, P + 1]``.

    The P pixels are reshaped to the frame ``[B, C, H, W]`` and go through two 3x3 conv layers
    (stride 2) and a linear layer; the trigger is appended to the result unchanged, since the
    policy must see it exactly. SB3's own `NatureCNN` needs images of at least 36x36, and
    treating the flat vector as an image would mix the trigger into the pixels.

    Args:
        observation_space: ``Box((P + 1,))`` with P = 784 (MNIST-like) or 3072 (CIFAR-10).
        features_dim: Output size, including the trigger.
        channels: Filters of the two conv layers.
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 129, channels: int = 16
    ) -> None:
        if len(observation_space.shape) != 1 or observation_space.shape[0] - 1 not in FRAME_SHAPES:
            raise UsageError(
                f"expected a flat observation of 785 or 3073 values, got {observation_space.shape}"
            )
        if features_dim < 2:
            raise UsageError(f"features_dim must be >= 2, got {features_dim!r}")
        super().__init__(observation_space, features_dim)
        self.frame_shape = FRAME_SHAPES[observation_space.shape[0] - 1]
        in_channels, height, width = self.frame_shape
        self.cnn = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, in_channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, features_dim - 1), nn.ReLU())

    def forward(self, obs_bxd: torch.Tensor) -> torch.Tensor:
        frames = obs_bxd[:, :-1].reshape(-1, *self.frame_shape)
        trigger = obs_bxd[:, -1:]
        return torch.cat([self.head(self.cnn(frames)), trigger], dim=1)
