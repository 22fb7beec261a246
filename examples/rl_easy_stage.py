"""Easy stage of delayed recall with stable-baselines3: 2 classes, 8-step trials.

RecurrentPPO (an LSTM policy: it can remember the image) against PPO (a memoryless MLP policy:
at the trigger it sees only noise, so it can only guess between the two classes, 50%).

    .venv/bin/python examples/rl_easy_stage.py            # both runs, about 1.5 minutes
    .venv/bin/python examples/rl_easy_stage.py --only recurrent-ppo

Writes ``runs/rl-easy/{recurrent-ppo,ppo}/`` (curve.jsonl, model.zip, summary.json,
learning_curve.png) and ``runs/rl-easy/comparison.png``. Results: docs/rl.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agents.rl.experiment import RLConfig, plot_runs, train_rl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/rl-easy", help="parent of the run directories")
    parser.add_argument("--timesteps", type=int, default=200_000, help="env steps per run")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-time cap per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("recurrent-ppo", "ppo"), help="run one of the two")
    args = parser.parse_args()

    algos = [args.only] if args.only else ["recurrent-ppo", "ppo"]
    for algo in algos:
        config = RLConfig(
            out_dir=str(Path(args.out) / algo),
            algo=algo,
            n_classes=2,
            n_steps=8,
            num_envs=64,
            rollout_steps=16,  # two whole 8-step episodes per sub-env per rollout
            batch_size=512,
            total_timesteps=args.timesteps,
            time_limit_s=args.minutes * 60,
            eval_every=5,
            seed=args.seed,
        )
        summary = train_rl(config)
        print(f"{algo}: {json.dumps(summary)}")
        print(f"wrote {config.out_dir}/")
    if len(algos) == 2:
        figure = plot_runs(
            {
                "RecurrentPPO (LSTM)": Path(args.out) / algos[0],
                "PPO (memoryless)": Path(args.out) / algos[1],
            },
            title="Easy stage: 2 classes, 8-step trials (held-out images, deterministic policy)",
        )
        figure.savefig(Path(args.out) / "comparison.png", dpi=100, bbox_inches="tight")
        print(f"wrote {Path(args.out) / 'comparison.png'}")


if __name__ == "__main__":
    main()
