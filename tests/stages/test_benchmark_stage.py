from pathlib import Path

import pytest

from safurai_csharp.config import BenchmarkParams, ParamsError
from safurai_csharp.stages.benchmark import build

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared/benchmarks/multipl-e/humaneval-cs-reworded.jsonl"
needs_upstream = pytest.mark.skipif(not UPSTREAM.exists(), reason=f"upstream MultiPL-E copy not at {UPSTREAM}")


def test_translate_with_limit_and_fidelity_metrics():
    rows, dev, metrics = build(BenchmarkParams(limit=5, reference=str(UPSTREAM) if UPSTREAM.exists() else None))
    assert len(rows) == 5 and metrics["problems"] == 5 and metrics["problems_built"] == 158
    # DevBench is built whole beside it: `limit` selects test-set problems only
    assert metrics["devbench_problems"] == len(dev) >= 100 and dev[0]["name"].startswith("DevBench_")
    if UPSTREAM.exists():
        assert metrics["fidelity"]["present"] == 158 and metrics["fidelity"]["identical_tests"] >= 150


@needs_upstream
def test_official_uses_the_upstream_file_as_is():
    from safurai_csharp.jsonl import read_jsonl

    rows, _, metrics = build(BenchmarkParams(source="official", path=str(UPSTREAM),
                                          problems=["HumanEval_0_has_close_elements", "HumanEval_12_longest"]))
    upstream = {r["name"]: r for r in read_jsonl(UPSTREAM)}
    assert [r["name"] for r in rows] == ["HumanEval_0_has_close_elements", "HumanEval_12_longest"]
    assert all(r == upstream[r["name"]] for r in rows)
    assert metrics["source"] == "official"


def test_unknown_problem_and_missing_file_are_params_errors(tmp_path):
    with pytest.raises(ParamsError, match="unknown problem"):
        build(BenchmarkParams(problems=["HumanEval_999_nope"]))
    with pytest.raises(ParamsError, match="neither a file nor the hub id"):
        build(BenchmarkParams(source="official", path=str(tmp_path / "missing.jsonl")))


def test_official_file_missing_fields(tmp_path):
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"name": "x", "prompt": "p"}\n')
    with pytest.raises(ParamsError, match="lacks MultiPL-E field"):
        build(BenchmarkParams(source="official", path=str(bad)))
