"""atomic.publish_dir, the one way stages put an output directory in place, and prepare_teacher
built on it: a failure while building leaves the previous output as it was (issue #12)."""

import os
import shutil

import pytest

from safurai_csharp.atomic import publish_dir, staging_dir
from safurai_csharp.config import TeacherParams
from safurai_csharp.synth.teacher import prepare_teacher


def test_publish_replaces_the_old_directory_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "models" / "m"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("old")
    staged = staging_dir(out)
    (staged / "new.txt").write_text("new")
    publish_dir(staged, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]


def test_a_failed_publish_puts_the_old_directory_back(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(FileNotFoundError):
        publish_dir(tmp_path / "never-built", out)
    assert (out / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def base_checkpoint(path):
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def test_prepare_teacher_links_the_base_and_keeps_the_old_teacher_when_it_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = base_checkpoint(tmp_path / "base")
    cfg = TeacherParams(source="base", model_dir="models/teacher")
    record = prepare_teacher(cfg, base, tmp_path / "wheels")
    teacher = tmp_path / "models" / "teacher"
    assert record == {"kind": "base", "base_dir": str(base)}
    assert sorted(p.name for p in teacher.iterdir()) == ["config.json", "model.safetensors", "teacher.json"]
    assert os.path.samefile(teacher / "model.safetensors", base / "model.safetensors")  # a hard link, no copy

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(os, "link", broken)
    monkeypatch.setattr(shutil, "copy2", broken)
    (base / "model.safetensors").unlink()
    (base / "model.safetensors").write_bytes(b"new weights")
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_teacher(cfg, base, tmp_path / "wheels")
    assert (teacher / "model.safetensors").read_bytes() == b"weights"  # the previous teacher, whole
    assert sorted(p.name for p in teacher.parent.iterdir()) == ["teacher"]  # no staging directory left
