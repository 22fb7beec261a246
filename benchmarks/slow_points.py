"""Benchmark: the paper's Adam slow-point search against the batched Levenberg-Marquardt one.

Both methods start from the same states (the settled hidden states of ``--n-states`` trials,
the class-centre protocol of `analysis.centers` without averaging) of a trained GRU, under the
mean noise frame, in the same dtype, on the same machine, one after the other:

1. **Adam**: the paper's search (lr 1e-3, / 10 after 40% of the iterations, hidden state
   clipped to [-1, 1]) for ``--adam-iterations`` iterations (the paper: 100,000).
2. **Newton, same speed**: the batched Levenberg-Marquardt search, each state stopping as soon
   as its speed is at most the speed Adam ended with from the same start.
3. **Newton, default**: the same search with its default settings (to a fixed point's
   ``N (10 eps)^2``, a local minimum of the speed, or 50 Jacobians per state).

It prints wall times, speed quantiles and the ratios ``t_adam / t_newton``. Target
(issue 5): Newton >= 10x faster than Adam at equal or lower final speed.

Usage::

    python benchmarks/slow_points.py --run-dir RUN_DIR         # a trained run (agents.train)
    python benchmarks/slow_points.py                           # trains a fast-preset 200-unit
                                                               # GRU into runs/bench-gru200

Timings on a shared machine vary with its load; the ratio is measured in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from analysis.centers import class_centers
from analysis.protocol import FlatDynamics
from analysis.search import adam_search, newton_search

PAPER_ADAM_ITERATIONS = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=None, help="a trained run (default: train one)")
    parser.add_argument(
        "--train-dir", default="runs/bench-gru200", help="where to train when --run-dir is absent"
    )
    parser.add_argument("--hidden-size", type=int, default=200, help="units of a trained GRU")
    parser.add_argument(
        "--train-steps", type=int, default=2500, help="steps of the fast preset training"
    )
    parser.add_argument("--n-states", type=int, default=1000, help="initial states (x 10 classes)")
    parser.add_argument("--adam-iterations", type=int, default=10_000, help="Adam iterations")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    return parser.parse_args(argv)


def trained_model(args: argparse.Namespace) -> tuple[torch.nn.Module, Path]:
    from agents.checkpoint import load_model

    if args.run_dir is not None:
        return load_model(args.run_dir, member=0 if _is_ensemble(args.run_dir) else None), Path(
            args.run_dir
        )
    from agents.config import preset
    from agents.trainer import train

    run_dir = Path(args.train_dir)
    if not (run_dir / "model.pt").is_file():
        config = preset(
            "fast", cell="gru", hidden_size=args.hidden_size, total_steps=args.train_steps,
            lr_decay_step=int(0.8 * args.train_steps), device="cpu",
        )  # fmt: skip
        print(
            f"training a {args.hidden_size}-unit GRU (fast preset) into {run_dir} ...", flush=True
        )
        train(config, run_dir, progress=True)
    return load_model(run_dir), run_dir


def _is_ensemble(run_dir: str) -> bool:
    config = json.loads((Path(run_dir) / "config.json").read_text())
    return int(config.get("n_members", 1)) > 1


def quantiles(speeds: np.ndarray) -> str:
    q50, q90, q100 = np.quantile(speeds, [0.5, 0.9, 1.0])
    return f"median {q50:9.2e}  90% {q90:9.2e}  max {q100:9.2e}"


def report(name: str, result) -> None:
    iterations = int(np.median(result.iterations_b.cpu().numpy()))
    speeds = result.speeds_b.double().cpu().numpy()
    print(f"{name:<22}{result.seconds:9.2f}  {iterations:>20d}  {quantiles(speeds)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    model, run_dir = trained_model(args)
    from agents.config import TrainConfig
    from studies.run_analysis import analysis_task

    task = analysis_task(TrainConfig.from_json(run_dir / "config.json"), 10)
    dynamics = FlatDynamics(model, dtype=dtype)
    per_class = max(1, args.n_states // 10)
    centers = class_centers(dynamics, task, n_per_class=per_class, seed=args.seed)
    initial_bxn = dynamics.as_states(centers.states)
    x_1xd = dynamics.as_input(task.mean_frame)
    n_states, n_units = initial_bxn.shape
    print(
        f"model: {run_dir} ({n_units} state units); {n_states} initial states; {args.dtype}; "
        f"{torch.get_num_threads()} torch threads"
    )
    newton_search(dynamics, initial_bxn[:4], x_1xd)  # warm-up (vmap/jacrev set-up), untimed

    print(f"\n{'method':<22}{'wall s':>9}  {'iterations (median)':>20}  final speed q", flush=True)
    adam = adam_search(
        dynamics, initial_bxn, x_1xd, iterations=args.adam_iterations,
        lr_drop_at=int(0.4 * args.adam_iterations),
    )  # fmt: skip
    report("adam", adam)
    matched = newton_search(dynamics, initial_bxn, x_1xd, speed_tol=adam.speeds_b)
    report("newton (same speed)", matched)
    full = newton_search(dynamics, initial_bxn, x_1xd)
    report("newton (default)", full)

    q_adam = adam.speeds_b.double().cpu().numpy()
    q_matched = matched.speeds_b.double().cpu().numpy()
    q_full = full.speeds_b.double().cpu().numpy()
    reached = float(np.mean(q_matched <= q_adam))
    reached_full = float(np.mean(q_full <= q_adam))
    per_iteration = adam.seconds / max(args.adam_iterations, 1)
    ratio = adam.seconds / matched.seconds
    ratio_full = adam.seconds / full.seconds
    print(
        f"\nnewton reached Adam's final speed on {100 * reached:.1f}% of the states "
        f"(default run: lower or equal on {100 * reached_full:.1f}%)"
    )
    print(f"ratio t_adam / t_newton (same speed): {ratio:.1f}x")
    print(f"ratio t_adam / t_newton (default):    {ratio_full:.1f}x")
    print(
        f"the paper's {PAPER_ADAM_ITERATIONS:,} Adam iterations would take about "
        f"{per_iteration * PAPER_ADAM_ITERATIONS:.0f} s here ({per_iteration * 1e3:.1f} ms each)"
    )
    target_met = ratio >= 10 and reached >= 0.99
    print(f"target (>= 10x at equal or lower speed): {'met' if target_met else 'NOT met'}")
    if args.json:
        record = {
            "run_dir": str(run_dir),
            "n_states": n_states,
            "n_state_units": n_units,
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "adam_iterations": args.adam_iterations,
            "seconds": {
                "adam": adam.seconds,
                "newton_same_speed": matched.seconds,
                "newton_default": full.seconds,
            },  # fmt: skip
            "median_speed": {
                "adam": float(np.median(q_adam)),
                "newton_same_speed": float(np.median(q_matched)),
                "newton_default": float(np.median(q_full)),
            },  # fmt: skip
            "reached_fraction": reached,
            "ratio_same_speed": ratio,
            "ratio_converged": ratio_full,
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
