"""The CIFAR-10 convolutional front-end of Haviv et al. (2019).

Architecture (docs/paper.md; the authors' code has three fully connected layers, see
docs/agents.md): 3 x [3x3 convolution with 128 filters, same padding, leaky ReLU,
2x2 max-pool], flatten (128 x 4 x 4 = 2048 for 32 x 32 frames), then fully connected layers
2048 -> 2048 -> 1024, each followed by a leaky ReLU. The leaky-ReLU slope is not given in the
paper; the default 0.2 is TensorFlow's ``tf.nn.leaky_relu`` default (the authors used
TensorFlow). It is trained jointly with the recurrent cell, from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

from memenv.errors import UsageError


class ConvFrontend(nn.Module):
    """Maps flattened channel-first frames ``[..., C * H * W]`` to features ``[..., out_features]``.

    Args:
        frame_shape: ``(C, H, W)``; H and W must be divisible by 8.
        channels: Filters per convolution (paper: 128).
        fc_sizes: Widths of the fully connected layers (paper: ``(2048, 1024)``).
        negative_slope: Leaky-ReLU slope.
    """

    def __init__(
        self,
        frame_shape: tuple[int, int, int] = (3, 32, 32),
        channels: int = 128,
        fc_sizes: tuple[int, ...] = (2048, 1024),
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        c, h, w = (int(v) for v in frame_shape)
        if h % 8 or w % 8:
            raise UsageError(f"frame_shape H and W must be divisible by 8, got {frame_shape}")
        if not fc_sizes:
            raise UsageError("fc_sizes must name at least one layer")
        self.frame_shape = (c, h, w)
        self.negative_slope = float(negative_slope)
        layers: list[nn.Module] = []
        in_channels = c
        for _ in range(3):
            layers += [
                nn.Conv2d(in_channels, channels, 3, padding=1),
                nn.LeakyReLU(negative_slope),
                nn.MaxPool2d(2),
            ]
            in_channels = channels
        layers.append(nn.Flatten())
        width = channels * (h // 8) * (w // 8)
        for size in fc_sizes:
            layers += [nn.Linear(width, size), nn.LeakyReLU(negative_slope)]
            width = size
        self.net = nn.Sequential(*layers)
        self.out_features = width
        self.channels = channels
        self.fc_sizes = tuple(int(s) for s in fc_sizes)

    @property
    def in_features(self) -> int:
        c, h, w = self.frame_shape
        return c * h * w

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels [..., C*H*W]`` -> features ``[..., out_features]``."""
        lead = pixels.shape[:-1]
        frames = pixels.reshape(-1, *self.frame_shape)
        return self.net(frames).reshape(*lead, self.out_features)

    def spec(self) -> dict:
        """Constructor arguments (JSON-able) that rebuild this front-end."""
        return {
            "frame_shape": list(self.frame_shape),
            "channels": self.channels,
            "fc_sizes": list(self.fc_sizes),
            "negative_slope": self.negative_slope,
        }
