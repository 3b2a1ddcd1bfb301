"""What the data stages spend: generated and prompt tokens, seconds, and per kept example.

Every teacher call of generate and evolve goes through a :class:`Meter`, which adds up the
engine's own counts. The chunk checkpoint keeps each chunk's tally next to its records
(synth/checkpoint.py), so a resumed run reports the cost of the whole run, not only of the
chunks it generated after the restart; `dvc exp show` then compares recipes on cost
(tokens per kept example, kept examples per minute) as well as on count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FIELDS = ("generated_tokens", "prompt_tokens", "seconds")


class Meter:
    """Wraps a chat engine; `.tally` holds the tokens and wall seconds of the calls so far."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tally: dict[str, float] = dict.fromkeys(FIELDS, 0)

    def chat(self, conversations: list, sampling: Any, seeds: list[int] | None = None) -> list[list[str]]:
        return self._metered(lambda: self.engine.chat(conversations, sampling, seeds=seeds)) if conversations else []

    def together(self, requests: list[Any]) -> list[list[list[str]]]:
        """engines.together through the meter: one metered engine call where the engine can
        combine the requests (engines.Request), else one metered call per request."""
        from ..engines.base import separately

        if getattr(self.engine, "together", None) is None:
            return separately(self, requests)
        if not any(r.items for r in requests):
            return [[] for _ in requests]
        return self._metered(lambda: self.engine.together(requests))

    def _metered(self, call: Any) -> Any:
        start = time.perf_counter()
        out = call()
        stats = getattr(self.engine, "last_stats", {}) or {}
        self.tally["seconds"] += time.perf_counter() - start
        self.tally["generated_tokens"] += int(stats.get("generated_tokens", 0))
        self.tally["prompt_tokens"] += int(stats.get("prompt_tokens", 0))
        return out

    def generate(self, prompts: list, sampling: Any, seeds: list[int] | None = None) -> list[list[str]]:
        return self._metered(lambda: self.engine.generate(prompts, sampling, seeds=seeds)) if prompts else []

    def add_seconds(self, seconds: float) -> None:
        """Time spent between teacher calls that belongs to generation (the repair turn's
        sandbox runs)."""
        self.tally["seconds"] += seconds

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Every wall second of the block counts as generation: the teacher calls inside it as
        metered, the time between them (the sandbox runs of a repair turn or a cross-check)
        added on leaving."""
        start, metered = time.perf_counter(), self.tally["seconds"]
        yield
        self.add_seconds(time.perf_counter() - start - (self.tally["seconds"] - metered))


def total(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum of per-chunk tallies, with generated tokens per second."""
    out: dict[str, Any] = {k: sum(t.get(k, 0) for t in tallies) for k in FIELDS}
    out["seconds"] = round(out["seconds"], 2)
    out["tokens_per_s"] = round(out["generated_tokens"] / out["seconds"], 1) if out["seconds"] else 0.0
    return out


def per_kept(kept: int, generated_tokens: float, seconds: float) -> dict[str, Any]:
    """The cost of one kept example: tokens, and kept examples per minute of these seconds."""
    return {"kept": kept, "generated_tokens": int(generated_tokens), "seconds": round(seconds, 2),
            "tokens_per_kept": round(generated_tokens / kept, 1) if kept else None,
            "kept_per_minute": round(kept / (seconds / 60), 3) if seconds else None}
