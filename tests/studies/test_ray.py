"""Studies on a local Ray instance (2 CPUs): the same results as serially, a killed worker
retried, an interrupted driver resumed, a failure recorded while the other jobs go on."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from agents.checkpoint import list_checkpoints  # noqa: E402
from studies.executors import RayExecutor  # noqa: E402
from studies.jobs import Job, Plan, read_records, run_plan, running_file  # noqa: E402
from studies.reproduce import ReproduceConfig, reproduce_plan, run_reproduce  # noqa: E402

# the jobs defined here travel to Ray's workers by value: they cannot import this test module
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _config(mnist_root, **changes) -> ReproduceConfig:
    values = dict(
        preset="tiny", cells=("gru",), curricula=("none", "vocu"), reg_modes=("center",),
        device="cpu", data_root=str(mnist_root),
    )  # fmt: skip
    values.update(changes)
    return ReproduceConfig(**values)


def _results(out: Path) -> dict:
    return json.loads((out / "report" / "results.json").read_text())


class Diverged(RuntimeError):
    pass


def _fail() -> None:
    raise Diverged("loss is nan")


def _write(path: Path) -> None:
    path.write_text("done")


def test_a_failure_is_recorded_and_the_independent_jobs_still_run(tmp_path):
    jobs = (
        Job("train a", "train", _fail, (tmp_path / "a").is_file, failures=(Diverged,)),
        Job("evaluate a", "evaluate", _write, (tmp_path / "b").is_file, ("train a",)),
        Job("train c", "train", lambda: _write(tmp_path / "c"), (tmp_path / "c").is_file),
    )
    outcomes = run_plan(Plan("t", tmp_path, jobs), RayExecutor(jobs=2), progress=False)
    status = {o.key: o.status for o in outcomes}
    assert status == {"train a": "failed", "evaluate a": "skipped", "train c": "done"}
    assert (tmp_path / "c").is_file()
    assert sorted((r["job"], r["status"]) for r in read_records(tmp_path)) == [
        ("train a", "failed"), ("train c", "done"),
    ]  # fmt: skip
    assert not ray.is_initialized()  # the instance started for the call is stopped


def test_reproduce_on_ray_after_a_killed_worker_and_an_interrupted_driver(tmp_path, mnist_root):
    # long enough to kill the training after its first checkpoint and before its end
    train = {"hidden_size": 32, "batch_size": 32, "total_steps": 300, "checkpoint_every": 50}
    config = _config(mnist_root, curricula=("none",), train_overrides=train)
    serial = run_reproduce(config, tmp_path / "serial", progress=False)

    out = tmp_path / "ray"
    run_dir = out / "train" / "gru-none"
    killed: dict[str, object] = {}

    def kill_after_first_checkpoint() -> None:
        marker = running_file(out, "train gru none")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (run_dir / "model.pt").exists():
            # a checkpoint after step 0 that the resume file (written after it) includes
            resume = run_dir / "resume.pt"
            saved = resume.stat().st_mtime_ns if resume.is_file() else -1
            later = {path: path.stat().st_mtime_ns for step, path in list_checkpoints(run_dir)
                     if step > 0 and path.stat().st_mtime_ns <= saved}  # fmt: skip
            if marker.is_file() and later:
                killed["checkpoints"] = later
                os.kill(json.loads(marker.read_text())["pid"], signal.SIGKILL)
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_after_first_checkpoint)
    watcher.start()
    seen = []

    def interrupt_after_three(line: str) -> None:  # Ctrl-C on the driver, three jobs in
        seen.append(line)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_reproduce(config, out, progress=False, jobs=2, threads=1, log=interrupt_after_three)
    watcher.join()
    assert "checkpoints" in killed, "the training ended before its worker could be killed"
    assert not ray.is_initialized()
    # Ray retried the killed training within that call: its record, or its marker if the
    # interrupt came first, shows a second attempt
    first = [r for r in read_records(out) if r["job"] == "train gru none"]
    marker = running_file(out, "train gru none")
    tries = first[0]["attempt"] if first else json.loads(marker.read_text())["attempt"]
    assert tries >= 2
    done_before = {r["job"] for r in read_records(out) if r["status"] == "done"}
    assert len(done_before) >= 2 and not (out / "report").exists()
    outputs = [job.done.args[0] for job in reproduce_plan(config, out).jobs if not job.always]
    stamps = {path: path.stat().st_mtime_ns for path in outputs if path.is_file()}
    assert len(stamps) == len(done_before)

    resumed = run_reproduce(config, out, progress=False, jobs=2, threads=1)
    assert not set(resumed["ran"]) & done_before  # nothing done is redone
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    records = read_records(out)
    train_record = next(r for r in records if r["job"] == "train gru none")
    assert train_record["attempt"] >= 2
    for path, mtime in killed["checkpoints"].items():  # ... resumed, not restarted
        assert path.stat().st_mtime_ns == mtime

    # the same study as serially: the same networks, numbers, claims and failures
    same, other = _results(tmp_path / "serial"), _results(out)
    for key in ("networks", "accuracy", "claims", "regularize", "failures"):
        assert other.get(key) == same.get(key), key
    assert sorted(serial["ran"]) == sorted(
        {r["job"] for r in records if r["status"] == "done"} | {"report"}
    )
    import torch

    ours = torch.load(run_dir / "model.pt", weights_only=True)
    theirs = torch.load(tmp_path / "serial" / "train" / "gru-none" / "model.pt", weights_only=True)
    for name, tensor in theirs.items():
        if isinstance(tensor, torch.Tensor):
            np.testing.assert_array_equal(ours[name].numpy(), tensor.numpy())


def test_bench_on_ray_gives_the_serial_table(tmp_path, mnist_root, capsys):
    from memenv.cli import main

    def bench(folder: str, *extra: str) -> dict:
        argv = ["bench", "--archs", "gru,mingru", "--seeds", "0,1", "--hidden-size", "8",
                "--steps", "4", "--batch-size", "8", "--data-root", str(mnist_root),
                "--device", "cpu", "--n-trials", "8", "--eval-batch-size", "8",
                "--anchor-trials", "2", "--out", str(tmp_path / folder), "--no-progress",
                *extra]  # fmt: skip
        assert main(argv) == 0
        return json.loads((tmp_path / folder / "bench_table.json").read_text())

    serial = bench("serial", "--threads", "1")
    parallel = bench("ray", "--jobs", "2")
    assert "bench_table.md" in capsys.readouterr().out

    def untimed(table: dict) -> list[dict]:  # wall times differ from run to run
        return [{k: v for k, v in row.items() if not k.startswith(("train_s", "eval_s"))}
                for row in table["rows"]]  # fmt: skip

    assert untimed(parallel) == untimed(serial)
    assert untimed(serial)[0]["accuracy"] and "train_s" in serial["rows"][0]
    done = {r["job"] for r in read_records(tmp_path / "ray") if r["status"] == "done"}
    assert done == {"bench gru seed 0", "bench mingru seed 0", "bench gru seed 1",
                    "bench mingru seed 1", "report"}  # fmt: skip
