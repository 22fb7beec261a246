"""``kill -9`` at random moments of ``memenv train``, then resume: the same weights, bit for bit."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

ARGS = [
    "--hidden-size", "6", "--batch-size", "8", "--steps", "400", "--lr", "0.01",
    "--set", "lr_decay_step=none", "--checkpoint-every", "20", "--log-every", "10",
    "--device", "cpu", "--threads", "1", "--no-progress",
]  # fmt: skip


def _train_command(run_dir, data_root) -> list[str]:
    return [sys.executable, "-m", "memenv.cli", "train", "--run-dir", str(run_dir),
            "--data-root", str(data_root), *ARGS]  # fmt: skip


def _metrics(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


@pytest.mark.slow
def test_training_killed_at_random_moments_resumes_to_the_same_weights(
    session_mnist_root, tmp_path
):
    reference = tmp_path / "reference"
    subprocess.run(_train_command(reference, session_mnist_root), check=True, timeout=300)

    run_dir = tmp_path / "killed"
    rng = random.Random(20)
    interrupted = 0
    for _ in range(4):
        process = subprocess.Popen(
            _train_command(run_dir, session_mnist_root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not (run_dir / "run.json").is_file() and process.poll() is None:
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.4))  # into the step loop, now and then into a write
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        interrupted += process.returncode == -signal.SIGKILL and not (run_dir / "model.pt").exists()
    subprocess.run(_train_command(run_dir, session_mnist_root), check=True, timeout=300)

    assert interrupted >= 2, f"only {interrupted} kills landed before training ended"
    want = torch.load(reference / "model.pt", weights_only=True)["state_dict"]
    got = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    assert want.keys() == got.keys()
    assert all(torch.equal(want[key], got[key]) for key in want)
    assert _metrics(run_dir) == _metrics(reference)
    assert not list(run_dir.rglob("*.tmp")), "temporary files of killed writers were left"
