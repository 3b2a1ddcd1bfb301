"""Packaged prompt data for synthetic C# tasks: the topic taxonomy and the few-shot examples.

``load_taxonomy()`` -> ``[{"topic": str, "concepts": [str, ...]}, ...]`` (taxonomy.yaml)
``load_fewshot()`` -> ``[{"topic", "concept", "instruction", "solution", "tests"}, ...]``
(fewshot.jsonl, one JSON object a line). A malformed entry raises ValueError naming the file
and line.
"""

from __future__ import annotations

import json
from importlib.resources import files

import yaml

TAXONOMY = "taxonomy.yaml"
FEWSHOT = "fewshot.jsonl"
FEWSHOT_KEYS = ("topic", "concept", "instruction", "solution", "tests")


def _text(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def load_taxonomy() -> list[dict]:
    text = _text(TAXONOMY)
    data = yaml.safe_load(text)
    if not isinstance(data, list) or not data:
        raise ValueError(f"{TAXONOMY}: expected a non-empty list of topics")
    nodes = yaml.compose(text).value  # the same items, with their line numbers
    for item, node in zip(data, nodes):
        ok = (isinstance(item, dict) and set(item) == {"topic", "concepts"}
              and _nonempty_str(item["topic"]) and isinstance(item["concepts"], list)
              and item["concepts"] and all(map(_nonempty_str, item["concepts"])))
        if not ok:
            raise ValueError(f"{TAXONOMY}:{node.start_mark.line + 1}: expected "
                             "{topic: <non-empty string>, concepts: [<non-empty string>, ...]}")
    return data


def load_fewshot() -> list[dict]:
    out = []
    for lineno, line in enumerate(_text(FEWSHOT).splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{FEWSHOT}:{lineno}: invalid JSON: {e}") from None
        if not (isinstance(item, dict) and set(item) == set(FEWSHOT_KEYS)
                and all(_nonempty_str(item[k]) for k in FEWSHOT_KEYS)):
            raise ValueError(f"{FEWSHOT}:{lineno}: expected exactly the keys "
                             f"{', '.join(FEWSHOT_KEYS)}, each a non-empty string")
        out.append(item)
    return out
