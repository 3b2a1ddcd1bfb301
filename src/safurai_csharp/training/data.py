"""The training data: stage sft_data's train.jsonl / validation.jsonl as TRL prompt-completion
datasets. Only `prompt` and `completion` are kept: with those two columns TRL computes the
loss on the completion tokens only (completion_only_loss); a `messages` column would make
TRL treat the rows as conversations instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hashing import file_sha256
from ..jsonl import JsonlError, read_jsonl

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Split:
    name: str
    path: Path
    rows: list[dict[str, str]]
    sha256: str | None  # None: the file does not exist (an empty validation split)


def split_path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / f"{name}.jsonl"


def load_split(data_dir: str | Path, name: str) -> Split:
    path = split_path(data_dir, name)
    if not path.is_file():
        if name == "train":
            raise FileNotFoundError(f"{path}: no training data (run stage sft_data first: dvc repro sft_data)")
        return Split(name, path, [], None)
    rows = []
    for i, row in enumerate(read_jsonl(path), 1):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str) or not completion.strip():
            raise JsonlError(f"{path}: row {i} needs string fields prompt and a non-empty completion "
                             f"(the format of stage sft_data)")
        rows.append({"prompt": prompt, "completion": completion})
    if name == "train" and not rows:
        raise JsonlError(f"{path}: the training split is empty")
    return Split(name, path, rows, file_sha256(path))


def load_splits(data_dir: str | Path) -> dict[str, Split]:
    return {name: load_split(data_dir, name) for name in SPLITS}


def to_dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list(rows)
