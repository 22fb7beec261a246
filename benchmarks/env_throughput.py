"""Environment and sampler throughput (issue 2's targets), measured in one run.

    python benchmarks/env_throughput.py [--batch 128] [--repeats 3] [--rounds 5]

Prints frames per second of the vector-native env, of Gymnasium's SyncVectorEnv over B single
envs and of the torch sampler, and the sampler's time per batch as a share of one training step
of a 200-unit GRU on the same batch. Targets: native >= 20x SyncVectorEnv; sampler <= 10% of
the GRU step (CPU, exact float32 Gaussian noise, no reused noise frames). The rounds interleave
the measurements; each quantity's best over all rounds gives the ratios (a shared machine only
ever slows a measurement down), and the per-round ratios show the spread. Also printed: the
Gaussian draws alone (the floor of both ratios) and the sampler's share of a step inside a
training loop, where the step's OpenMP threads still spin when the next batch is drawn.
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


def gru_training_step(obs_dim: int):
    """A GRU-200 training step (forward, weighted cross-entropy, backward, Adam) on a batch."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(obs_dim, 200, batch_first=True)
    readout = torch.nn.Linear(200, 11)
    optimizer = torch.optim.Adam([*gru.parameters(), *readout.parameters()], lr=1e-3)

    def step(batch) -> None:
        hidden, _ = gru(batch.obs)
        logits = readout(hidden)
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 11), batch.target.reshape(-1), reduction="none"
        )
        loss = (losses * batch.loss_weight.reshape(-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def sampler_share_in_loop(task, step, generator, buffer, iterations: int) -> float:
    """Median over a training loop (sample, then step) of sampler time / step time.

    Unlike the separate timings, each draw here follows a training step, whose OpenMP
    threads keep spinning on the cores for a while after it: what a training run sees.
    """
    shares = []
    for _ in range(iterations):
        start = time.perf_counter()
        batch = task.sample(buffer.shape[0], generator, obs_out=buffer)
        sampled = time.perf_counter()
        step(batch)
        shares.append((sampled - start) / (time.perf_counter() - sampled))
    return float(np.median(shares))


def measure_round(native, sync, task, batch_size: int, repeats: int) -> dict[str, float]:
    """Every quantity once (best of ``repeats``), a few seconds apart."""
    generator = torch.Generator().manual_seed(0)
    buffer = torch.empty(batch_size, 20, task.obs_dim)
    numpy_rng = np.random.default_rng(0)
    env_rngs = [np.random.default_rng(i) for i in range(batch_size)]
    env_noise = np.empty((batch_size, 20 * task.obs_dim), np.float32)
    step = gru_training_step(task.obs_dim)
    batch = task.sample(batch_size, generator)
    return {
        "native_fps": env_fps(native, batch_size, repeats, 400),
        "sync_fps": env_fps(sync, batch_size, repeats, 60),
        "sample_s": best_seconds(
            lambda: task.sample(batch_size, generator, obs_out=buffer), repeats, 20
        ),
        "alloc_s": best_seconds(lambda: task.sample(batch_size, generator), repeats, 20),
        "numpy_s": best_seconds(lambda: task.sample(batch_size, numpy_rng), repeats, 10),
        "gru_s": best_seconds(lambda: step(batch), repeats, 5),
        "loop_share": sampler_share_in_loop(task, step, generator, buffer, 10),
        # The floors: the Gaussian draws alone, as the vector env makes them for one episode
        # (every sub-env from its own generator) and as the torch sampler makes them.
        "env_noise_s": best_seconds(lambda: task.noise_rows(env_rngs, env_noise), repeats, 10),
        "sampler_noise_s": best_seconds(
            lambda: task.noise(buffer.shape, generator, out=buffer), repeats, 20
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many, per round")
    parser.add_argument("--rounds", type=int, default=5, help="measurement rounds")
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1 or args.rounds < 1:
        parser.error(
            f"--batch, --repeats and --rounds must be >= 1, got {args.batch}, "
            f"{args.repeats}, {args.rounds}"
        )
    warnings.filterwarnings("ignore", message="memenv: using the embedded")
    batch_size = args.batch
    print(
        f"memenv {memenv.__version__}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    native = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=batch_size)
    sync = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=batch_size, vectorization_mode="sync")
    task = DelayedRecallTask(TaskConfig())
    frames = batch_size * 20
    env_ratios, sampler_ratios, rounds = [], [], []
    for round_index in range(args.rounds):
        m = measure_round(native, sync, task, batch_size, args.repeats)
        rounds.append(m)
        env_ratios.append(m["native_fps"] / m["sync_fps"])
        sampler_ratios.append(m["sample_s"] / m["gru_s"])
        print(f"round {round_index + 1}/{args.rounds}")
        rows = [
            ("vector-native env", f"{m['native_fps']:,.0f} frames/s"),
            (f"SyncVectorEnv x {batch_size}", f"{m['sync_fps']:,.0f} frames/s"),
            (
                "torch sampler (reused buffer)",
                f"{frames / m['sample_s']:,.0f} frames/s, {m['sample_s'] * 1e3:.2f} ms/batch",
            ),
            (
                "torch sampler (new tensor)",
                f"{frames / m['alloc_s']:,.0f} frames/s, {m['alloc_s'] * 1e3:.2f} ms/batch",
            ),
            (
                "numpy sampler",
                f"{frames / m['numpy_s']:,.0f} frames/s, {m['numpy_s'] * 1e3:.2f} ms/batch",
            ),
            ("GRU-200 training step", f"{m['gru_s'] * 1e3:.2f} ms/batch"),
            ("noise of one vector-env episode", f"{m['env_noise_s'] * 1e3:.2f} ms"),
            ("noise of one sampler batch", f"{m['sampler_noise_s'] * 1e3:.2f} ms"),
            ("native / SyncVectorEnv", f"{env_ratios[-1]:.1f}x"),
            ("sampler / GRU step", f"{sampler_ratios[-1]:.1%}"),
            ("the same inside a training loop", f"{m['loop_share']:.1%} (median of 10)"),
        ]
        for name, value in rows:
            print(f"  {name:32s} {value}")
    best = {
        key: max(r[key] for r in rounds) if key.endswith("fps") else min(r[key] for r in rounds)
        for key in rounds[0]
        if key != "loop_share"
    }
    env_ratio = best["native_fps"] / best["sync_fps"]
    sampler_ratio = best["sample_s"] / best["gru_s"]
    print(
        f"best over rounds: native {best['native_fps']:,.0f} frames/s, SyncVectorEnv "
        f"{best['sync_fps']:,.0f} frames/s, sampler {best['sample_s'] * 1e3:.2f} ms, "
        f"GRU step {best['gru_s'] * 1e3:.2f} ms"
    )
    # With next-step autoreset an episode is 21 steps of B frames; were everything but the
    # noise free, the native env could go no faster than this.
    ceiling_fps = batch_size * 21 / best["env_noise_s"]
    print(
        f"floors: noise alone allows at most {ceiling_fps / best['sync_fps']:.1f}x SyncVectorEnv "
        f"({ceiling_fps:,.0f} frames/s) and costs "
        f"{best['sampler_noise_s'] / best['gru_s']:.1%} of the GRU step"
    )
    print(
        f"RATIO native / SyncVectorEnv      = {env_ratio:.1f}x best-of "
        f"(rounds {min(env_ratios):.1f}-{max(env_ratios):.1f}x)  (target >= 20x)"
    )
    print(
        f"RATIO sampler / GRU training step = {sampler_ratio:.1%} best-of "
        f"(rounds {min(sampler_ratios):.1%}-{max(sampler_ratios):.1%})  (target <= 10%)"
    )
    loop_shares = [r["loop_share"] for r in rounds]
    print(
        f"inside a training loop the sampler takes {np.median(loop_shares):.1%} of a step "
        f"(median over rounds; rounds {min(loop_shares):.1%}-{max(loop_shares):.1%})"
    )


if __name__ == "__main__":
    main()
