"""Resumable, chunked generation: a run killed at any point continues where it stopped.

Task indices are cut into fixed chunks [c*size, (c+1)*size). A chunk's records are appended
to the checkpoint file in one write followed by fsync, each record tagged with its chunk,
and closed by the chunk's tally line (`_tally`: the tokens and seconds it cost,
synth/cost.py), the chunk's commit mark. On restart only chunks with every record and the
tally count (a torn last line or a half-written chunk is regenerated in full), and every
chunk is generated with the same prompts, seeds and batch composition as in an
uninterrupted run, so the final file is identical to one, whatever the engine's
batch-(in)variance. The tallies let a resumed run report what the whole run cost.

The checkpoint lives outside the stage's DVC outs (DVC deletes outs before it reruns a
stage) under a key of everything that determines the records, so a changed prompt,
teacher or sampling setting never resumes from stale samples.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..config import CHECKPOINT_ROOT as ROOT  # one file per stage and key under it


def source_digest(module: Any) -> str:
    """A digest of a module's source text: part of a checkpoint key, so an edited prompt
    template never resumes from samples of the old one."""
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]


def record_code(recipe: str) -> list[str]:
    """Digests of the library modules whose code shapes a generated record beyond the prompts
    and sampling (generate's, and evolve's raw answers): part of a checkpoint key, so an edited
    parser or renderer never resumes from records it would no longer write."""
    from ..csharp import modes
    from ..csharp import split as split_module
    from . import completion_format, decomposed, literals, parse
    from . import program as program_module

    modules = [parse, program_module, modes]
    if recipe == "decomposed":  # its output agreement writes assertions from solver values (split, literals)
        modules += [decomposed, completion_format, split_module, literals]
    return [source_digest(m) for m in modules]


def checkpoint_path(root: Path, stage: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return root / stage / f"{digest}.jsonl"


def chunks(num_tasks: int, size: int) -> Iterator[tuple[int, range]]:
    for c, start in enumerate(range(0, num_tasks, size)):
        yield c, range(start, min(start + size, num_tasks))


def load_complete(path: Path, size: int, num_tasks: int) -> tuple[dict[int, list[dict]], dict[int, dict]]:
    """chunk -> its records, for the chunks that were fully written; and chunk -> its tally."""
    if not path.is_file():
        return {}, {}
    _drop_torn_tail(path)
    by_chunk: dict[int, dict[int, dict]] = {}
    tallies: dict[int, dict] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn write of a killed run
            if not isinstance(rec, dict) or "_chunk" not in rec:
                continue
            if "_tally" in rec:
                tallies[rec["_chunk"]] = rec["_tally"]
            elif "index" in rec:
                by_chunk.setdefault(rec["_chunk"], {})[rec["index"]] = rec
    done = {}
    for c, idx in chunks(num_tasks, size):
        got = by_chunk.get(c, {})
        if c in tallies and all(i in got for i in idx):
            done[c] = [got[i] for i in idx]
    return done, {c: tallies[c] for c in done}


def _drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line, or the next append would glue onto it and be lost."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def append_chunk(path: Path, chunk: int, records: list[dict], tally: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({**r, "_chunk": chunk}, ensure_ascii=False) + "\n" for r in records)
    text += json.dumps({"_chunk": chunk, "_tally": tally}) + "\n"  # last: the chunk's commit mark
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def strip_chunk(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "_chunk"}


def run_chunks(path: Path, total: int, size: int, work: Callable[[range], tuple[list[dict], dict]],
               stop_after: int | None = None,
               on_chunk: Callable[[list[dict], list[dict]], None] | None = None) -> tuple[list[dict], int, list[dict]]:
    """Runs `work` (-> records, tally) on every chunk of task indices not already complete in
    the checkpoint, appending each chunk as it finishes. Returns all records in index order,
    how many came from the checkpoint, and the tallies of all complete chunks. `stop_after`
    ends early after that many new chunks (tests). `on_chunk(records, tallies)` sees every
    record and tally so far after each new chunk (live metrics: tracking.live)."""
    from ..progress import bar

    done, tallies = load_complete(path, size, total)
    resumed = sum(len(v) for v in done.values())
    new = 0
    with bar(total=total, initial=resumed, desc=path.parent.name, unit="task") as pb:
        for c, idx in chunks(total, size):
            if c in done:
                continue
            if stop_after is not None and new >= stop_after:
                break
            done[c], tallies[c] = work(idx)
            append_chunk(path, c, done[c], tallies[c])
            new += 1
            pb.update(len(idx))
            if on_chunk is not None:
                on_chunk([r for k in sorted(done) for r in done[k]], [tallies[k] for k in sorted(tallies)])
    return [strip_chunk(r) for c in sorted(done) for r in done[c]], resumed, [tallies[c] for c in sorted(tallies)]
