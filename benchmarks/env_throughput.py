"""Environment and sampler throughput (issue 2's targets), measured in one run.

    python benchmarks/env_throughput.py [--batch 128] [--repeats 3]

Prints frames per second of the vector-native env, of Gymnasium's SyncVectorEnv over B single
envs and of the torch sampler, and the sampler's time per batch as a share of one training step
of a 200-unit GRU on the same batch. Targets: native >= 20x SyncVectorEnv; sampler <= 10% of
the GRU step (CPU, exact float32 Gaussian noise, no reused noise frames).
"""

from __future__ import annotations

import argparse
import time
import warnings

import gymnasium as gym
import numpy as np
import torch

import memenv
from memenv import DelayedRecallTask, TaskConfig


def best_seconds(fn, repeats: int, number: int) -> float:
    """Best-of-``repeats`` mean seconds per call of ``fn`` over ``number`` calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def env_fps(envs, batch: int, repeats: int, steps: int) -> float:
    envs.reset(seed=0)
    actions = np.zeros(batch, dtype=np.int64)
    return batch / best_seconds(lambda: envs.step(actions), repeats, steps)


def gru_step_seconds(batch, repeats: int) -> float:
    torch.manual_seed(0)
    gru = torch.nn.GRU(batch.obs.shape[-1], 200, batch_first=True)
    readout = torch.nn.Linear(200, 11)
    optimizer = torch.optim.Adam([*gru.parameters(), *readout.parameters()], lr=1e-3)

    def step():
        hidden, _ = gru(batch.obs)
        logits = readout(hidden)
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 11), batch.target.reshape(-1), reduction="none"
        )
        loss = (losses * batch.loss_weight.reshape(-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return best_seconds(step, repeats, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="memenv: using the embedded")
    batch_size = args.batch
    print(
        f"memenv {memenv.__version__}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )

    native = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=batch_size)
    sync = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=batch_size, vectorization_mode="sync")
    native_fps = env_fps(native, batch_size, args.repeats, 400)
    sync_fps = env_fps(sync, batch_size, args.repeats, 60)

    task = DelayedRecallTask(TaskConfig())
    generator = torch.Generator().manual_seed(0)
    buffer = torch.empty(batch_size, 20, task.obs_dim)
    sample_s = best_seconds(
        lambda: task.sample(batch_size, generator, obs_out=buffer), args.repeats, 20
    )
    alloc_s = best_seconds(lambda: task.sample(batch_size, generator), args.repeats, 20)
    numpy_rng = np.random.default_rng(0)
    numpy_s = best_seconds(lambda: task.sample(batch_size, numpy_rng), args.repeats, 10)
    gru_s = gru_step_seconds(task.sample(batch_size, generator), args.repeats)

    frames = batch_size * 20
    rows = [
        ("vector-native env", f"{native_fps:,.0f} frames/s"),
        (f"SyncVectorEnv x {batch_size}", f"{sync_fps:,.0f} frames/s"),
        (
            "torch sampler (reused buffer)",
            f"{frames / sample_s:,.0f} frames/s, {sample_s * 1e3:.2f} ms/batch",
        ),
        (
            "torch sampler (new tensor)",
            f"{frames / alloc_s:,.0f} frames/s, {alloc_s * 1e3:.2f} ms/batch",
        ),
        ("numpy sampler", f"{frames / numpy_s:,.0f} frames/s, {numpy_s * 1e3:.2f} ms/batch"),
        ("GRU-200 training step", f"{gru_s * 1e3:.2f} ms/batch"),
    ]
    for name, value in rows:
        print(f"{name:32s} {value}")
    print(f"RATIO native / SyncVectorEnv      = {native_fps / sync_fps:.1f}x  (target >= 20x)")
    print(f"RATIO sampler / GRU training step = {sample_s / gru_s:.1%}  (target <= 10%)")


if __name__ == "__main__":
    main()
