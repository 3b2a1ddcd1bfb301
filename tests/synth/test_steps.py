"""The filter's steps on small hand-made inputs: real sandbox, real MinHash, real blocklist."""

import shutil

import pytest

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.benchmark.reference import load_solutions
from safurai_csharp.decontam import Blocklist, evaluation_documents
from safurai_csharp.synth.parse import render_answer
from safurai_csharp.synth.steps import (DecontamStep, DedupStep, ExecutionStep, HeuristicsStep, JudgeStep,
                                        ParseStep, parse_score, run_steps)

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")

GOOD_SOL = "public static class MathX\n{\n    public static int Square(int x)\n    {\n        return x * x;\n    }\n}"
GOOD_TESTS = "Debug.Assert(MathX.Square(2) == 4);\nDebug.Assert(MathX.Square(-3) == 9);\nDebug.Assert(MathX.Square(5) == 25);"
TASK = "Write a method Square that returns the square of an integer, for negative inputs too."


def rec(instruction=TASK, solution=GOOD_SOL, tests=GOOD_TESTS, **extra):
    return {"raw": render_answer(instruction, solution, tests), **extra}


@needs_toolchain
def test_execution_step_keeps_only_real_tested_solutions():
    from safurai_csharp.csharp import Executor, Limits

    cases = {
        "good": rec(),
        "few_asserts": rec(tests="Debug.Assert(MathX.Square(2) == 4);"),
        "no_call": rec(tests="Debug.Assert(2 * 2 == 4);\nDebug.Assert(1 == 1);\nDebug.Assert(0 == 0);"),
        "wrong": rec(solution=GOOD_SOL.replace("x * x", "x + x")),
        "no_compile": rec(solution=GOOD_SOL.replace("return x * x;", "return x * ;")),
        # every assertion holds for `return default(int);` too: vacuous tests
        "trivial": rec(tests="Debug.Assert(MathX.Square(0) == 0);\nDebug.Assert(MathX.Square(0) >= 0);\n"
                             "Debug.Assert(MathX.Square(0) <= 0);"),
        "own_main": rec(solution=GOOD_SOL.replace("}\n}", "}\n    static void Main() { }\n}")),
        # one miscomputed expected value among four: pruned to the three that hold
        "one_wrong": rec(tests=GOOD_TESTS + "\nDebug.Assert(MathX.Square(4) == 15);"),
        # two of four wrong: fewer than min_asserts survive
        "two_wrong": rec(tests="Debug.Assert(MathX.Square(2) == 4);\nDebug.Assert(MathX.Square(3) == 9);\n"
                               "Debug.Assert(MathX.Square(4) == 15);\nDebug.Assert(MathX.Square(5) == 24);"),
        # a type error in one assertion only
        "bad_assert": rec(tests=GOOD_TESTS + "\nDebug.Assert(MathX.Square(\"x\") == 1);"),
    }
    records = list(cases.values())
    assert ParseStep()(records) == [None] * len(records)
    reasons = ExecutionStep(Executor(Limits(timeout_s=10), workers=2), min_asserts=3)(records)
    got = dict(zip(cases, reasons))
    assert got["good"] is None and got["own_main"] is None  # the parser drops a demo Main
    assert got["few_asserts"] == "too_few_asserts"
    assert got["no_call"] == "tests_do_not_call_solution"
    assert got["wrong"] == "solution_assertion_failed"
    assert got["no_compile"] == "solution_compile_error"
    assert got["trivial"] == "tests_pass_trivial_body"
    assert got["one_wrong"] is None and got["bad_assert"] is None and got["two_wrong"] == "solution_assertion_failed"
    pruned = records[list(cases).index("one_wrong")]
    assert pruned["tests"] == GOOD_TESTS and pruned["asserts_pruned"] == 1 and pruned["execution"] == "pass_pruned"

    strict = [rec(tests=GOOD_TESTS + "\nDebug.Assert(MathX.Square(4) == 15);")]
    ParseStep()(strict)
    assert ExecutionStep(Executor(Limits(timeout_s=10), workers=2), prune=False)(strict) == ["solution_assertion_failed"]


def test_dedup_exact_and_near():
    base = {"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS}
    near = {**base, "instruction": TASK.replace("integer", "int value"), "solution": GOOD_SOL + "\n"}
    other = {"instruction": "Reverse the words of a sentence separated by single spaces.",
             "solution": "public static class W { public static string Rev(string s) { return string.Join(\" \", s.Split(' ').Reverse()); } }",
             "tests": ""}
    spaced = {**base, "solution": "  ".join(GOOD_SOL.split())}
    assert DedupStep(threshold=0.7)([base, spaced, near, other]) == [None, "exact_duplicate", "near_duplicate", None]


def test_decontam_removes_a_planted_benchmark_problem():
    bench = build_humaneval_cs()
    blocklist = Blocklist(evaluation_documents(bench))
    p = next(r for r in bench if r["name"] == "HumanEval_13_greatest_common_divisor")
    ref = next(s for s in load_solutions() if s["name"] == p["name"])
    planted = {"instruction": "Return the greatest common divisor of two integers.",
               "solution": p["prompt"] + ref["completions"][0], "tests": GOOD_TESTS}
    clean = {"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS}
    tests_copy = {"instruction": TASK, "solution": GOOD_SOL, "tests": p["tests"]}
    kept, funnel = run_steps([clean, planted, tests_copy], [DecontamStep(blocklist)])
    assert kept == [clean] and funnel[-1]["dropped"] == {"benchmark_overlap": 2}


def test_heuristics():
    step = HeuristicsStep(min_instruction_chars=40, max_instruction_chars=400, max_solution_lines=20, max_tests_lines=10)
    ok = {"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS}
    cases = [ok, {**ok, "instruction": "Square it."}, {**ok, "solution": GOOD_SOL + "\n" * 30},
             {**ok, "instruction": TASK + " I'm sorry, but as an AI I cannot."},
             {**ok, "solution": "def square(x):\n    return x * x  # class "}]
    assert step(cases) == [None, "instruction_length", "code_too_long", "refusal", "not_csharp"]


def test_judge_scores_and_threshold():
    answers = iter(["8", "Score: 3/10", "no idea"])
    step = JudgeStep(lambda convs: [next(answers) for _ in convs], min_score=5)
    records = [{"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS} for _ in range(3)]
    assert step(records) == [None, "judge_score", "judge_score"]
    assert [r["judge_score"] for r in records] == [8, 3, None]
    assert parse_score("10") == 10 and parse_score("I'd say 7.") == 7 and parse_score("") is None


def test_funnel_counts_every_step():
    records = [rec(), {"raw": "garbage"}, rec()]
    kept, funnel = run_steps(records, [ParseStep(), DedupStep()])
    assert [f["kept"] for f in funnel] == [3, 2, 1]
    assert funnel[1]["dropped"] == {"missing_task": 1} and funnel[2]["dropped"] == {"exact_duplicate": 1}


def test_fewshot_copies_are_dropped_and_new_tasks_kept():
    from safurai_csharp.synth.data import load_fewshot
    from safurai_csharp.synth.steps import fewshot_blocklist

    shots = load_fewshot()
    empty = Blocklist(["unrelated text " * 20])
    step = DecontamStep(empty, fewshot_blocklist(shots, 13, 0.2))
    copy = {k: shots[0][k] for k in ("instruction", "solution", "tests")}
    renamed = {**copy, "instruction": "Please solve: " + copy["instruction"]}
    new = {"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS}
    assert step([copy, renamed, new]) == ["copies_fewshot_example", "copies_fewshot_example", None]


def test_repaired_record_keeps_the_first_answers_task():
    from safurai_csharp.synth.parse import parse_record

    first = render_answer(TASK, GOOD_SOL.replace("x * x;", "x * x"), GOOD_TESTS)
    fixed = render_answer("Your answer does not compile: error CS1002 ; expected. Here is the fix.", GOOD_SOL, GOOD_TESTS)
    p = parse_record(fixed, {"raw_first": first, "first_status": "compile_error"})
    assert p.instruction == TASK and p.solution.endswith(GOOD_SOL)
    assert parse_record(fixed, None).instruction.startswith("Your answer")


def test_decontam_built_from_every_evaluation_file_removes_a_devbench_problem(tmp_path):
    """The stages pass BenchmarkParams.evaluation_files(): the test set and DevBench. A DevBench
    problem's tests copied into training data are caught even with no test set problem given."""
    import json

    from safurai_csharp.benchmark.build import build_devbench_cs
    from safurai_csharp.config import FilterParams
    from safurai_csharp.synth.steps import build_steps

    empty, dev = tmp_path / "humaneval-cs.jsonl", tmp_path / "devbench-cs.jsonl"
    empty.write_text("")
    problems = build_devbench_cs()
    dev.write_text("".join(json.dumps(p) + "\n" for p in problems))
    [step] = build_steps(["decontam"], FilterParams(steps=["parse", "decontam"]), {"benchmark": [str(empty), str(dev)]})
    p = max(problems, key=lambda r: len(r["tests"]))
    clean = {"instruction": TASK, "solution": GOOD_SOL, "tests": GOOD_TESTS}
    copied = {"instruction": TASK, "solution": GOOD_SOL, "tests": p["tests"]}
    assert step([clean, copied]) == [None, "benchmark_overlap"]
