"""The pipeline's one split of its examples: train / validation / dev, by lineage.

An example and everything evolved from it land on the same side (the bucket is a hash of its
lineage root), so neither validation loss nor the dev score is flattered by near-copies of
training examples, and the split of an example never changes when others are added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

SIDES = ("train", "validation", "dev")


def collect(filtered: Sequence[dict], rounds: Sequence[Sequence[dict]]) -> tuple[list[dict], dict[str, int]]:
    """filtered ∪ every round's new examples (a round also carries its parents: skipped), each
    id once; and how many each pool added (key "0" = filtered, "k" = round k)."""
    examples, ids, per_round = [], set(), {"0": 0}
    for k, pool in enumerate([filtered, *rounds]):
        for ex in pool:
            if ex.get("carried") or ex["id"] in ids:
                continue
            ids.add(ex["id"])
            examples.append(ex)
            per_round[str(k)] = per_round.get(str(k), 0) + 1
    return examples, per_round


def root_of(example: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str:
    """The id of the example's oldest known ancestor (itself when it has none)."""
    seen = set()
    while example.get("parent_id") and example["parent_id"] in by_id and example["id"] not in seen:
        seen.add(example["id"])
        example = by_id[example["parent_id"]]
    return str(example["id"])


def side(root: str, seed: int, dev_fraction: float, validation_fraction: float) -> str:
    """Where a lineage root's family goes: a uniform draw in [0, 1) from the hash of
    (seed, root); dev below dev_fraction, then validation, then train."""
    h = hashlib.sha256(f"{seed}:{root}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < dev_fraction:
        return "dev"
    return "validation" if u < dev_fraction + validation_fraction else "train"


def assign(examples: Sequence[dict], pools: Sequence[Sequence[dict]], *, seed: int, dev_fraction: float,
           validation_fraction: float) -> list[str]:
    """The side of each example; `pools` hold every record (parents included) for lineage."""
    by_id = {ex["id"]: ex for pool in pools for ex in pool}
    return [side(root_of(ex, by_id), seed, dev_fraction, validation_fraction) for ex in examples]
