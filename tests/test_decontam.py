"""Decontamination: planted benchmark material is caught, ordinary C# is not."""

import pytest

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.benchmark.reference import load_solutions
from safurai_csharp.decontam import Blocklist, evaluation_documents, tokens

CLEAN = """using System;
using System.Collections.Generic;
using System.Linq;
class Solution {
    // Returns the words of a sentence in reverse order, keeping punctuation attached.
    public static string ReverseWords(string sentence) {
        var words = sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Array.Reverse(words);
        return string.Join(" ", words);
    }
    public static void Main(string[] args) {
        Debug.Assert(ReverseWords("hello big world") == "world big hello");
        Debug.Assert(ReverseWords("") == "");
    }
}
"""


@pytest.fixture(scope="module")
def bench():
    return build_humaneval_cs()


@pytest.fixture(scope="module")
def blocklist(bench):
    return Blocklist(evaluation_documents(bench))


def test_ordinary_csharp_with_the_usual_boilerplate_is_clean(blocklist):
    verdict = blocklist.check(CLEAN)
    assert not verdict.contaminated and verdict.overlap < 0.05


def test_planted_benchmark_problem_is_caught_even_reformatted(blocklist, bench):
    p = next(r for r in bench if r["name"] == "HumanEval_0_has_close_elements")
    planted = "### Instruction\n" + p["prompt"] + "        return false;\n" + p["tests"]
    assert blocklist.check(planted).contaminated
    squashed = " ".join(planted.split())  # whitespace and line breaks do not hide a copy
    assert blocklist.check(squashed).contaminated


def test_every_reference_solution_is_caught_when_planted(blocklist, bench):
    missed = []
    for prob, sol in zip(bench, load_solutions(), strict=True):
        body = sol["completions"][0]
        if len(tokens(body)) < 40:  # one-liners share too little text to tell a copy
            continue
        example = f"Task: implement the method.\n```csharp\nclass Solution {{\n{body}}}\n```\n"
        if not blocklist.check(example).contaminated:
            missed.append(prob["name"])
    assert missed == []


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="at least 4"):
        Blocklist(["x"], n=2)
    with pytest.raises(ValueError, match="threshold"):
        Blocklist(["x"], threshold=0)
