"""Damaged run directories and unusable output locations: one clear line, exit 2, never a
traceback; and the temporary files of killed writers are cleaned up."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch
from cli_helpers import memenv, train_argv

import agents.checkpoint as ckpt


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path):
    path.write_bytes(os.urandom(4000))


def _empty(path):
    path.write_bytes(b"")


def _text(path):
    path.write_text("not a checkpoint\n")


def _edit_record(change):
    def damage(path):
        record = torch.load(path, weights_only=True)
        change(record)
        torch.save(record, path)

    return damage


def _wrong_spec(record):
    record["spec"]["hidden_size"] = 7


def _nan_weights(record):
    for tensor in record["state_dict"].values():
        tensor.fill_(float("nan"))


def _no_state(record):
    record["state_dict"] = "gone"


def _not_a_dict(record):
    record.clear()


MODEL_DAMAGE = {
    "truncated": (_truncate, "truncated or damaged"),
    "random-bytes": (_random_bytes, "not a PyTorch file"),
    "empty": (_empty, "is empty"),
    "text": (_text, "not a PyTorch file"),
    "wrong-spec": (_edit_record(_wrong_spec), "do not fit"),
    "nan-weights": (_edit_record(_nan_weights), "NaN"),
    "no-state-dict": (_edit_record(_no_state), "state_dict"),
    "empty-record": (_edit_record(_not_a_dict), "not a memenv agents checkpoint"),
}


@pytest.mark.parametrize("damage", MODEL_DAMAGE, ids=list(MODEL_DAMAGE))
def test_eval_names_a_damaged_model_file(run_dir, damage):
    apply, says = MODEL_DAMAGE[damage]
    apply(run_dir / "model.pt")
    outcome = memenv("eval", run_dir, "--n-trials", "4", "--no-progress")
    outcome.assert_clear_error("eval", "model.pt", says)


CONFIG_DAMAGE = {
    "not-json": ("{ 'hidden_size': ", "not valid JSON"),
    "a-list": ("[1, 2, 3]", "JSON list"),
    "bad-value": (json.dumps({"hidden_size": -3}), "hidden_size"),
    "unknown-field": (json.dumps({"units": 3}), "units"),
}


@pytest.mark.parametrize("damage", CONFIG_DAMAGE, ids=list(CONFIG_DAMAGE))
def test_analyze_and_train_name_a_damaged_config(run_dir, session_mnist_root, damage):
    text, says = CONFIG_DAMAGE[damage]
    (run_dir / "config.json").write_text(text)
    memenv("analyze", run_dir, "--no-progress").assert_clear_error("analyze", "config.json", says)
    memenv(*train_argv(run_dir, session_mnist_root)).assert_clear_error(
        "train", "config.json", says
    )


def test_a_member_that_does_not_exist(run_dir):
    memenv("analyze", run_dir, "--member", "3", "--no-progress").assert_clear_error(
        "analyze", "member 3"
    )
    memenv("eval", run_dir, "--member", "3", "--no-progress").assert_clear_error("eval", "member 3")


def test_run_dir_that_is_a_file_or_lies_under_one(tmp_path, session_mnist_root):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    memenv(*train_argv(blocker, session_mnist_root)).assert_clear_error(
        "train", "blocker", "is a file"
    )
    memenv(*train_argv(blocker / "run", session_mnist_root)).assert_clear_error(
        "train", "blocker", "is a file, not a folder"
    )


@pytest.mark.parametrize(
    ("code", "says"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "permission")],
    ids=["disk-full", "read-only", "no-permission"],
)
def test_unwritable_output_is_one_line_naming_the_file(
    tmp_path, session_mnist_root, monkeypatch, code, says
):
    def refuse(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(code, os.strerror(code), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(ckpt, "open", refuse, raising=False)
    outcome = memenv(*train_argv(tmp_path / "run", session_mnist_root))
    outcome.assert_clear_error("train", str(tmp_path / "run"), says)


def test_a_killed_writers_temporary_files_are_removed_at_the_next_start(
    run_dir, session_mnist_root
):
    dead = 2**22 + 17  # above any pid_max Linux allows: no such process
    stale = [
        run_dir / f".resume.pt.{dead}@{ckpt._HOST}.tmp",
        run_dir / "checkpoints" / f".step_000003.pt.{dead}.tmp",  # the old naming
    ]
    kept = [
        run_dir / f".resume.pt.{os.getpid()}@{ckpt._HOST}.tmp",  # a live writer's
        run_dir / f".resume.pt.{dead}@another-machine.tmp",  # can't tell from here
    ]
    for path in stale + kept:
        path.write_bytes(b"partial")

    assert memenv(*train_argv(run_dir, session_mnist_root)).code == 0
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
