"""Training batches for K networks from one `DelayedRecallTask`, drawn on the device.

All members' trials come from one ``torch.Generator`` on the training device and are written
into one reused observation buffer ``[K * B, T, D]`` (member-major: rows ``k*B .. k*B+B-1``
are member k's), so a step allocates no observation memory and launches one sampler call
when the members share their task (fixed curricula), one per member otherwise (adaptive
curricula, where members may be at different stages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from memenv.errors import UsageError
from memenv.task import DelayedRecallTask


@dataclass
class MemberBatch:
    """One step's trials for K members of B trials.

    Attributes:
        obs: float32 ``[K * B, T, D]`` (the reused buffer).
        target: int64 ``[K, B, T]``.
        loss_weight: float32 ``[K, B, T]``.
        t_resp: int64 ``[K, B]``.
        label: int64 ``[K, B]``.
        n_classes: int (shared vocabulary) or int64 ``[K]``.
        task_configs: Per member, the `TaskConfig` the trials came from.
    """

    obs: torch.Tensor
    target: torch.Tensor
    loss_weight: torch.Tensor
    t_resp: torch.Tensor
    label: torch.Tensor
    n_classes: Any
    task_configs: list


class BatchSource:
    """Draws `MemberBatch` es for a base task and per-member config changes.

    Args:
        task: The base task (its images are shared by every derived task).
        n_members: K.
        batch_size: B, trials per member.
        device: Where the batches live.
    """

    def __init__(
        self, task: DelayedRecallTask, n_members: int, batch_size: int, device: torch.device
    ) -> None:
        self.task = task
        self.n_members = n_members
        self.batch_size = batch_size
        self.device = device
        self._tasks: dict[tuple, DelayedRecallTask] = {}
        self._buffers: dict[int, torch.Tensor] = {}

    def task_for(self, changes: dict[str, Any]) -> DelayedRecallTask:
        """The base task with ``changes`` applied (validated by `TaskConfig.replace`)."""
        key = tuple(sorted(changes.items()))
        if key not in self._tasks:
            config = self.task.config.replace(**changes) if changes else self.task.config
            self._tasks[key] = self.task.with_config(config)
        return self._tasks[key]

    def buffer(self, n_steps: int) -> torch.Tensor:
        if n_steps not in self._buffers:
            shape = (self.n_members * self.batch_size, n_steps, self.task.obs_dim)
            self._buffers[n_steps] = torch.empty(shape, dtype=torch.float32, device=self.device)
        return self._buffers[n_steps]

    def draw(self, changes: list[dict[str, Any]], rng: torch.Generator) -> MemberBatch:
        """One batch; ``changes[k]`` is member k's task change dict."""
        k, b = self.n_members, self.batch_size
        tasks = [self.task_for(c) for c in changes]
        n_steps = {t.config.n_steps for t in tasks}
        if len(n_steps) != 1:
            raise UsageError(f"members' tasks differ in n_steps ({sorted(n_steps)})")
        obs = self.buffer(n_steps.pop())
        if all(t is tasks[0] for t in tasks):
            trials = tasks[0].sample(k * b, rng, obs_out=obs)
            parts = [trials]
            n_classes: Any = tasks[0].config.n_classes
        else:
            parts = [
                t.sample(b, rng, obs_out=obs[i * b : (i + 1) * b]) for i, t in enumerate(tasks)
            ]
            n_classes = torch.tensor([t.config.n_classes for t in tasks], device=self.device)

        def cat(name: str) -> torch.Tensor:
            return (
                torch.cat([getattr(p, name) for p in parts])
                if len(parts) > 1
                else getattr(parts[0], name)
            )

        t = obs.shape[1]
        return MemberBatch(
            obs=obs,
            target=cat("target").reshape(k, b, t),
            loss_weight=cat("loss_weight").reshape(k, b, t),
            t_resp=cat("t_resp").reshape(k, b),
            label=cat("label").reshape(k, b),
            n_classes=n_classes,
            task_configs=[task.config for task in tasks],
        )
