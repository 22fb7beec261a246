"""``memenv rollout``: step an environment with a scripted policy and report what happened."""

from __future__ import annotations

import argparse
import json

from memenv.cli_args import nonnegative_int, positive_int
from memenv.errors import UsageError

HELP = {
    "rollout": "step the environment with a scripted policy and print it",
}
"""One line per subcommand of this module for ``memenv --help`` (found through the
``memenv.commands`` entry points)."""

POLICIES = ("oracle", "random", "null")


def add_rollout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-id", default="DelayedRecall-MNIST-v0", help="a registered DelayedRecall-* env id"
    )
    parser.add_argument(
        "--num-envs", type=positive_int, default=128, help="trials stepped together"
    )
    parser.add_argument("--episodes", type=positive_int, default=4, help="episodes per sub-env")
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="oracle",
        help="oracle answers info['target'] (an upper bound); random picks uniformly; null waits",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--t-max", type=positive_int, default=None, help="override t_max")
    parser.add_argument("--n-classes", type=positive_int, default=None, help="override n_classes")


def run_rollout(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import numpy as np

    import memenv  # noqa: F401  (registers the ids)

    kwargs = {
        key: value
        for key, value in (("t_max", args.t_max), ("n_classes", args.n_classes))
        if value is not None
    }
    check_env_id(args.env_id)
    envs = gym.make_vec(args.env_id, num_envs=args.num_envs, **kwargs)
    rng = np.random.default_rng(args.seed)
    _, info = envs.reset(seed=args.seed)
    n_steps = envs.unwrapped.config.n_steps
    correct = trials = 0
    for _ in range(args.episodes):
        for _ in range(n_steps):
            if args.policy == "oracle":
                actions = info["target"]
            elif args.policy == "random":
                actions = rng.integers(0, 11, args.num_envs)
            else:
                actions = np.zeros(args.num_envs, dtype=np.int64)
            graded_resp = info["is_response"]
            _, rewards, terminated, _, info = envs.step(actions)
            correct += int(rewards[graded_resp].sum())
            trials += int(graded_resp.sum())
        _, info = envs.reset()
    summary = {
        "env_id": args.env_id,
        "data_source": envs.unwrapped.data_source,
        "config": envs.unwrapped.config.to_dict(),
        "policy": args.policy,
        "trials": trials,
        "response_accuracy": correct / max(trials, 1),
    }
    envs.close()
    print(json.dumps(summary, indent=2))
    return 0


def check_env_id(env_id: str) -> None:
    """Refuses an id that is not a registered memenv environment, suggesting close ones."""
    import difflib

    import gymnasium as gym

    import memenv  # noqa: F401  (registers the ids)

    ours = sorted(name for name in gym.registry if name.startswith("DelayedRecall-"))
    if env_id in ours:
        return
    close = difflib.get_close_matches(env_id, ours, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    what = "is not a memenv environment" if env_id in gym.registry else "is not registered"
    raise UsageError(f"--env-id {env_id!r} {what}; {hint}memenv's ids: {', '.join(ours)}")
