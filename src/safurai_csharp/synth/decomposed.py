"""The decomposed self-instruct recipe (`generate.recipe: decomposed`): one answer holding task,
solution and tests at once is a lot for a 0.5B teacher (docs/data.md: 58 of 64 first answers
failed in the sandbox, most of them at compile time, many with tests calling another class).
SelfCodeAlign (Wei et al. 2024) splits the work, and CodeT (Chen et al. 2022) picks the
answer that independent tests and several solutions agree on:

1. chat: a task and its solution, one class with one static method (no tests);
2. completion: `solutions_per_task` more bodies for the same method, sampled in MultiPL-E's
   completion format (the task as a C# prefix: the teacher's strongest skill, 46% pass@1 on
   HumanEval-C#);
3. completion: `tests_per_task` samples of tests, written from the statement and the signature alone (the body is
   `throw new NotImplementedException();`, so the solution's mistakes are not copied into
   the expected values): the prefix ends in `Main` at `Debug.Assert(`, the shape of
   MultiPL-E's own tests (asked in a chat turn instead, the 0.5B teacher wrapped its
   assertions in test classes and copied the prompt's placeholders: 9 of 16 drafts had no
   usable assertion);
4. sandbox: every distinct body against every assertion on its own (an assertion comparing the
   result with a collection it builds, by `==` or `.Equals`, compares contents: modes.structural_fresh);
   bodies are grouped by the
   set of assertions they pass, a group scores (bodies in it) x (assertions passed) (CodeT's
   dual agreement), and the best group's first body with the assertions it passes makes the
   example;
5. optional (`generate.output_agreement` k > 0), for a task that step 4 leaves with 1 or 2
   assertions: the tests' *inputs* are kept and their expected values replaced by what the
   bodies return (MBR-exec, Shi et al. 2022; AlphaCode's clustering): each body runs as the
   sandbox's split solver, which reports every call's value; bodies returning the same values
   on every input form a group, and if the group of step 4's body has at least k distinct
   bodies it writes the tests (synth/literals.py turns each value back into a C# expression).
   The teacher's expected values are computed in its head, the bodies' outputs are computed;
   step 4's agreement is the independent evidence they extend.

The example then goes through the same filter as any other (compiles, >= min_asserts,
calls the solution, fails on the `return default` mutant, dedup, decontamination).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..benchmark.translate import INDENT, STOP_TOKENS
from ..csharp.modes import structural_fresh
from ..csharp.split import entry_point, split
from . import literals
from .completion_format import CompletionTask, RenderError, shell, tests_block
from .parse import ParseError, assert_statements, parse_task_solution, render_answer
from .program import rewrite_qualifiers
from .prompts import Message, TaskSpec, solution_messages, task_messages

# the drop reasons of the recipe's own steps (generate's metrics count them)
STEPS = ("task", "render", "tests", "agreement")


# A 5-20 line method body, or 6 assertions, fits well within this (a sample that never
# reaches MultiPL-E's stop token would otherwise run to generate.max_new_tokens).
PART_TOKENS = 320
# Seconds (wall and CPU) per cross-check program: the exercises run in milliseconds, and a
# sampled body that loops would otherwise hold each of its pairs for the sandbox's full limit
# (10 s). The filter later runs the assembled example under the full limits.
CHECK_LIMIT_S = 2
# The fence line that closes the task step's solution block. Everything after it (in 78 of 78
# failed first answers of a 128-task run: an "### Explanation" section, 26.6% of their
# characters) is never read, so generation stops there.
SOLUTION_END = "\n```\n"
# A task whose tests' agreement keeps fewer assertions than this (filter.execution.min_asserts'
# default: the filter would drop it), but at least one, tries output agreement, when it is on.
OUTPUTS_BELOW = 3
# Longest expected value output agreement writes into a test (characters): a body may return
# a huge collection, and a test line that long teaches nothing.
MAX_LITERAL = 400
# The skeleton of the task prompt, copied verbatim instead of replaced.
PLACEHOLDERS = re.compile(r"\b(?:ClassName|MethodName|ReturnType|ParameterType)\b")


def tests_prompt(task: CompletionTask) -> str:
    """The task's prefix with a stub body, continued into MultiPL-E-style tests."""
    return (f"{task.prompt}{INDENT * 2}throw new NotImplementedException();\n{INDENT}}}\n"
            f"{INDENT}public static void Main(string[] args) {{\n{INDENT * 2}{TESTS_LEAD}")


TESTS_LEAD = "Debug.Assert("


def signature(task: CompletionTask) -> str:
    """`public static int Foo(int[] xs)`: the prompt's last line without its brace."""
    return task.prompt.rstrip().rsplit("\n", 1)[-1].strip().removesuffix("{").strip()


def solution_text(cls: str, task: CompletionTask, completion: str) -> str:
    """The example's solution: the method with the chosen body, in its own class."""
    return f"public static class {cls}\n{{\n    {signature(task)}\n    {{{completion.rstrip()}\n    }}\n}}"


def agree(passes: Sequence[Sequence[bool]]) -> tuple[int, list[int]] | None:
    """CodeT's dual agreement over passes[body][assertion]: the bodies that pass the same set
    of assertions form a group scored |group| x |set|; returns the best group's first body
    and its assertions (ties: more assertions, then the earlier body), None when no body
    passes any assertion."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for b, row in enumerate(passes):
        key = tuple(j for j, ok in enumerate(row) if ok)
        if key:
            groups.setdefault(key, []).append(b)
    if not groups:
        return None
    key, members = max(groups.items(), key=lambda kv: (len(kv[1]) * len(kv[0]), len(kv[0]), -kv[1][0]))
    return members[0], list(key)


def unqualified(assertion: str, entry: str) -> str:
    """`Squares.Square(2)` -> `Square(2)`: asked not to, small teachers still name a class,
    and in MultiPL-E's shape the method lives in the tests' own class."""
    return rewrite_qualifiers(assertion, {entry}, lambda cls: "")


def _distinct(bodies: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for b in bodies:
        key = " ".join(b.split())
        if key and key not in seen:
            seen[key] = b
    return list(seen.values())


def cross_check(tasks: Sequence[CompletionTask], cands: Sequence[Sequence[str]],
                asserts: Sequence[Sequence[str]], executor: Any) -> tuple[list[list[list[bool]]], list[list[int]]]:
    """passes[task][body][assertion]: each body run against each assertion on its own; and per
    task the assertions that compile (against a stub body).

    A program that does not compile costs the sandbox a compile of its own (a batch compile
    cannot tell whose error it is), and most compile errors are a body's or an assertion's
    alone. So bodies are compiled once against an empty Main and assertions once against
    a stub body, and only the pairs of compiling parts run (measured on 64 tasks: see
    docs/data.md)."""
    def prog(d: int, body: str, tests: str) -> Any:
        return replace(tasks[d], tests=tests_block(tests)).program(body)

    stub = f"\n{INDENT * 2}throw new NotImplementedException();"
    body_jobs = [(d, b) for d in range(len(tasks)) if asserts[d] for b in range(len(cands[d]))]
    assert_jobs = [(d, a) for d in range(len(tasks)) for a in range(len(asserts[d]))]
    checks = executor.run([prog(d, cands[d][b], "") for d, b in body_jobs]
                          + [prog(d, stub, asserts[d][a]) for d, a in assert_jobs]) if assert_jobs else []
    compiles = {("b", *job): res.status.value != "compile_error" for job, res in zip(body_jobs, checks)}
    compiles.update({("a", *job): res.status.value != "compile_error"
                     for job, res in zip(assert_jobs, checks[len(body_jobs):])})
    jobs = [(d, b, a) for d, b in body_jobs if compiles["b", d, b]
            for a in range(len(asserts[d])) if compiles["a", d, a]]
    verdicts = executor.run([prog(d, cands[d][b], asserts[d][a]) for d, b, a in jobs]) if jobs else []
    passes = [[[False] * len(asserts[d]) for _ in cands[d]] for d in range(len(tasks))]
    for (d, b, a), res in zip(jobs, verdicts, strict=True):
        passes[d][b][a] = res.passed
    compiling = [[a for a in range(len(asserts[d])) if compiles["a", d, a]] for d in range(len(tasks))]
    return passes, compiling


def agree_outputs(values: Sequence[Sequence[str | None]], min_bodies: int,
                  anchor: int | None = None) -> tuple[int, list[int]] | None:
    """Output agreement over values[body][site] (a body's returned value on each test input,
    None where it threw, failed or was not reached): bodies that return the same values on
    every input form a group; the largest (ties: more inputs with a value, then the earlier
    body) of at least `min_bodies` bodies gives its first body and the inputs it has values
    for. Bodies that return nothing (no compile, a throw on the first input) join no group, and
    neither do bodies that return one value for every input: two bodies returning 0 (or true)
    whatever they are given agree on nothing a test could check. With `anchor`, only the group
    of that body counts. None when no group is large enough."""
    groups: dict[tuple[str | None, ...], list[int]] = {}
    for b, row in enumerate(values):
        if len({v for v in row if v is not None}) >= 2 and (anchor is None or row == values[anchor]):
            groups.setdefault(tuple(row), []).append(b)
    best = max(groups.items(), key=lambda kv: (len(kv[1]), sum(v is not None for v in kv[0]), -kv[1][0]),
               default=None)
    if best is None or len(best[1]) < max(1, min_bodies):
        return None
    return best[1][0], [k for k, v in enumerate(best[0]) if v is not None]


def probes(task: CompletionTask, asserts: Sequence[str]) -> list[str]:
    """The distinct test inputs of a task, as calls `Name(args)`: one per assertion that calls
    the method exactly once in a form the sandbox's solver can run alone (csharp/split.py)."""
    calls: dict[str, None] = {}
    for a in asserts:
        sp = split(task.prompt, tests_block(a))
        if sp is not None and sp.sites == 1:
            calls.setdefault(" ".join(sp.calls[0].split()), None)
    return list(calls)


def output_tests(task: CompletionTask, calls: Sequence[str], values: Sequence[str]) -> list[str]:
    """Assertions stating that each call returns the agreed value, written as a C# expression
    of the method's return type (collections compare by content: modes.structural_fresh)."""
    entry = entry_point(task.prompt)
    out = []
    for call, value in zip(calls, values, strict=True):
        lit = literals.render(value, entry[0]) if entry else None
        if lit is not None and len(lit) <= MAX_LITERAL:
            out.append(structural_fresh(f"Debug.Assert({call} == {lit});"))
    return out


def by_outputs(tasks: Sequence[CompletionTask], cands: Sequence[Sequence[str]], calls: Sequence[Sequence[str]],
               anchors: Sequence[int], executor: Any,
               min_bodies: int) -> list[tuple[tuple[int, int, list[str]] | None, dict[str, int]]]:
    """Per task: (body, agreeing bodies, assertions) from the values its bodies return on the
    task's own test inputs (one split program per body and input: the solver reports the call's
    value), or None; and what it saw (inputs, bodies that returned values, the largest group
    of bodies returning alike) for the record's steps. Only the group of the task's anchor
    (the body its tests' agreement chose) can write the tests: they then extend assertions
    that independent tests and this body already agree on, to every input of the tests."""
    # One program per (body, input): an exception ends a solver's run, and the teachers' tests
    # often start with an edge case (empty, null) that some bodies throw on. The assertion
    # always holds; the solver reports the call's value.
    jobs = [(d, b, k) for d in range(len(tasks)) for b in range(len(cands[d])) for k in range(len(calls[d]))]
    programs = [replace(tasks[d], tests=tests_block(f"Debug.Assert(new object[] {{ {calls[d][k]} }} != null);"))
                .program(cands[d][b]) for d, b, k in jobs]
    if programs:
        executor.run(programs)
    values: list[list[list[str | None]]] = [[[None] * len(calls[d]) for _ in cands[d]] for d in range(len(tasks))]
    for i, (d, b, k) in enumerate(jobs):
        sites = executor.site_values(i) or []
        if sites and sites[0][0] == 0:  # flags: no Debug.Fail, not over the output cap
            values[d][b][k] = sites[0][1]
    out: list[tuple[tuple[int, int, list[str]] | None, dict[str, int]]] = []
    for d, task in enumerate(tasks):
        answering = [tuple(row) for row in values[d] if any(v is not None for v in row)]
        seen = {"inputs": len(calls[d]), "bodies_answering": len(answering),
                "largest_group": max((answering.count(row) for row in answering), default=0)}
        chosen = agree_outputs(values[d], min_bodies, anchors[d])
        if chosen is None:
            out.append((None, seen))
            continue
        b, sites = chosen
        group = sum(1 for row in values[d] if row == values[d][b])
        tests = output_tests(task, [calls[d][k] for k in sites], [values[d][b][k] for k in sites])
        out.append(((b, group, tests) if tests else None, seen))
    return out


def attempt_seed(seed: int, attempt: int) -> int:
    """The task step's seed at each attempt: the first is the task's own seed (the same answers
    as before attempts existed); later ones stay clear of the seed + 1 the tests step uses."""
    return seed if attempt == 1 else (seed + 1_000_003 * attempt) % 2**62


def close_fence(text: str) -> str:
    """The task step's answer with its code block closed again: generation stops at the
    fence that closes the solution (SOLUTION_END, not part of the output)."""
    return text.rstrip() + SOLUTION_END if text.count("```") % 2 else text


@dataclass(frozen=True)
class Given:
    """A task whose statement is given (an evolved task, stage evolve): the chat step writes its
    solution only, and the example keeps this statement word for word."""

    instruction: str


def task_step(spec: TaskSpec | Given) -> list[Message]:
    """The chat step's conversation: a new task and its solution, or a given task's solution."""
    return solution_messages(spec.instruction) if isinstance(spec, Given) else task_messages(spec)


def with_task(instruction: str, answer: str) -> str:
    """A given task's solution answer as a task-step answer: the given statement under
    '### Task', then the answer from its '### Solution' on (a task the teacher repeated or
    reworded before it is not the given one)."""
    at = answer.find("### Solution")
    solution = answer[at:] if at >= 0 else "### Solution\n" + answer.lstrip()
    return f"### Task\n{instruction}\n\n{solution}"


def check_executor(sandbox: Any) -> Any:
    """The sandbox of the cross-check: params.yaml's limits, capped at CHECK_LIMIT_S."""
    from ..csharp import make_executor

    return make_executor(sandbox.model_copy(update={"timeout_s": min(sandbox.timeout_s, CHECK_LIMIT_S),
                                                    "cpu_s": min(sandbox.cpu_s, int(CHECK_LIMIT_S))}))


def task_draft(text: str) -> tuple[str, CompletionTask, str]:
    """(instruction, task, solution class) from a task-step answer; raises ParseError (no
    usable task or solution, or a copied placeholder) or RenderError (not one class with one
    static method)."""
    instruction, solution = parse_task_solution(text)
    if PLACEHOLDERS.search(instruction) or PLACEHOLDERS.search(solution):
        raise ParseError("placeholder_copied")
    task, cls = shell(instruction, solution)
    return instruction, task, cls


def run_chunk(meter: Any, executor: Any, specs: Sequence[TaskSpec | Given], seeds: Sequence[int], sampler: Any,
              solutions: int, tests_per_task: int = 1, task_attempts: int = 1,
              output_agreement: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """_steps, its sandbox seconds (the cross-check between the engine calls) counted in the
    meter: the chunk's cost counts them as generation time, as the answer recipe's repair turn does."""
    with meter.counting():
        return _steps(meter, executor, specs, seeds, sampler, solutions, tests_per_task, task_attempts,
                      output_agreement)


def _steps(meter: Any, executor: Any, specs: Sequence[TaskSpec | Given], seeds: Sequence[int], sampler: Any,
           solutions: int, tests_per_task: int, task_attempts: int,
           output_agreement: int) -> list[tuple[str, dict[str, Any]]]:
    """One chunk of tasks through the four steps. Per task: the answer text for the record's
    `raw` (task, solution, agreed tests; or the last task-step answer when a step failed) and
    what the steps saw (`dropped_at`, `attempts` of the task step, bodies, assertions).

    A task whose task-step answer does not parse or is not one class with one method gets
    up to `task_attempts` answers in all (each with its own seed), before any later step.
    With `output_agreement` k > 0, a task whose tests' agreement keeps 1 to OUTPUTS_BELOW - 1
    assertions takes its tests from its bodies' outputs instead (by_outputs), when at least k
    distinct bodies, the agreed one among them, return the same values on its test inputs
    (`agreement: outputs` in its steps). A `Given` spec's chat step writes a solution only
    (task_step), and its example keeps the given statement."""
    from ..engines import Request, SamplingConfig, strip_prompt

    out: list[tuple[str, dict[str, Any]]] = [("", {"dropped_at": None}) for _ in specs]
    found: dict[int, tuple[int, str, CompletionTask, str]] = {}
    step1 = replace(sampler, stop=[SOLUTION_END])

    def sampling(n: int) -> SamplingConfig:
        return SamplingConfig(n=n, temperature=sampler.temperature, top_p=sampler.top_p, top_k=sampler.top_k,
                              max_new_tokens=min(PART_TOKENS, sampler.max_new_tokens), stop=list(STOP_TOKENS),
                              seed=sampler.seed)

    def samples(drafts: list[tuple[int, str, CompletionTask, str]]) -> list[Request]:
        """Steps 2 and 3 of these drafts: the bodies, then the tests (per-task seeds)."""
        parts = [Request([strip_prompt(t.prompt) for _, _, t, _ in drafts], sampling(solutions),
                         seeds=[seeds[i] for i, *_ in drafts])] if solutions else []
        # several test samples pool their assertions: one sample's wrong expected values no longer
        # sink the task, and agreement picks the assertions the bodies agree with
        return parts + [Request([tests_prompt(t) for _, _, t, _ in drafts], sampling(tests_per_task),
                                seeds=[seeds[i] + 1 for i, *_ in drafts])]

    # One engine call per round: the task step's next attempt for the tasks still without a
    # draft, together with the bodies and tests of the drafts the previous round found, so that
    # no call decodes a few long answers in a nearly empty batch (docs/data.md D13). Every
    # prompt keeps its own seed: the samples are those of one call per step.
    bodies: dict[int, list[str]] = {}
    tests: dict[int, list[str]] = {}
    fresh: list[tuple[int, str, CompletionTask, str]] = []
    for attempt in range(1, task_attempts + 2):
        todo = [i for i in range(len(specs)) if i not in found] if attempt <= task_attempts else []
        requests = ([Request([task_step(specs[i]) for i in todo], step1, chat=True,
                             seeds=[attempt_seed(seeds[i], attempt) for i in todo])] if todo else [])
        parts = samples(fresh) if fresh else []
        if not requests and not parts:
            break
        results = meter.together(requests + parts)
        for d, (i, *_draft) in enumerate(fresh):
            bodies[i] = results[-2][d] if solutions else []
            tests[i] = results[-1][d]
        fresh = []
        for i, text in zip(todo, [o[0] for o in results[0]] if todo else [], strict=True):
            text = close_fence(text)
            if isinstance(specs[i], Given):
                text = with_task(specs[i].instruction, text)
            out[i] = (text, {"dropped_at": None, "attempts": attempt})
            try:
                found[i] = (i, *task_draft(text))
                fresh.append(found[i])
            except ParseError as exc:
                out[i][1].update(dropped_at="task", reason=exc.reason)
            except RenderError as exc:
                out[i][1].update(dropped_at="render", reason=exc.reason)
    drafts = [found[i] for i in sorted(found)]
    if not drafts:
        return out
    bodies_of = [bodies[i] for i, *_ in drafts]
    tests_of = [tests[i] for i, *_ in drafts]

    cands: list[list[str]] = []
    asserts: list[list[str]] = []
    for d, ((i, _ins, task, _cls), more, answer) in enumerate(zip(drafts, bodies_of, tests_of, strict=True)):
        cands.append(_distinct([task.completion, *more]))
        asserts.append(list(dict.fromkeys(structural_fresh(unqualified(a, task.entry_point)) for sample in answer
                                          for a in assert_statements(TESTS_LEAD + sample))))
        out[i][1].update(bodies=len(cands[d]), asserts=len(asserts[d]))
        if not asserts[d]:
            out[i][1].update(dropped_at="tests", reason="no_assertions")
    tasks = [t for _, _, t, _ in drafts]
    passes, compiling = cross_check(tasks, cands, asserts, executor)
    chosen: list[tuple[int, int, list[str]] | None] = []
    for d in range(len(drafts)):
        agreed = agree(passes[d]) if asserts[d] else None
        chosen.append(None if agreed is None else
                      (agreed[0], sum(1 for row in passes[d] if row == passes[d][agreed[0]]),
                       [asserts[d][a] for a in agreed[1]]))
    # Not for tasks no body agrees with at all: there the teacher's independent tests speak
    # against every body, whose shared reading of the task may be the wrong one. Even with
    # agreed tests it can be (docs/data.md D12: 2 of 4 examples it added follow the bodies
    # where the statement asks otherwise), which is why it is off by default.
    weak = [d for d in range(len(drafts)) if output_agreement and chosen[d] is not None
            and len(chosen[d][2]) < OUTPUTS_BELOW]
    if weak:
        found_out = by_outputs([tasks[d] for d in weak], [cands[d] for d in weak],
                               [probes(tasks[d], [asserts[d][a] for a in compiling[d]]) for d in weak],
                               [chosen[d][0] for d in weak], executor, output_agreement)
        for d, (alt, seen) in zip(weak, found_out, strict=True):
            out[drafts[d][0]][1]["outputs"] = {**seen, "compiling_asserts": len(compiling[d]),
                                               "tests_kept": len(chosen[d][2])}
            if alt is not None and len(alt[2]) > len(chosen[d][2]):
                chosen[d] = alt
                out[drafts[d][0]][1]["agreement"] = "outputs"

    for d, (i, instruction, task, cls) in enumerate(drafts):
        if not asserts[d]:
            continue
        if chosen[d] is None:
            out[i][1].update(dropped_at="agreement", reason="no_body_passes")
            continue
        b, group, kept = chosen[d]
        raw = render_answer(instruction, solution_text(cls, task, cands[d][b]), "\n".join(kept))
        out[i] = (raw, {**out[i][1], "agreeing_bodies": group, "asserts_kept": len(kept)})
    return out
