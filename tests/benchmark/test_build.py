import time
from pathlib import Path

import pytest

from safurai_csharp.benchmark import build_humaneval_cs, compare_with_upstream, load_humaneval
from safurai_csharp.jsonl import read_jsonl
from safurai_csharp.benchmark.reword import translate_terms
from safurai_csharp.benchmark.source import clean_tests

UPSTREAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks" / "multipl-e" / "humaneval-cs-reworded.jsonl"
EXCLUDED = {32, 38, 50, 103, 125, 137}


@pytest.fixture(scope="module")
def built():
    start = time.perf_counter()
    records = build_humaneval_cs()
    return records, time.perf_counter() - start


def test_builds_the_158_upstream_problems_quickly(built):
    records, seconds = built
    assert len(load_humaneval()) == 164
    numbers = {int(r["name"].split("_")[1]) for r in records}
    assert numbers == set(range(164)) - EXCLUDED
    assert [r["name"] for r in records] == sorted(r["name"] for r in records)
    assert seconds < 10
    rec = records[0]
    assert rec["name"] == "HumanEval_0_has_close_elements"
    assert rec["stop_tokens"] == ["\n    }\n"] and rec["doctests"] == "transform"
    assert rec["prompt_terminology"] == "reworded" and rec["original"].endswith("HumanEval/0")


@pytest.mark.skipif(not UPSTREAM.exists(), reason=f"upstream MultiPL-E file absent: {UPSTREAM}")
def test_fidelity_targets(built):
    report = compare_with_upstream(built[0], read_jsonl(UPSTREAM))
    assert report["present"] == 158 and not report["missing"] and not report["extra"]
    assert report["identical_tests"] >= 150
    assert report["identical_signatures"] >= 155
    assert report["identical_prompts"] >= 110
    assert all(d["reason"] for d in report["differences"])


def test_reword_mangles_like_upstream():
    assert translate_terms("Return True if it is an array, None otherwise; happy") == (
        "Return true if it is a list, null otherwise; hapcs"
    )


def test_clean_tests_normalizes_humaneval_forms():
    src = (
        "def check(candidate):\n"
        "    assert candidate(3 * 19) == [3, 19]\n"
        "    assert not candidate(2)\n"
        "    assert candidate([1]) is None\n"
        "    for x in range(2, 4):\n"
        "        assert candidate(x, x + 1) == str(x)\n"
        "    assert True\n"
    )
    assert clean_tests(src) == (
        "def check(candidate):\n"
        "    assert candidate(57) == [3, 19]\n"
        "    assert candidate(2) == False\n"
        "    assert candidate([1]) == None\n"
        "    assert candidate(2, 3) == '2'\n"
        "    assert candidate(3, 4) == '3'\n"
    )
