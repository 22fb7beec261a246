"""Accuracy against delay of a trained SB3 run, on held-out images, in the project's format.

    .venv/bin/python examples/rl_evaluate_delays.py runs/rl-full
    .venv/bin/python examples/rl_evaluate_delays.py runs/rl-full --delays 4 8 16 50 --trials 500

Loads ``RUN/model.zip``, runs `agents.rl.evaluate.evaluate_sb3_delays` (stimulus at t = 0,
trigger at t = delay, one episode of delay + 1 steps per trial, deterministic policy, test
split), prints the markdown table and writes ``RUN/delay_accuracy.json`` (an
`agents.evaluate.DelayAccuracy`, the same format as the supervised agents' evaluation).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from agents.rl.evaluate import evaluate_sb3_delays
from agents.rl.experiment import load_model, read_rl_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory written by train_rl")
    parser.add_argument("--delays", type=int, nargs="+", default=[4, 8, 12, 16, 19, 30, 50, 100])
    parser.add_argument("--trials", type=int, default=500, help="episodes per delay")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    run = Path(args.run)
    config = read_rl_config(run / "config.json")
    model = load_model(run)
    start = time.perf_counter()
    result = evaluate_sb3_delays(
        model,
        args.delays,
        env_id=config.env_id,
        n_trials=args.trials,
        n_classes=config.n_classes,
        seed=args.seed,
        **({"root": config.data_root} if config.data_root else {}),
    )
    print(result.markdown())
    print(f"({time.perf_counter() - start:.0f} s; data: {result.meta['data_source']})")
    print(f"wrote {result.save(run / 'delay_accuracy.json')}")


if __name__ == "__main__":
    main()
