"""Benchmark decontamination: n-gram overlap of candidate training text with every
evaluation text (benchmark prompts and tests, reference solutions, upstream MultiPL-E).

A training example that reproduces a benchmark problem inflates pass@1 without teaching
anything, and MultiPL-E's licence forbids training on its contents. The data stages run
every example through :class:`Blocklist` before it can reach a training set.

Tokens are C# lexemes (identifiers, numbers, single punctuation), so formatting changes do
not hide a copy. N-grams shared by many benchmark documents (the `using` header, `public
static void Main(string[] args) {`) are boilerplate every C# file has: they are dropped from
the blocklist, or every generated program would look contaminated.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def ngrams(text: str, n: int) -> set[int]:
    toks = tokens(text)
    grams = set()
    for i in range(len(toks) - n + 1):
        digest = hashlib.blake2b("\x1f".join(toks[i : i + n]).encode(), digest_size=8).digest()
        grams.add(int.from_bytes(digest, "little"))
    return grams


@dataclass(frozen=True)
class Verdict:
    contaminated: bool
    overlap: float  # share of the candidate's n-grams that occur in the blocklist
    matches: int


class Blocklist:
    """N-grams of evaluation documents; `check(text)` says whether text copies one."""

    def __init__(self, documents: Iterable[str], *, n: int = 13, threshold: float = 0.2,
                 boilerplate_docs: int = 3) -> None:
        if n < 4:
            raise ValueError("n must be at least 4: shorter n-grams match ordinary C# idioms")
        if not 0 < threshold <= 1:
            raise ValueError("threshold is a share of the candidate's n-grams, in (0, 1]")
        self.n, self.threshold = n, threshold
        per_doc = [ngrams(d, n) for d in documents]
        seen_in = Counter(g for grams in per_doc for g in grams)
        self.grams = {g for g, c in seen_in.items() if c < boilerplate_docs}
        self.documents = len(per_doc)

    def check(self, text: str) -> Verdict:
        grams = ngrams(text, self.n)
        if not grams:
            return Verdict(False, 0.0, 0)
        matches = len(grams & self.grams)
        overlap = matches / len(grams)
        return Verdict(overlap >= self.threshold, overlap, matches)


def evaluation_documents(benchmark: Iterable[Mapping[str, Any]], *, reference_solutions: bool = True,
                         extra_files: Iterable[str | Path] = ()) -> list[str]:
    """Every text the models are evaluated on: one document per problem prompt, tests and
    reference solution, plus any further MultiPL-E jsonl files (e.g. the upstream copy)."""
    from .jsonl import read_jsonl

    docs: list[str] = []
    rows = list(benchmark)
    for path in extra_files:
        if Path(path).exists():
            rows += read_jsonl(path)
    for row in rows:
        docs += [row["prompt"], row["tests"]]
    if reference_solutions:
        from .benchmark import devbench
        from .benchmark.reference import reference_texts

        docs += reference_texts() + devbench.reference_texts()
    return docs
