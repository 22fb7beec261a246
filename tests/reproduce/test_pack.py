"""Packing a study into a few files of bounded size, and unpacking its weights."""

from __future__ import annotations

import tarfile

import pytest
import torch

from memenv.errors import UsageError
from studies.pack import pack_study, unpack_weights


def _study(tmp_path, weight_bytes):
    out = tmp_path / "study"
    report = out / "report"
    report.mkdir(parents=True)
    (report / "report.md").write_text("# report\n")
    (report / "accuracy.png").write_bytes(b"\x89PNG" + bytes(100))
    (out / "config.json").write_text("{}")
    for run in ("gru-vocu", "gru-decu"):
        (out / "train" / run).mkdir(parents=True)
        generator = torch.Generator().manual_seed(len(run))  # incompressible weights
        weights = torch.rand(weight_bytes // 4, generator=generator)
        torch.save({"weights": weights}, out / "train" / run / "model.pt")
        (out / "train" / run / "checkpoints").mkdir()
        torch.save({"weights": weights}, out / "train" / run / "checkpoints" / "step_0.pt")
    return out, report


def test_small_study_packs_into_two_files(tmp_path):
    out, report = _study(tmp_path, 40_000)
    files = pack_study(out, report, tmp_path / "pack")
    assert [f.name for f in files] == ["report.tar.gz", "weights.tar.xz"]
    with tarfile.open(files[0]) as archive:
        assert sorted(archive.getnames()) == [
            "report", "report/accuracy.png", "report/report.md", "study/config.json",
        ]  # fmt: skip
    models = unpack_weights(tmp_path / "pack", tmp_path / "back")
    assert sorted(str(m.relative_to(tmp_path / "back")) for m in models) == [
        "train/gru-decu/model.pt", "train/gru-vocu/model.pt",
    ]  # fmt: skip
    for model in models:  # exact, checkpoints left behind
        original = torch.load(out / model.relative_to(tmp_path / "back"), weights_only=True)
        assert torch.equal(torch.load(model, weights_only=True)["weights"], original["weights"])


def test_large_weights_are_split_under_the_limit_and_joined_back(tmp_path):
    out, report = _study(tmp_path, 1_500_000)  # ~3 MB of incompressible weights
    limit = 2**20
    files = pack_study(out, report, tmp_path / "pack", max_bytes=limit)
    parts = [f for f in files if ".part" in f.name]
    assert len(parts) >= 2 and all(f.stat().st_size <= limit for f in files)
    assert [p.name for p in parts][:2] == ["weights.tar.xz.part00", "weights.tar.xz.part01"]
    assert len(unpack_weights(tmp_path / "pack", tmp_path / "back")) == 2


def test_bad_inputs_name_the_problem(tmp_path):
    out, report = _study(tmp_path, 1000)
    with pytest.raises(ValueError, match="max_bytes must be at least 1 MiB, got 1000"):
        pack_study(out, report, tmp_path / "pack", max_bytes=1000)
    with pytest.raises(ValueError, match="holds no report.md"):
        pack_study(out, out / "nowhere", tmp_path / "pack")
    with pytest.raises(ValueError, match="holds no weights.tar.xz nor its parts"):
        unpack_weights(tmp_path, tmp_path / "back")


def test_copy_results_leaves_weights_lock_and_markers_behind(tmp_path):
    from studies.pack import copy_results

    out, _ = _study(tmp_path, 4_000)
    (out / ".lock").write_text("")
    (out / ".running").mkdir()
    (out / ".running" / "train_gru.json").write_text("{}")
    (out / "train" / "gru-vocu" / "bench.json").write_text('{"status": "done"}')
    copied = copy_results(out, tmp_path / "copy")
    assert sorted(str(p.relative_to(tmp_path / "copy")) for p in copied) == [
        "config.json", "report/accuracy.png", "report/report.md", "train/gru-vocu/bench.json",
    ]  # fmt: skip
    assert (tmp_path / "copy" / "train" / "gru-vocu" / "bench.json").read_text() == (
        '{"status": "done"}'
    )
    with pytest.raises(UsageError, match="nowhere is not a folder"):
        copy_results(tmp_path / "nowhere", tmp_path / "copy2")
