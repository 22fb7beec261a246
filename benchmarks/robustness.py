"""Bad inputs against the ``memenv`` command line, classified as a user would meet them.

Each case runs ``python -m memenv.cli ...`` in a fresh process (working directory: the tree under
test, so ``--repo`` can point at an older checkout) and is classified as

* **clear error**: exit 2, no traceback, the last stderr line ``memenv CMD: error: ...``;
* **traceback**: a Python traceback reached the user;
* **hang / long work**: still running after ``--timeout`` seconds (e.g. training for minutes
  before a bad value is noticed);
* **silently accepted**: exit 0 on an input that should have been refused;
* **code ran**: a crafted file's payload executed (a marker file appeared), whatever the exit.

Usage::

    python benchmarks/robustness.py                 # this tree
    python benchmarks/robustness.py --repo /tmp/old # another checkout, same cases
    python benchmarks/robustness.py --json out.json

Disk-full and read-only cases mount small tmpfs folders and need root; without it they are
reported as skipped.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TINY = ["--hidden-size", "6", "--batch-size", "8", "--lr", "0.01", "--set", "lr_decay_step=none",
        "--checkpoint-every", "3", "--log-every", "3", "--device", "cpu", "--threads", "1",
        "--no-progress"]  # fmt: skip


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    marker: Path | None = None


class Payload:
    """Unpickling it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_idx(path: Path, array: np.ndarray, dims: tuple[int, ...] | None = None) -> None:
    dims = array.shape if dims is None else dims
    header = struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path.with_name(path.name + ".gz"), "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, side: int = 28, labels_max: int = 9) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        labels = np.repeat(np.arange(10), n) % (labels_max + 1)
        images = rng.integers(0, 255, (len(labels), side, side))
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def memenv(repo: Path, argv: list[str], env: dict[str, str], timeout: float):
    command = [sys.executable, "-m", "memenv.cli", *argv]
    full_env = {**os.environ, "PYTHONPATH": str(repo), **env}
    try:
        done = subprocess.run(
            command, cwd=repo, env=full_env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr


def classify(case: Case, code: int | None, err: str) -> str:
    if case.marker is not None and case.marker.exists():
        return "code ran"
    if code is None:
        return "hang / long work"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if code == 0:
        return "silently accepted"
    lines = err.strip().splitlines()
    command = case.argv[0]
    if code == 2 and lines and lines[-1].startswith(f"memenv {command}: error: "):
        return "clear error"
    return "unclear error"


def build_cases(work: Path, repo: Path, timeout: float) -> tuple[list[Case], list[str]]:
    data = write_mnist(work / "data")
    run = work / "run"
    code, err = memenv(
        repo, ["train", "--run-dir", str(run), "--data-root", str(data), "--steps", "6", *TINY],
        {}, timeout * 3,
    )  # fmt: skip
    if code != 0:
        raise SystemExit(f"could not train the template run:\n{err}")
    skipped: list[str] = []
    cases: list[Case] = []

    def run_copy(name: str) -> Path:
        target = work / "runs" / name
        shutil.copytree(run, target)
        return target

    def train_in(run_dir: Path, *extra: str) -> list[str]:
        return ["train", "--run-dir", str(run_dir), "--data-root", str(data), "--steps", "6",
                *TINY, *extra]  # fmt: skip

    # --- arguments
    arguments = [
        ["eval", str(run), "--n-trials", "0"], ["eval", str(run), "--n-trials", "-5"],
        ["eval", str(run), "--batch-size", "0"], ["eval", str(run), "--device", "tpu"],
        ["eval", str(run), "--delays", "0,4"], ["eval", str(run), "--delays", "a"],
        ["eval", str(run), "--t-stim", "-1"], ["eval", str(run), "--member", "-1"],
        ["train", "--threads", "-1", "--steps", "1"], ["train", "--threads", "0", "--steps", "1"],
        ["train", "--lr", "nan", "--steps", "1"], ["train", "--lr", "-1", "--steps", "1"],
        ["train", "--steps", "0"], ["train", "--steps", "1e3"], ["train", "--batch-size", "0"],
        ["train", "--members", "0"], ["train", "--cell", "transformer"],
        ["train", "--set", "lr"], ["train", "--set", "nope=1"], ["train", "--device", "tpu"],
        ["analyze", str(run), "--threads", "0"], ["analyze", str(run), "--trials", "0"],
        ["analyze", str(run), "--noise-scale", "-1"], ["analyze", str(run), "--member", "-2"],
        ["demo", "--n-trials", "0", "--out", str(work / "demo0")],
        ["demo", "--cells", "", "--out", str(work / "demo1")],
        ["demo", "--cells", "gru,xyz", "--out", str(work / "demo2")],
        ["rollout", "--num-envs", "0"], ["rollout", "--episodes", "0"],
        ["rollout", "--num-envs", "1000000000"], ["rollout", "--t-max", "99"],
        ["bench", "--seeds", "", "--out", str(work / "b0")],
        ["bench", "--jobs", "0", "--out", str(work / "b1")],
        ["regularize", str(run), "--mode", "center", "--lr", "-1"],
        ["regularize", str(run), "--mode", "center", "--lam", "nan"],
        ["regularize", str(run), "--mode", "center", "--device", "tpu"],
        ["reproduce", "--jobs", "0"], ["reproduce", "--seeds", "0"],
        ["reproduce", "--preset", "nope", "--out", str(work / "r0")],
    ]  # fmt: skip
    cases += [Case("arguments", " ".join(a[:1] + a[2:] if a[1] == str(run) else a), a)
              for a in arguments]  # fmt: skip

    # --- names of things
    cases += [
        Case("names", "rollout --env-id Nope-v0", ["rollout", "--env-id", "Nope-v0"]),
        Case("names", "rollout --env-id CartPole-v1", ["rollout", "--env-id", "CartPole-v1"]),
        Case("names", "bench --model os:getcwd",
             ["bench", "--archs", "", "--model", "os:getcwd", "--out", str(work / "b2"),
              "--total-steps", "2"]),
        Case("names", "bench --model nomodule:f",
             ["bench", "--archs", "", "--model", "nomodule:f", "--out", str(work / "b3")]),
        Case("names", "bench --archs nope", ["bench", "--archs", "nope", "--out", str(work / "b4")]),
    ]  # fmt: skip

    # --- damaged run directories
    damages = {
        "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "random bytes": lambda p: p.write_bytes(os.urandom(4000)),
        "empty": lambda p: p.write_bytes(b""),
        "text": lambda p: p.write_text("hello\n"),
    }
    for name, damage in damages.items():
        target = run_copy(f"model-{name}")
        damage(target / "model.pt")
        cases.append(Case("run directory", f"eval, model.pt {name}", ["eval", str(target)]))
        target = run_copy(f"resume-{name}")
        damage(target / "resume.pt")
        (target / "model.pt").unlink()
        cases.append(Case("run directory", f"train resume, resume.pt {name}", train_in(target)))
    import torch

    for name, change in {
        "wrong spec": lambda r: r["spec"].update(hidden_size=7),
        "NaN weights": lambda r: [t.fill_(float("nan")) for t in r["state_dict"].values()],
        "no state_dict": lambda r: r.pop("state_dict"),
    }.items():
        target = run_copy(f"record-{name.replace(' ', '-')}")
        record = torch.load(target / "model.pt", weights_only=True)
        change(record)
        torch.save(record, target / "model.pt")
        cases.append(Case("run directory", f"eval, model.pt {name}",
                          ["eval", str(target), "--n-trials", "20"]))  # fmt: skip
    for name, text in {
        "not JSON": "{",
        "a JSON list": "[1, 2]",
        "bad value": '{"hidden_size": -1}',
    }.items():
        target = run_copy(f"config-{name.replace(' ', '-')}")
        (target / "config.json").write_text(text)
        cases.append(Case("run directory", f"analyze, config.json {name}",
                          ["analyze", str(target), "--no-progress"]))  # fmt: skip
        cases.append(Case("run directory", f"train resume, config.json {name}", train_in(target)))
    cases.append(Case("run directory", "analyze --member 3",
                      ["analyze", str(run), "--member", "3", "--no-progress"]))  # fmt: skip
    cases.append(Case("run directory", "eval --member 3", ["eval", str(run), "--member", "3"]))
    blocker = work / "blocker"
    blocker.write_text("")
    cases.append(Case("output location", "train --run-dir FILE", train_in(blocker)))
    cases.append(Case("output location", "train --run-dir FILE/sub", train_in(blocker / "sub")))
    cases.append(
        Case("output location", "eval --out FILE", ["eval", str(run), "--out", str(blocker)])
    )

    mounts = _tmpfs_mounts(work, skipped)
    if mounts:
        cases.append(Case("output location", "train into a read-only folder",
                          train_in(mounts["ro"] / "run")))  # fmt: skip
        cases.append(Case("output location", "train onto a full disk",
                          train_in(mounts["full"] / "run")))  # fmt: skip

    # --- crafted files
    for name, where in (("resume.pt", "resume.pt"), ("model.pt", "model.pt"),
                        ("checkpoint", "checkpoints/step_000003.pt")):  # fmt: skip
        target = run_copy(f"evil-{name}")
        marker = work / f"PWNED-{name}"
        torch.save({"format": "memenv-agents/1", "x": Payload(marker)}, target / where)
        if name == "resume.pt":
            (target / "model.pt").unlink()
            argv = train_in(target)
        else:
            argv = ["eval", str(target / where if name == "checkpoint" else target)]
        cases.append(Case("crafted files", f"{name} with a payload", argv, marker=marker))
    cifar = work / "evil-cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    marker = work / "PWNED-cifar"
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / batch).write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": [0]}))
    cases.append(Case("crafted files", "CIFAR-10 batch with a payload",
                      ["train", "--dataset", "cifar10", "--data-root", str(cifar.parent),
                       "--preset", "paper", "--steps", "1", "--run-dir", str(work / "c0"),
                       "--device", "cpu", "--no-progress"], marker=marker))  # fmt: skip

    # --- data locations and formats
    small = write_mnist(work / "ten-by-ten", side=10)
    wide_labels = write_mnist(work / "labels", labels_max=9)
    write_idx(wide_labels / "train-labels-idx1-ubyte", np.full(120, 12))
    overflow = write_mnist(work / "overflow")
    write_idx(overflow / "train-images-idx3-ubyte", np.zeros(10), dims=(2**32 - 1,) * 3)
    truncated = write_mnist(work / "truncated")
    images = truncated / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:200])
    for name, root, env in (
        ("--data-root missing", str(work / "nonexistent"), {}),
        ("--data-root a file", str(blocker), {}),
        ("--data-root without MNIST", str(work / "runs"), {}),
        ("MEMENV_DATA missing", None, {"MEMENV_DATA": str(work / "nonexistent")}),
        ("10x10 IDX images", str(small), {}),
        ("labels out of range", str(wide_labels), {}),
        ("IDX header overflow", str(overflow), {}),
        ("truncated gzip", str(truncated), {}),
    ):
        argv = ["train", "--run-dir", str(work / f"d-{len(cases)}"), "--steps", "2", *TINY]
        if root is not None:
            argv += ["--data-root", root]
        cases.append(Case("data", f"train, {name}", argv, env=env))
    return cases, skipped


def _tmpfs_mounts(work: Path, skipped: list[str]) -> dict[str, Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        skipped.append("read-only and disk-full cases (need root and mount)")
        return {}
    mounts = {"ro": work / "ro", "full": work / "full"}
    for path in mounts.values():
        path.mkdir()
    options = {"ro": "ro,size=64k", "full": "size=64k"}
    for key, path in mounts.items():
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options[key], "tmpfs", str(path)],
                              capture_output=True)  # fmt: skip
        if done.returncode != 0:
            skipped.append(f"{key} case (mount failed: {done.stderr.decode().strip()})")
            return {}
    return mounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--jobs", type=int, default=2, help="cases at once")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="memenv-robustness-"))
    cache = {"MEMENV_CACHE": str(work / "cache")}
    os.environ.update(cache)
    started = time.perf_counter()
    try:
        cases, skipped = build_cases(work, args.repo.resolve(), args.timeout)

        def run(case: Case) -> tuple[Case, str, str]:
            code, err = memenv(args.repo.resolve(), case.argv, case.env, args.timeout)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            return case, classify(case, code, err), last

        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = list(pool.map(run, cases))
    finally:
        for name in ("ro", "full"):
            if (work / name).is_mount():
                subprocess.run(["umount", str(work / name)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    kinds = ["clear error", "unclear error", "traceback", "hang / long work",
             "silently accepted", "code ran"]  # fmt: skip
    table = collections.defaultdict(collections.Counter)
    for case, kind, _ in outcomes:
        table[case.category][kind] += 1
    print(f"tree: {args.repo.resolve()}  ({time.perf_counter() - started:.0f} s)")
    print("| category | tried | " + " | ".join(kinds) + " |")
    print("|---|---:|" + "---:|" * len(kinds))
    for category, counts in list(table.items()) + [
        ("all", sum(table.values(), collections.Counter()))
    ]:
        row = [str(counts[k]) for k in kinds]
        print(f"| {category} | {sum(counts.values())} | " + " | ".join(row) + " |")
    for note in skipped:
        print(f"skipped: {note}")
    print()
    for case, kind, last in outcomes:
        if kind != "clear error":
            print(f"- [{kind}] {case.category}: {case.name}: {last[:160]}")
    if args.json:
        rows = [{"category": c.category, "case": c.name, "outcome": k, "stderr_last_line": last}
                for c, k, last in outcomes]  # fmt: skip
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
