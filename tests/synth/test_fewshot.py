"""The packaged taxonomy and few-shot examples: well-formed, consistent, and verified in the sandbox."""

import re

import pytest

from safurai_csharp.synth import data
from safurai_csharp.synth.data import load_fewshot, load_taxonomy
from safurai_csharp.synth.program import assertion_count, calls_solution, program, stub_bodies


def test_taxonomy_loads_with_unique_topics_and_concepts():
    taxonomy = load_taxonomy()
    assert len(taxonomy) >= 15
    topics = [t["topic"] for t in taxonomy]
    assert len(set(topics)) == len(topics), "duplicate topic"
    for t in taxonomy:
        assert t["concepts"], t["topic"]
        assert len(set(t["concepts"])) == len(t["concepts"]), f"duplicate concept in {t['topic']}"


def test_fewshot_concepts_exist_in_taxonomy():
    concepts = {t["topic"]: set(t["concepts"]) for t in load_taxonomy()}
    examples = load_fewshot()
    assert len(examples) == 8
    for ex in examples:
        assert ex["concept"] in concepts.get(ex["topic"], set()), (ex["topic"], ex["concept"])


def test_fewshot_examples_are_well_formed():
    for ex in load_fewshot():
        sol, tests = ex["solution"], ex["tests"]
        assert re.search(r"\bpublic static class \w+", sol), ex["concept"]
        assert not re.search(r"\bnamespace\b|\bclass Problem\b|\bMain\s*\(", sol), ex["concept"]
        assert 4 <= assertion_count(tests) <= 7, ex["concept"]
        assert calls_solution(sol, tests), ex["concept"]
        assert stub_bodies(sol) is not None, ex["concept"]


def test_loader_names_file_and_line_on_bad_entry(monkeypatch):
    good = '{"topic": "t", "concept": "c", "instruction": "i", "solution": "s", "tests": "x"}'
    monkeypatch.setattr(data, "_text", lambda name: good + "\n" + '{"topic": "t"}\n')
    with pytest.raises(ValueError, match=r"fewshot\.jsonl:2:"):
        load_fewshot()
    monkeypatch.setattr(data, "_text", lambda name: "- topic: a\n  concepts: [x]\n- topic: b\n")
    with pytest.raises(ValueError, match=r"taxonomy\.yaml:3:"):
        load_taxonomy()


def test_fewshot_examples_pass_and_their_mutants_fail_in_the_sandbox():
    from safurai_csharp.csharp import Executor, Limits, ToolchainError, check_toolchain

    try:
        check_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    examples = load_fewshot()
    programs = [program(ex["solution"], ex["tests"], name=ex["concept"]) for ex in examples]
    programs += [program(stub_bodies(ex["solution"]), ex["tests"], name="stub: " + ex["concept"])
                 for ex in examples]
    results = Executor(Limits(), workers=2).run(programs)
    n = len(examples)
    failing = [(p.name, r.status, r.detail) for p, r in zip(programs[:n], results[:n]) if not r.passed]
    assert not failing, failing
    passing_mutants = [p.name for p, r in zip(programs[n:], results[n:]) if r.passed]
    assert not passing_mutants, passing_mutants
