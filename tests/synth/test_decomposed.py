"""The decomposed recipe: CodeT agreement, and one chunk through the real sandbox with a
scripted teacher (what each step asks and what the assembled example holds)."""

import shutil

import pytest

from safurai_csharp.engines import SamplingConfig
from safurai_csharp.synth import decomposed
from safurai_csharp.synth.cost import Meter
from safurai_csharp.synth.parse import parse_answer
from safurai_csharp.synth.prompts import TaskSpec

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")


def test_agreement_prefers_the_largest_consensus():
    # bodies 0 and 2 agree on assertions {0, 1}: 2 x 2 = 4 beats body 1's 1 x 3
    assert decomposed.agree([[True, True, False], [True, True, True], [True, True, False]]) == (0, [0, 1])
    assert decomposed.agree([[True, False, True], [False, True, True]]) == (0, [0, 2])  # tie: earlier body
    assert decomposed.agree([[True, True, True], [True, False, False], [True, False, False]]) == (0, [0, 1, 2])
    assert decomposed.agree([[False, False], [False, False]]) is None
    assert decomposed.agree([]) is None


TASK = ("### Task\nWrite a C# static method `Squares.Square(int x)` that returns x times x, for negative "
        "inputs too.\n\n### Solution\n```csharp\npublic static class Squares\n{\n    public static int Square(int x)\n"
        "    {\n        return x * x;\n    }\n}\n```\n")
# the continuation of `... Main(string[] args) {\n        Debug.Assert(`; one call names the class
TESTS = ("Square(2) == 4);\n        Debug.Assert(Squares.Square(-3) == 9);\n        Debug.Assert(Square(0) == 0);\n"
         "        Debug.Assert(Square(1) == 2);\n        Debug.Assert(Square(5)")


class Teacher:
    """Step 1 answers TASK (or junk for the topic 'junk'), step 2 three bodies, step 3 TESTS
    (cut by the token limit mid-assertion)."""

    def __init__(self):
        self.calls = []
        self.last_stats = {}

    def chat(self, conversations, sampling, seeds=None):
        self.calls.append(("chat", conversations, sampling))
        self.last_stats = {"generated_tokens": 10 * len(conversations), "prompt_tokens": 0}
        return [["I cannot." if "Topic: junk." in c[-1]["content"] else TASK] for c in conversations]

    def generate(self, prompts, sampling, seeds=None):
        self.calls.append(("generate", prompts, sampling))
        self.last_stats = {"generated_tokens": 5 * len(prompts) * sampling.n, "prompt_tokens": 0}
        bodies = ["\n        return x + x;", "\n        return x * x;   ", "\n        return Math.Abs(x) * Math.Abs(x);"]
        return [[TESTS] * sampling.n if p.endswith("Debug.Assert(") else bodies[: sampling.n] for p in prompts]


@needs_toolchain
def test_a_chunk_assembles_the_agreed_example():
    from safurai_csharp.csharp import Executor, Limits

    teacher = Teacher()
    meter = Meter(teacher)
    specs = [TaskSpec(0, "numerics", "squares", ()), TaskSpec(1, "junk", "junk", ())]
    out = decomposed.run_chunk(meter, Executor(Limits(), workers=2), specs, [7, 8],
                               SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=768, seed=1), solutions=3)
    (raw, steps), (junk_raw, junk_steps) = out
    assert junk_raw == "I cannot." and junk_steps["dropped_at"] == "task"
    # bodies: the solution's own `x * x`, then `x + x`, `x * x` again (a layout copy: dropped), Abs*Abs
    assert steps["bodies"] == 3 and steps["asserts"] == 4
    # x*x and Abs*Abs pass assertions {0,1,2} (2 x 3 = 6); x+x passes {0,2,3} alone (3)
    assert steps["agreeing_bodies"] == 2 and steps["asserts_kept"] == 3 and steps["dropped_at"] is None
    p = parse_answer(raw)
    assert "return x * x;" in p.solution and "public static int Square(int x)" in p.solution
    assert p.tests.splitlines() == ["Debug.Assert(Square(2) == 4);", "Debug.Assert(Square(-3) == 9);",
                                    "Debug.Assert(Square(0) == 0);"]
    kinds = [k for k, *_ in teacher.calls]
    assert kinds == ["chat", "generate", "generate"]
    _, prompts, comp = teacher.calls[1]
    assert len(prompts) == 1 and prompts[0].endswith("public static int Square(int x) {")  # MultiPL-E's shape
    assert "// Write a C# static method" in prompts[0] and comp.n == 3 and comp.stop == ["\n    }\n"]
    assert comp.max_new_tokens == decomposed.PART_TOKENS
    _, (tests_prompt,), tcomp = teacher.calls[2]
    assert tcomp.n == 1 and tests_prompt.endswith("public static void Main(string[] args) {\n        Debug.Assert(")
    assert "return x * x" not in tests_prompt and "throw new NotImplementedException();" in tests_prompt
    assert meter.tally["generated_tokens"] == 20 + 15 + 5
    # the scripted calls take no time: the seconds are the cross-check's in the sandbox (mono compiles)
    assert meter.tally["seconds"] > 0.5


class TwoTestSamples(Teacher):
    """The first test sample gets every expected value wrong; the second is TESTS."""

    WRONG = "Square(2) == 5);\n        Debug.Assert(Square(3) == 10);\n        Debug.Assert(Square(2) == 4"

    def generate(self, prompts, sampling, seeds=None):
        out = super().generate(prompts, sampling, seeds)
        return [[self.WRONG, TESTS, TESTS][: sampling.n] if p.endswith("Debug.Assert(") else o
                for p, o in zip(prompts, out)]


@needs_toolchain
@pytest.mark.parametrize("tests_per_task", [1, 3])
def test_more_test_samples_pool_their_assertions(tests_per_task):
    from safurai_csharp.csharp import Executor, Limits

    teacher = TwoTestSamples()
    out = decomposed.run_chunk(Meter(teacher), Executor(Limits(), workers=2), [TaskSpec(0, "numerics", "sq", ())],
                               [7], SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1), solutions=3,
                               tests_per_task=tests_per_task)
    (raw, steps), = out
    assert teacher.calls[2][2].n == tests_per_task
    if tests_per_task == 1:  # one sample with wrong expected values sinks the task
        assert steps["dropped_at"] == "agreement" and steps["asserts"] == 2
        return
    # pooled: 2 wrong + 4 from TESTS (its copy in the third sample adds nothing)
    assert steps["asserts"] == 6 and steps["dropped_at"] is None and steps["asserts_kept"] == 3
    assert parse_answer(raw).tests.splitlines() == ["Debug.Assert(Square(2) == 4);", "Debug.Assert(Square(-3) == 9);",
                                                    "Debug.Assert(Square(0) == 0);"]


@needs_toolchain
def test_the_assembled_example_passes_the_filter_execution_step():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.synth.steps import ExecutionStep

    out = decomposed.run_chunk(Meter(Teacher()), Executor(Limits(), workers=2), [TaskSpec(0, "numerics", "sq", ())],
                               [7], SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1), solutions=3)
    p = parse_answer(out[0][0])
    rec = {"instruction": p.instruction, "solution": p.solution, "tests": p.tests, "id": "x"}
    assert ExecutionStep(Executor(Limits(), workers=2), min_asserts=3)([rec]) == [None]


def test_copied_placeholders_and_helper_methods_are_dropped_before_any_sampling():
    class Copier(Teacher):
        def chat(self, conversations, sampling, seeds=None):
            self.last_stats = {"generated_tokens": 1, "prompt_tokens": 0}
            return [[TASK.replace("Squares", "ClassName")], [TASK.replace("    }\n}", "    }\n    public static int H() "
                                                                            "{ return 1; }\n}")]]

    teacher = Copier()
    out = decomposed.run_chunk(Meter(teacher), None, [TaskSpec(0, "a", "b", ()), TaskSpec(1, "a", "b", ())], [1, 2],
                               SamplingConfig(temperature=0.7, seed=1), solutions=2)
    assert [s["reason"] for _, s in out] == ["placeholder_copied", "helper_methods"]
    assert [s["dropped_at"] for _, s in out] == ["task", "render"]
    assert teacher.calls == []  # nothing left to sample bodies or tests for


LIST_TASK = ("### Task\nWrite a C# static method `Evens.Below(int n)` that returns the even numbers from 0 up "
             "to n (exclusive), in order, as a list.\n\n### Solution\n```csharp\npublic static class Evens\n{\n"
             "    public static List<int> Below(int n)\n    {\n        var r = new List<int>();\n"
             "        for (int i = 0; i < n; i += 2) r.Add(i);\n        return r;\n    }\n}\n```\n")
# what small teachers write for a list result: `==` and `.Equals` against a list built in place
# (reference equality in C#: no body can pass them as written)
LIST_TESTS = ("Below(5) == new List<int> { 0, 2, 4 });\n        Debug.Assert(Below(1).Equals(new List<int> { 0 }));\n"
              "        Debug.Assert(Below(0) == new List<int>());\n        Debug.Assert(Below(4).Count == 2);\n"
              "        Debug.Assert(Below(9)")


class ListTeacher(Teacher):
    def chat(self, conversations, sampling, seeds=None):
        super().chat(conversations, sampling, seeds)
        return [[LIST_TASK] for _ in conversations]

    def generate(self, prompts, sampling, seeds=None):
        super().generate(prompts, sampling, seeds)
        body = "\n        return Enumerable.Range(0, n).Where(i => i % 2 == 0).ToList();"
        return [[LIST_TESTS] * sampling.n if p.endswith("Debug.Assert(") else [body] * sampling.n for p in prompts]


@needs_toolchain
def test_collections_compared_by_reference_are_compared_by_content():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.synth.steps import ExecutionStep

    executor = Executor(Limits(), workers=2)
    (raw, steps), = decomposed.run_chunk(Meter(ListTeacher()), executor, [TaskSpec(0, "collections", "evens", ())],
                                         [7], SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1), solutions=2)
    # as written, only `Below(4).Count == 2` could pass: 1 assertion, below the filter's 3
    assert steps["dropped_at"] is None and steps["asserts_kept"] == 4 and steps["agreeing_bodies"] == 2
    p = parse_answer(raw)
    assert p.tests.splitlines()[:2] == [
        "Debug.Assert(global::SafuraiHarness.Eq.Structural(Below(5), new List<int> { 0, 2, 4 }));",
        "Debug.Assert(global::SafuraiHarness.Eq.Structural(Below(1), new List<int> { 0 }));"]
    # the filter runs the rewritten tests as they are: they pass, and still fail the `return default` mutant
    rec = {"instruction": p.instruction, "solution": p.solution, "tests": p.tests, "id": "x"}
    assert ExecutionStep(executor, min_asserts=3)([rec]) == [None]
    wrong = {**rec, "solution": p.solution.replace("i += 2", "i += 1")}
    assert ExecutionStep(executor, min_asserts=3, prune=False)([wrong]) != [None]


def test_the_task_step_stops_at_the_solution_fence_and_gets_it_back():
    # vLLM leaves the stop string out: the answer ends where the solution's closing fence began
    cut = TASK[: TASK.rindex("\n```\n")]
    assert decomposed.close_fence(cut).endswith("}\n```\n")
    assert decomposed.close_fence(TASK) == TASK  # ended by EOS instead: left as it is
    assert decomposed.close_fence("I cannot.") == "I cannot."
    from safurai_csharp.synth.parse import parse_task_solution

    assert parse_task_solution(decomposed.close_fence(cut)) == parse_task_solution(TASK)


class SecondTry(Teacher):
    """The task step fails first (helper methods) for every task, and answers TASK, cut at the
    solution's closing fence, when asked again with another seed."""

    def chat(self, conversations, sampling, seeds=None):
        super().chat(conversations, sampling, seeds)
        self.calls[-1] = ("chat", conversations, sampling, list(seeds))
        helper = TASK.replace("    }\n}", "    }\n    public static int H() { return 1; }\n}")
        return [[helper if s in (7, 8) else TASK[: TASK.rindex("\n```\n")]] for s in seeds]


@needs_toolchain
def test_a_task_that_fails_the_task_step_is_asked_again_with_another_seed():
    from safurai_csharp.csharp import Executor, Limits

    teacher = SecondTry()
    specs = [TaskSpec(0, "numerics", "squares", ()), TaskSpec(1, "numerics", "cubes", ())]
    sampler = SamplingConfig(temperature=0.7, max_new_tokens=768, seed=1)
    once = decomposed.run_chunk(Meter(SecondTry()), None, specs, [7, 8], sampler, solutions=3)
    assert [s["dropped_at"] for _, s in once] == ["render", "render"] and [s["attempts"] for _, s in once] == [1, 1]

    out = decomposed.run_chunk(Meter(teacher), Executor(Limits(), workers=2), specs, [7, 8], sampler,
                               solutions=3, task_attempts=3)
    chats = [c for c in teacher.calls if c[0] == "chat"]
    assert len(chats) == 2  # both passed at the second attempt: no third
    assert chats[0][3] == [7, 8] and chats[1][3] == [decomposed.attempt_seed(7, 2), decomposed.attempt_seed(8, 2)]
    assert all(c[2].stop == [decomposed.SOLUTION_END] for c in chats)
    assert [s["attempts"] for _, s in out] == [2, 2] and [s["dropped_at"] for _, s in out] == [None, None]
    assert "return x * x;" in parse_answer(out[0][0]).solution
    assert decomposed.attempt_seed(7, 1) == 7 and decomposed.attempt_seed(7, 2) not in (7, 8)


class OneCallPerRound(Teacher):
    """Task 1's first task-step answer has a helper method; everything else is as Teacher's.
    With `together`, an engine that can run several requests in one call."""

    def __init__(self, combined):
        super().__init__()
        self.rounds = []
        if combined:
            self.together = self._together

    def chat(self, conversations, sampling, seeds=None):
        super().chat(conversations, sampling, seeds)
        helper = TASK.replace("    }\n}", "    }\n    public static int H() { return 1; }\n}")
        return [[helper if s == 8 else TASK] for s in seeds]

    def _together(self, requests):
        self.rounds.append([("chat" if r.chat else "generate", len(r.items)) for r in requests])
        out, tokens = [], 0
        for r in requests:  # last_stats describes the whole call, as an engine's does
            out.append((self.chat if r.chat else self.generate)(r.items, r.sampling, seeds=r.seeds))
            tokens += self.last_stats["generated_tokens"]
        self.last_stats = {"generated_tokens": tokens, "prompt_tokens": 0}
        return out


@needs_toolchain
def test_the_retry_shares_an_engine_call_with_the_first_drafts_samples():
    from safurai_csharp.csharp import Executor, Limits

    specs = [TaskSpec(0, "numerics", "squares", ()), TaskSpec(1, "numerics", "cubes", ())]
    sampler = SamplingConfig(temperature=0.7, max_new_tokens=768, seed=1)
    runs = {}
    for combined in (False, True):
        teacher = OneCallPerRound(combined)
        meter = Meter(teacher)
        runs[combined] = decomposed.run_chunk(meter, Executor(Limits(), workers=2), specs, [7, 8], sampler,
                                              solutions=3, task_attempts=2), teacher, meter.tally
    assert runs[True][0] == runs[False][0]  # the same examples either way
    assert [s["attempts"] for _, s in runs[True][0]] == [1, 2] and all(s["dropped_at"] is None for _, s in runs[True][0])
    # one engine call per round: both task-step answers; the retry with task 0's bodies and tests;
    # task 1's bodies and tests
    assert runs[True][1].rounds == [[("chat", 2)], [("chat", 1), ("generate", 1), ("generate", 1)],
                                    [("generate", 1), ("generate", 1)]]
    assert runs[False][1].rounds == [] and len(runs[False][1].calls) == len(runs[True][1].calls) == 6
    assert runs[True][2]["generated_tokens"] == runs[False][2]["generated_tokens"]


def test_output_agreement_groups_bodies_by_what_they_return():
    # bodies 0 and 2 return the same values on all three inputs; body 1 differs on the second
    assert decomposed.agree_outputs([["i4", "i9", "i1"], ["i4", "i6", "i1"], ["i4", "i9", "i1"]], 2) == (0, [0, 1, 2])
    assert decomposed.agree_outputs([["i4", "i9", "i1"], ["i4", "i6", "i1"], ["i4", "i9", "i1"]], 3) is None
    # a body that threw on an input (None) agrees only with bodies that threw there too; the
    # inputs without a value are no test
    assert decomposed.agree_outputs([["i4", None, "i1"], ["i4", None, "i1"], ["i4", "i2", "i1"]], 2) == (0, [0, 2])
    assert decomposed.agree_outputs([[None, None], [None, None]], 1) is None  # nothing returned
    # bodies that return nothing (e.g. do not compile) are no group, however many
    assert decomposed.agree_outputs([[None, None]] * 3 + [["i1", "i2"]] * 2, 2) == (3, [0, 1])
    # nor bodies that return the same value whatever the input (here 0 three times)
    assert decomposed.agree_outputs([["i0", "i0", "i0"]] * 3 + [["i1", "i2", "i3"]] * 2, 2) == (3, [0, 1, 2])
    assert decomposed.agree_outputs([["i0", "i0", "i0"]] * 3, 1) is None
    assert decomposed.agree_outputs([], 1) is None


class FewRightTests(Teacher):
    """Of the tests' expected values only the first is right, and it holds for every body
    (x*x, x+x and Abs*Abs all give 4 at 2); the bodies are as in Teacher."""

    WRONG = ("Square(2) == 4);\n        Debug.Assert(Square(3) == 10);\n        Debug.Assert(Square(-1) == 2);\n"
             "        Debug.Assert(Square(3) == 8);\n        Debug.Assert(Square(x: 1) == 3);\n"
             "        Debug.Assert(Square(5)")

    def generate(self, prompts, sampling, seeds=None):
        out = super().generate(prompts, sampling, seeds)
        return [[self.WRONG] * sampling.n if p.endswith("Debug.Assert(") else o for p, o in zip(prompts, out)]


class AllWrongTests(FewRightTests):
    WRONG = FewRightTests.WRONG.replace("Square(2) == 4", "Square(2) == 5")


@needs_toolchain
@pytest.mark.parametrize("min_bodies", [0, 2, 3])
def test_too_few_agreed_tests_are_extended_by_the_bodies_outputs(min_bodies):
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.synth.steps import ExecutionStep

    executor = Executor(Limits(), workers=2)
    sampler = SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1)
    (raw, steps), = decomposed.run_chunk(Meter(FewRightTests()), executor, [TaskSpec(0, "numerics", "sq", ())], [7],
                                         sampler, solutions=3, output_agreement=min_bodies)
    if min_bodies != 2:  # off, or more bodies than agree (x*x and Abs*Abs; x+x differs)
        # the tests' own agreement: all three bodies on `Square(2) == 4`, too few for the filter
        assert steps["dropped_at"] is None and steps["asserts_kept"] == 1 and "agreement" not in steps
        assert ("outputs" in steps) == bool(min_bodies)
        if min_bodies:  # what output agreement saw is in the record
            assert steps["outputs"] == {"inputs": 3, "bodies_answering": 3, "largest_group": 2,
                                        "compiling_asserts": 5, "tests_kept": 1}
        return
    assert steps["dropped_at"] is None and steps["agreement"] == "outputs"
    assert steps["agreeing_bodies"] == 2 and steps["asserts_kept"] == 3
    p = parse_answer(raw)
    assert "return x * x;" in p.solution
    # the tests' inputs (Square(3) once; `x: 1` is no form the solver runs alone, split.py),
    # each with the value the agreeing bodies return
    assert p.tests.splitlines() == ["Debug.Assert(Square(2) == 4);", "Debug.Assert(Square(3) == 9);",
                                    "Debug.Assert(Square(-1) == 1);"]
    rec = {"instruction": p.instruction, "solution": p.solution, "tests": p.tests, "id": "x"}
    assert ExecutionStep(executor, min_asserts=3)([rec]) == [None]
    # they are tests of the values: the disagreeing body fails them
    plus = {**rec, "solution": p.solution.replace("x * x", "x + x")}
    assert ExecutionStep(executor, min_asserts=3, prune=False)([plus]) != [None]


@needs_toolchain
def test_tests_no_body_agrees_with_are_not_replaced_by_outputs():
    from safurai_csharp.csharp import Executor, Limits

    (raw, steps), = decomposed.run_chunk(Meter(AllWrongTests()), Executor(Limits(), workers=2),
                                         [TaskSpec(0, "numerics", "sq", ())], [7],
                                         SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1), solutions=3,
                                         output_agreement=2)
    # two bodies return alike on every input, but the teacher's independent tests speak
    # against all of them: no tests are written from their outputs
    assert steps["dropped_at"] == "agreement" and "outputs" not in steps


@needs_toolchain
def test_a_body_that_throws_on_one_input_still_answers_the_others():
    from safurai_csharp.csharp import Executor, Limits

    _ins, task, _cls = decomposed.task_draft(TASK)
    throws_at_0 = "\n        if (x == 0) throw new ArgumentException();\n        return x * x;"
    (found, seen), = decomposed.by_outputs([task], [[throws_at_0, "\n        return x * x;"]],
                                           [["Square(0)", "Square(3)", "Square(4)"]], [0],
                                           Executor(Limits(), workers=2), min_bodies=1)
    assert seen == {"inputs": 3, "bodies_answering": 2, "largest_group": 1}
    body, group, tests = found
    assert (body, group) == (0, 1) and tests == ["Debug.Assert(Square(3) == 9);", "Debug.Assert(Square(4) == 16);"]


def test_a_given_task_keeps_its_statement_whatever_the_answer_repeats():
    stated = "Return the sum of the even numbers in the list, or 0 when there are none."
    block = "```csharp\npublic static class A { }\n```\n"
    answer = "Sure.\n### Task\nSum evens.\n\n### Solution\n" + block
    assert decomposed.with_task(stated, answer) == "### Task\n" + stated + "\n\n### Solution\n" + block
    assert decomposed.with_task(stated, block) == "### Task\n" + stated + "\n\n### Solution\n" + block  # no heading


class GivenTeacher(Teacher):
    """Asked for a given task's solution: a reworded task, then the solution."""

    def chat(self, conversations, sampling, seeds=None):
        self.calls.append(("chat", conversations, sampling))
        self.last_stats = {"generated_tokens": 10 * len(conversations), "prompt_tokens": 0}
        return [[TASK.replace("Write a C# static method", "Make")] for _ in conversations]


@needs_toolchain
def test_a_given_task_is_solved_and_checked_like_a_new_one():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.synth.prompts import SOLUTION_SYSTEM

    stated = "Square the integer x (negative inputs too) and return the result as an int."
    teacher = GivenTeacher()
    (raw, steps), = decomposed.run_chunk(Meter(teacher), Executor(Limits(), workers=2), [decomposed.Given(stated)],
                                         [7], SamplingConfig(temperature=0.7, max_new_tokens=300, seed=1), solutions=3)
    (system, user), = teacher.calls[0][1]
    assert system["content"] == SOLUTION_SYSTEM and stated in user["content"]
    assert "### Tests" not in system["content"] and teacher.calls[0][2].stop == [decomposed.SOLUTION_END]
    assert steps["dropped_at"] is None and steps["asserts_kept"] == 3
    p = parse_answer(raw)
    assert p.instruction == stated and "return x * x;" in p.solution
    _, (body_prompt,), _ = teacher.calls[1]
    assert f"// {stated}" in body_prompt  # the bodies and tests are asked for the given statement
