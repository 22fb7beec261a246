"""Training throughput: the trainer against a minimal raw PyTorch loop, and ensembles.

Measures, in one run on one device:

1. steps/s of `agents.train` (curriculum lookup, device-side metrics, finiteness checks,
   progress bookkeeping; checkpoint I/O excluded) against a minimal PyTorch loop with
   the same model, batch and sampler (``task.sample(B, generator, obs_out=buffer)``, forward,
   the paper's loss, Adam). Target: ratio >= 0.9.
2. ensemble throughput in member-steps/s (K networks x steps/s) for K = 1, 10, 20, 40
   networks of the paper's shapes (200 units, batch 128 per network, 20-step trials, 785
   inputs), the authors' GRU and LSTM by default (``--family``, ``--cells``), each ensemble
   trained by `agents.train` as one batched model, against the naive way: one network at a
   time (`agents.train` with ``n_members=1``, the same family), measured in the same run. On
   CUDA also the peak GPU memory of each K. Issue target on a GPU: >= 10,000 member-steps/s at
   K = 40 for the authors' GRU.

Usage::

    python benchmarks/train_throughput.py            # full
    python benchmarks/train_throughput.py --quick    # fewer steps (a minute or two on CPU)
    python benchmarks/train_throughput.py --device cuda --json out.json
    python benchmarks/train_throughput.py --members 1,2 --cells gru --quick   # CPU smoke run

Run on an otherwise idle machine: on a shared 2-core CPU the numbers move by 2x or more
(``--threads 1`` makes CPU runs steadier under contention).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def raw_loop_seconds(config, task, steps: int, device) -> float:
    """Seconds for ``steps`` steps of the minimal loop (after 2 warm-up steps)."""
    import torch

    from agents.loss import weighted_ce
    from agents.models import build_model

    torch.manual_seed(config.seed)
    model = build_model(config.cell, config.hidden_size, config.dataset).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = torch.Generator(device=device).manual_seed(1)
    buffer = torch.empty(config.batch_size, config.n_steps, task.obs_dim, device=device)

    def step() -> None:
        batch = task.sample(config.batch_size, rng, obs_out=buffer)
        logits, _ = model(batch.obs)
        loss = weighted_ce(logits, batch.target, batch.loss_weight, 10)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - start


def trainer_seconds(config, task, steps: int, warmup: int = 2) -> float:
    """Seconds for ``steps`` steps of `agents.train` (timed from the end of ``warmup`` steps
    to its return after ``warmup + steps`` steps)."""
    from agents.trainer import train

    marks: dict[str, float] = {}

    class Clock:
        """A fixed schedule that notes when the first timed step starts."""

        is_adaptive = False

        def at(self, step: int) -> dict:
            if step == warmup:
                _sync(task_device(config))
                marks["start"] = time.perf_counter()
            return {}

    with tempfile.TemporaryDirectory() as folder:
        # stop_at_step one short of total_steps: no final checkpoint in the timed part
        # (checkpoint I/O is amortised over checkpoint_every steps in real runs)
        train(
            config.replace(total_steps=warmup + steps + 1, checkpoint_every=10**9, log_every=10**9),
            Path(folder) / "run", schedule=Clock(), task=task, progress=False,
            stop_at_step=warmup + steps,
        )  # fmt: skip
        _sync(task_device(config))
        return time.perf_counter() - marks["start"]


def task_device(config):
    from agents.device import resolve_device

    return resolve_device(config.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--members", default="1,10,20,40", help="ensemble sizes K")
    parser.add_argument("--family", default="authors", help="authors or torch (ensembles)")
    parser.add_argument("--cells", default="gru,lstm", help="cells of the ensemble part")
    parser.add_argument("--no-raw", action="store_true", help="skip part 1 (trainer vs raw)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)  # the embedded-MNIST notice

    import torch

    from agents.config import TrainConfig
    from memenv import DelayedRecallTask

    if args.threads:
        torch.set_num_threads(args.threads)

    config = TrainConfig(hidden_size=200, batch_size=128, n_steps=20, lr=1e-3, device=args.device)
    device = task_device(config)
    task = DelayedRecallTask(config.task_config())
    cpu = device.type == "cpu"
    steps = (5 if args.quick else 10) if cpu else (50 if args.quick else 200)
    repeats = 3 if args.quick else 7
    print(f"device: {device} ({torch.cuda.get_device_name(device) if not cpu else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; data: {task.images.source}")  # fmt: skip

    # 1. trainer vs raw loop: interleaved pairs, so both halves of a pair see the same load
    raw, ours, ratios = [], [], []
    for _ in range(0 if args.no_raw else repeats):
        raw.append(steps / raw_loop_seconds(config, task, steps, device))
        ours.append(steps / trainer_seconds(config, task, steps))
        ratios.append(ours[-1] / raw[-1])
    raw_sps = statistics.median(raw) if raw else None
    ours_sps = statistics.median(ours) if ours else None
    ratio = statistics.median(ratios) if ratios else None
    if raw:
        print(
            f"\nGRU-200 (torch), batch 128, 20-step trials, {steps} steps x {repeats} pairs (median):"
        )
        print(f"  raw PyTorch loop : {raw_sps:8.2f} steps/s")
        print(f"  agents.train     : {ours_sps:8.2f} steps/s")
        print(f"  ratio            : {ratio:8.3f}  (median of per-pair ratios "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.9)")  # fmt: skip

    # 2. ensembles against one network at a time, per cell
    members = [int(k) for k in args.members.split(",")]
    rows = []
    for cell in [c.strip() for c in args.cells.split(",") if c.strip()]:
        cell_config = config.replace(cell=cell, model_family=args.family)
        naive_sps = 1 / (trainer_seconds(cell_config, task, steps, warmup=1) / steps)
        print(f"\n{args.family} {cell.upper()}-200 ensembles (agents.train, n_members=K) against "
              f"one network at a time ({naive_sps:.2f} member-steps/s):")  # fmt: skip
        print("      K   steps/s   member-steps/s   x naive   peak GPU memory")
        for k in members:
            k_steps = max(2, steps // max(1, k // 4)) if cpu else steps
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = trainer_seconds(cell_config.replace(n_members=k), task, k_steps, warmup=1)
            memory = (
                torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            )
            sps = k_steps / seconds
            row = {"family": args.family, "cell": cell, "K": k, "steps": k_steps,
                   "steps_per_s": sps, "member_steps_per_s": k * sps,
                   "naive_member_steps_per_s": naive_sps, "ratio_to_naive": k * sps / naive_sps,
                   "peak_gpu_gib": memory}  # fmt: skip
            rows.append(row)
            print(f"  {k:5d}  {sps:8.2f}   {k * sps:12.1f}   {row['ratio_to_naive']:7.2f}   "
                  f"{'-' if memory is None else f'{memory:.2f} GiB'}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": str(device), "torch": torch.__version__, "steps": steps,
            "raw_steps_per_s": raw_sps, "trainer_steps_per_s": ours_sps, "ratio": ratio,
            "raw_runs": raw, "trainer_runs": ours, "ratios": ratios, "ensembles": rows,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        }, indent=2))  # fmt: skip
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
