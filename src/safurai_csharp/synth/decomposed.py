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
   example.

The example then goes through the same filter as any other (compiles, >= min_asserts,
calls the solution, fails on the `return default` mutant, dedup, decontamination).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..benchmark.translate import INDENT, STOP_TOKENS
from ..csharp.modes import structural_fresh
from .completion_format import CompletionTask, RenderError, shell, tests_block
from .parse import ParseError, assert_statements, parse_task_solution, render_answer
from .program import rewrite_qualifiers
from .prompts import TaskSpec, task_messages

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
                asserts: Sequence[Sequence[str]], executor: Any) -> list[list[list[bool]]]:
    """passes[task][body][assertion]: each body run against each assertion on its own.

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
    return passes


def attempt_seed(seed: int, attempt: int) -> int:
    """The task step's seed at each attempt: the first is the task's own seed (the same answers
    as before attempts existed); later ones stay clear of the seed + 1 the tests step uses."""
    return seed if attempt == 1 else (seed + 1_000_003 * attempt) % 2**62


def close_fence(text: str) -> str:
    """The task step's answer with its code block closed again: generation stops at the
    fence that closes the solution (SOLUTION_END, not part of the output)."""
    return text.rstrip() + SOLUTION_END if text.count("```") % 2 else text


def task_draft(text: str) -> tuple[str, CompletionTask, str]:
    """(instruction, task, solution class) from a task-step answer; raises ParseError (no
    usable task or solution, or a copied placeholder) or RenderError (not one class with one
    static method)."""
    instruction, solution = parse_task_solution(text)
    if PLACEHOLDERS.search(instruction) or PLACEHOLDERS.search(solution):
        raise ParseError("placeholder_copied")
    task, cls = shell(instruction, solution)
    return instruction, task, cls


def run_chunk(meter: Any, executor: Any, specs: Sequence[TaskSpec], seeds: Sequence[int], sampler: Any,
              solutions: int, tests_per_task: int = 1, task_attempts: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """One chunk of tasks through the four steps. Per task: the answer text for the record's
    `raw` (task, solution, agreed tests; or the last task-step answer when a step failed) and
    what the steps saw (`dropped_at`, `attempts` of the task step, bodies, assertions).

    A task whose task-step answer does not parse or is not one class with one method gets
    up to `task_attempts` answers in all (each with its own seed), before any later step."""
    from ..engines import SamplingConfig, strip_prompt

    out: list[tuple[str, dict[str, Any]]] = [("", {"dropped_at": None}) for _ in specs]
    found: dict[int, tuple[int, str, CompletionTask, str]] = {}
    step1 = replace(sampler, stop=[SOLUTION_END])
    for attempt in range(1, task_attempts + 1):
        todo = [i for i in range(len(specs)) if i not in found]
        if not todo:
            break
        texts = [o[0] for o in meter.chat([task_messages(specs[i]) for i in todo], step1,
                                          seeds=[attempt_seed(seeds[i], attempt) for i in todo])]
        for i, text in zip(todo, texts, strict=True):
            text = close_fence(text)
            out[i] = (text, {"dropped_at": None, "attempts": attempt})
            try:
                found[i] = (i, *task_draft(text))
            except ParseError as exc:
                out[i][1].update(dropped_at="task", reason=exc.reason)
            except RenderError as exc:
                out[i][1].update(dropped_at="render", reason=exc.reason)
    drafts = [found[i] for i in sorted(found)]
    if not drafts:
        return out

    def sampling(n: int) -> SamplingConfig:
        return SamplingConfig(n=n, temperature=sampler.temperature, top_p=sampler.top_p, top_k=sampler.top_k,
                              max_new_tokens=min(PART_TOKENS, sampler.max_new_tokens), stop=list(STOP_TOKENS),
                              seed=sampler.seed)

    bodies: list[list[str]] = [[] for _ in drafts]
    if solutions:
        bodies = meter.generate([strip_prompt(t.prompt) for _, _, t, _ in drafts], sampling(solutions),
                                seeds=[seeds[i] for i, *_ in drafts])
    # several test samples pool their assertions: one sample's wrong expected values no longer
    # sink the task, and agreement picks the assertions the bodies agree with
    tests = meter.generate([tests_prompt(t) for _, _, t, _ in drafts], sampling(tests_per_task),
                           seeds=[seeds[i] + 1 for i, *_ in drafts])

    cands: list[list[str]] = []
    asserts: list[list[str]] = []
    for d, ((i, _ins, task, _cls), more, answer) in enumerate(zip(drafts, bodies, tests, strict=True)):
        cands.append(_distinct([task.completion, *more]))
        asserts.append(list(dict.fromkeys(structural_fresh(unqualified(a, task.entry_point)) for sample in answer
                                          for a in assert_statements(TESTS_LEAD + sample))))
        out[i][1].update(bodies=len(cands[d]), asserts=len(asserts[d]))
        if not asserts[d]:
            out[i][1].update(dropped_at="tests", reason="no_assertions")
    passes = cross_check([t for _, _, t, _ in drafts], cands, asserts, executor)

    for d, (i, instruction, task, cls) in enumerate(drafts):
        if not asserts[d]:
            continue
        chosen = agree(passes[d])
        if chosen is None:
            out[i][1].update(dropped_at="agreement", reason="no_body_passes")
            continue
        b, kept = chosen
        group = sum(1 for row in passes[d] if row == passes[d][b])
        raw = render_answer(instruction, solution_text(cls, task, cands[d][b]),
                            "\n".join(asserts[d][a] for a in kept))
        out[i] = (raw, {**out[i][1], "agreeing_bodies": group, "asserts_kept": len(kept)})
    return out
