"""Device selection."""

from __future__ import annotations

import torch

from memenv.errors import UsageError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` / None: CUDA when available, else CPU; anything else as given.

    Raises:
        UsageError: an unknown device, or CUDA asked for where there is none.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:  # torch's message for an unknown device type is a long list
        raise UsageError(f"unknown device {str(device)!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device={str(device)!r} but no CUDA device is available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(
                f"device={str(device)!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return resolved
