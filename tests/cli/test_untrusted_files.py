"""No file memenv reads runs code: crafted pickles in a run directory are refused, unexecuted."""

from __future__ import annotations

import torch
from cli_helpers import RunsCode, memenv, train_argv

from agents.checkpoint import load_tensor_file
from memenv.errors import UnsafeFileError


def test_a_crafted_resume_file_is_refused_and_never_runs(run_dir, session_mnist_root, tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"x": RunsCode(marker)}, run_dir / "resume.pt")
    (run_dir / "model.pt").unlink()  # an unfinished run resumes from resume.pt

    outcome = memenv(*train_argv(run_dir, session_mnist_root))

    outcome.assert_clear_error("train", "refused to load", "resume.pt", "posix.system")
    assert not marker.exists()


def test_a_crafted_model_file_is_refused_by_eval_and_analyze(run_dir, tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"format": "memenv-agents/1", "x": RunsCode(marker)}, run_dir / "model.pt")

    memenv("eval", run_dir, "--n-trials", "4", "--no-progress").assert_clear_error(
        "eval", "refused to load", "model.pt"
    )
    memenv("analyze", run_dir, "--no-progress", "--no-backtrack").assert_clear_error(
        "analyze", "refused to load", "model.pt"
    )
    assert not marker.exists()


def test_a_crafted_checkpoint_is_refused(run_dir, tmp_path):
    marker = tmp_path / "PWNED"
    checkpoint = run_dir / "checkpoints" / "step_000003.pt"
    torch.save({"x": RunsCode(marker)}, checkpoint)

    memenv("eval", checkpoint, "--n-trials", "4", "--no-progress").assert_clear_error(
        "eval", "refused to load", "step_000003.pt"
    )
    assert not marker.exists()


def test_the_loader_admits_tensors_and_plain_containers_only(tmp_path):
    plain = {"a": torch.ones(2), "b": [1, 2.5, "x", None, (True, False)], "c": {"d": {}}}
    torch.save(plain, tmp_path / "plain.pt")
    loaded = load_tensor_file(tmp_path / "plain.pt")
    assert torch.equal(loaded["a"], plain["a"]) and loaded["b"] == plain["b"]

    torch.save({"path": tmp_path}, tmp_path / "object.pt")  # harmless, but not plain
    try:
        load_tensor_file(tmp_path / "object.pt")
    except UnsafeFileError as error:
        assert "object.pt" in str(error) and "pathlib" in str(error)
    else:
        raise AssertionError("a pickled Path was loaded")
