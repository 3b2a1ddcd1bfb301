"""The teacher: materialised by prepare_teacher, opened as a chat engine by the data stages.

`source: base` is self-instruct as in the paper (the teacher is the student's own base
model): prepare_teacher hard-links the base checkpoint's files into the teacher directory,
so DVC sees a real output whose content hash equals the base model's (no second copy in
the DVC cache, none on disk). `source: none` is a remote teacher behind the openai engine:
the directory then only holds teacher.json, which names the server and model, so a change
of teacher still changes the hash every downstream stage depends on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..atomic import publish_dir, staging_dir
from ..config import TeacherParams


def prepare_teacher(cfg: TeacherParams, base_dir: Path, wheel_dir: Path) -> dict[str, Any]:
    """Build the teacher directory beside `teacher.model_dir` and publish it there (atomic.py):
    until the new one is complete, the previous teacher stays in place."""
    out = Path(cfg.model_dir)
    if cfg.source == "base" and not (base_dir / "config.json").is_file():
        raise FileNotFoundError(f"{base_dir}: no base checkpoint (run the prepare_base stage first)")
    staged = staging_dir(out)
    try:
        if cfg.source == "base":
            for f in sorted(p for p in base_dir.rglob("*") if p.is_file()):
                dest = staged / f.relative_to(base_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, dest)
                except OSError:  # another file system, or links not allowed: copy
                    shutil.copy2(f, dest)
            record = {"kind": "base", "base_dir": str(base_dir)}
        elif cfg.source == "none":
            opts = cfg.engine_options.openai
            record = {"kind": "remote", "engine": cfg.engine,
                      "base_url": opts.base_url or os.environ.get("OPENAI_BASE_URL"), "served_model": opts.served_model}
        else:
            from ..basemodel import prepare_base_model

            staged.rmdir()  # prepare_base_model publishes the checkpoint there itself
            prepare_base_model(cfg.source, staged, wheel_dir=wheel_dir, dtype=cfg.dtype, revision=cfg.revision)
            record = {"kind": "model", "source": cfg.source}
        (staged / "teacher.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        publish_dir(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return record


def describe(cfg: TeacherParams) -> str:
    """A short name of the teacher for each record's `teacher` field."""
    if cfg.source == "none":
        return f"openai:{cfg.engine_options.openai.served_model}"
    source_json = Path(cfg.model_dir) / "source.json"
    if source_json.is_file():
        return str(json.loads(source_json.read_text()).get("source", cfg.source))
    return cfg.source


def open_teacher(cfg: TeacherParams, seed: int):
    """The teacher's engine (its `chat` method is what the data stages call)."""
    from ..engines import make_engine

    model_dir = None if cfg.engine == "openai" else Path(cfg.model_dir)
    return make_engine(cfg.engine, model_dir, seed=seed, **cfg.engine_options.of(cfg.engine))


class LazyTeacher:
    """Opens the teacher's engine on first use (a fully resumed run never starts vLLM) and
    closes it on exit."""

    def __init__(self, cfg: TeacherParams, seed: int) -> None:
        self.cfg, self.seed, self._engine = cfg, seed, None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = open_teacher(self.cfg, self.seed)
        return self._engine

    def __enter__(self) -> "LazyTeacher":
        return self

    def __exit__(self, *exc) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
