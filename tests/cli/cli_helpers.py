"""Calling ``memenv`` in-process and checking that a failure is one clear line."""

from __future__ import annotations

import io
import os
import pickle
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from memenv.cli import main

# the template run's TrainConfig fields besides the fast preset's; `train_argv` spells them
TEMPLATE_FIELDS = dict(
    hidden_size=6, batch_size=8, total_steps=6, lr=1e-2, lr_decay_step=None,
    checkpoint_every=3, log_every=3, device="cpu",
)  # fmt: skip


def train_argv(run_dir: Path, data_root: Path) -> list[str]:
    """``memenv train`` arguments that continue the template run in ``run_dir``."""
    return [
        "train", "--run-dir", str(run_dir), "--data-root", str(data_root), "--hidden-size", "6",
        "--batch-size", "8", "--steps", "6", "--lr", "0.01", "--set", "lr_decay_step=none",
        "--checkpoint-every", "3", "--log-every", "3", "--device", "cpu", "--no-progress",
    ]  # fmt: skip


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def assert_clear_error(self, command: str, *named: str) -> None:
        """Exit 2, a last stderr line ``memenv COMMAND: error: ...`` naming each of ``named``."""
        assert self.code == 2, (self.code, self.err[-2000:])
        assert "Traceback" not in self.err, self.err
        last = self.err.strip().splitlines()[-1]
        assert last.startswith(f"memenv {command}: error: "), last
        for text in named:
            assert text in last, (text, last)


def memenv(*argv: str) -> Outcome:
    """Runs ``memenv ARGV`` in this process; argparse's exit becomes the exit code."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return Outcome(code, out.getvalue(), err.getvalue())


class RunsCode:
    """A pickled object whose unpickling creates ``marker``: the attack of a crafted file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps({"x": RunsCode(marker)})
