"""What Ray costs and gives a study, measured in one run on this machine.

1. Start-up: a plan of ``--noop-jobs`` jobs that do nothing, serially and on a local Ray
   instance with ``--jobs`` CPUs: the difference is Ray's start, scheduling and shut-down.
2. With ``--demo``: ``memenv reproduce --preset demo`` from an empty folder, serially and with
   ``--jobs N`` (a fresh folder each), wall time of each and their ratio.

    python benchmarks/study_executors.py --jobs 2 --demo --out runs/bench-executors
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from studies.executors import RayExecutor, SerialExecutor
from studies.jobs import Job, Plan, run_plan


def _nothing() -> None:
    return None


def noop_plan(folder: Path, n_jobs: int) -> Plan:
    jobs = [Job(f"train {k}", "train", _nothing, partial(bool, False)) for k in range(n_jobs)]
    return Plan("noop", folder, tuple(jobs))


def time_plan(folder: Path, n_jobs: int, executor) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    run_plan(noop_plan(folder, n_jobs), executor, progress=False)
    return time.perf_counter() - start


def time_demo(out: Path, jobs: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    memenv = Path(sys.executable).with_name("memenv")
    command = [str(memenv), "reproduce", "--preset", "demo", "--out", str(out), "--no-progress"]
    command += ["--jobs", str(jobs)] if jobs > 1 else []
    start = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--noop-jobs", type=int, default=20, help="jobs of the start-up plan")
    parser.add_argument("--demo", action="store_true", help="also time the demo study")
    parser.add_argument("--out", default="runs/bench-executors", help="scratch folder")
    args = parser.parse_args()
    out = Path(args.out)
    print(f"machine: {os.cpu_count()} CPUs; {args.noop_jobs} jobs that do nothing")
    serial = time_plan(out / "noop-serial", args.noop_jobs, SerialExecutor())
    ray = time_plan(out / "noop-ray", args.noop_jobs, RayExecutor(jobs=args.jobs))
    print(
        f"  serial {serial:.2f} s, Ray --jobs {args.jobs} {ray:.2f} s: Ray adds {ray - serial:.1f} s"
    )
    if args.demo:
        one = time_demo(out / "demo-serial", 1)
        many = time_demo(out / "demo-ray", args.jobs)
        print(f"memenv reproduce --preset demo: serial {one:.0f} s, --jobs {args.jobs} on Ray "
              f"{many:.0f} s, ratio {one / many:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
