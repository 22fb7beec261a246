"""The full delayed-recall task with stable-baselines3: 10 classes, 20-step trials.

RecurrentPPO on the vector-native env (64 sub-envs through `SB3VecEnv`) with an adaptive
vocabulary curriculum (VoCu): training starts with classes {0, 1} and adds the next class
whenever the training accuracy over the last 2,000 trials reaches 80%. The held-out accuracy
(test images, deterministic policy, all 10 classes) is logged every 20 rollouts.

    .venv/bin/python examples/rl_full_task.py                 # 30 minutes of wall time
    .venv/bin/python examples/rl_full_task.py --minutes 10

Writes ``runs/rl-full/`` (curve.jsonl, model.zip, summary.json, learning_curve.png).
Results: docs/rl.md.
"""

from __future__ import annotations

import argparse
import json

from agents.rl.experiment import RLConfig, train_rl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/rl-full", help="run directory")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget")
    parser.add_argument("--curriculum", default="adaptive-vocu", choices=("adaptive-vocu", "none"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = RLConfig(
        out_dir=args.out,
        n_classes=10,
        n_steps=20,
        curriculum=args.curriculum,
        threshold=0.8,
        window=2000,
        num_envs=64,
        rollout_steps=20,  # one whole episode per sub-env per rollout
        batch_size=640,
        time_limit_s=args.minutes * 60,
        eval_every=20,
        seed=args.seed,
    )
    summary = train_rl(config)
    print(json.dumps(summary, indent=2))
    print(f"wrote {config.out_dir}/")


if __name__ == "__main__":
    main()
