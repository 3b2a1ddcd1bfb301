"""Teacher prompts: self-instruct generation, Evol-Instruct (WizardCoder's code methods), judge.

Every prompt is a chat conversation, rendered by the engine with the teacher's own chat
template (instruct teachers answer far better in their template than in raw text). Task i
draws its topic, concept and few-shot examples from a generator seeded by (seed, i), so a
task's prompt does not depend on how the run was chunked or resumed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .parse import render_answer

Message = dict[str, str]

# What the 0.5B teacher got wrong in the first full run (docs/data.md): 42 of 109 parsed
# answers did not compile (a third of them tests calling a class the solution does not
# declare, a quarter operators on generic type parameters or C# 8+ syntax mono rejects). So
# the compiler's limits are spelled out and the tests are told to use the solution's names.
# The format is said in words: shown a skeleton with placeholders instead, the teacher copied
# the placeholders (59 of 64 answers of the decomposed recipe's task step).
COMPILER = (
    "The code is compiled by the Mono C# compiler, which accepts C# 7 only: no records, no "
    "`init`, no switch expressions, no `is not` patterns, no ranges or indices (`..`, `^1`), "
    "no target-typed `new()`, no nullable reference types (`string?`)."
)
SYSTEM = (
    "You are an expert C# developer who writes short, self-contained programming exercises. "
    + COMPILER + " Every answer has exactly three sections: '### Task' (a precise statement: "
    "inputs, output, edge cases), '### Solution' (one ```csharp block: a public static class "
    "with public static methods, no Main, no namespace, no console input) and '### Tests' "
    "(one ```csharp block of Debug.Assert(...) statements, one per line, that call the "
    "solution's class and method by exactly the names the Solution declares and check exact "
    "expected values, including edge cases). Use concrete types (int, long, double, bool, "
    "char, string, arrays, List<int>, Dictionary<string, int>), not generic type parameters. "
    "Compare collections with SequenceEqual, never with == or Equals. Use no DateTime.Now, "
    "randomness, files or network."
)


@dataclass(frozen=True)
class TaskSpec:
    """What task `index` of a generate run asks for."""

    index: int
    topic: str
    concept: str
    shots: tuple[int, ...]  # indices into the few-shot list


def task_seed(seed: int, index: int) -> int:
    """A per-task seed (fits vLLM's int64 seeds) from the run seed and the task index."""
    return random.Random(f"{seed}:{index}").getrandbits(62)


def task_spec(index: int, seed: int, taxonomy: list[dict], fewshot: list[dict], shots: int) -> TaskSpec:
    rng = random.Random(task_seed(seed, index))
    entry = taxonomy[rng.randrange(len(taxonomy))]
    concept = entry["concepts"][rng.randrange(len(entry["concepts"]))]
    # Few-shot examples from other topics than the one asked for, so the teacher does not
    # copy an example's task with new names.
    pool = [i for i, ex in enumerate(fewshot) if ex["topic"] != entry["topic"]] or list(range(len(fewshot)))
    chosen = tuple(rng.sample(pool, min(shots, len(pool))))
    return TaskSpec(index, entry["topic"], concept, chosen)


def _ask(topic: str, concept: str) -> str:
    # "short" and "one method" matter for small teachers: asked for an open-ended exercise
    # they write long multi-class programs that rarely compile (measured, docs/data.md).
    return (f"Write a new short C# exercise: one public static method of 5 to 20 lines, and "
            f"at least 4 assertions whose expected values you can check by hand. "
            f"Topic: {topic}. Concept to practise: {concept}.")


def generation_messages(spec: TaskSpec, fewshot: list[dict]) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": SYSTEM}]
    for i in spec.shots:
        ex = fewshot[i]
        messages += [{"role": "user", "content": _ask(ex["topic"], ex["concept"])},
                     {"role": "assistant", "content": render_answer(ex["instruction"], ex["solution"], ex["tests"])}]
    messages.append({"role": "user", "content": _ask(spec.topic, spec.concept)})
    return messages


# ---------------------------------------------------------------------------------------------
# The decomposed recipe (synth/decomposed.py), its one chat step: a task and its solution
# (more bodies and the tests are sampled in completion format).

# The solution block and the types of the decomposed recipe's chat step, for a new task and
# for a given (evolved) one alike: what synth/completion_format.shell can render.
ONE_METHOD = ("one ```csharp block: a public static class with exactly one public static method, named "
              "after what it does; no helper methods, no Main, no namespace, no console input")
CONCRETE = ("Use concrete types (int, long, double, bool, char, string, int[], string[], List<int>, "
            "Dictionary<string, int>), not generic type parameters, and no DateTime.Now, randomness, "
            "files or network.")
TASK_SYSTEM = (
    "You are an expert C# developer who writes short, self-contained programming exercises. "
    + COMPILER + " Every answer has "
    "exactly two sections: '### Task' (a precise statement that names the class and the "
    f"method, and says what it takes and returns, with its edge cases) and '### Solution' ({ONE_METHOD}). "
    + CONCRETE
)


def task_messages(spec: TaskSpec) -> list[Message]:
    return [{"role": "system", "content": TASK_SYSTEM},
            {"role": "user", "content": (f"Write a new short C# exercise and its solution: one public static "
                                         f"method of 5 to 20 lines. Topic: {spec.topic}. Concept to practise: "
                                         f"{spec.concept}.")}]


# ---------------------------------------------------------------------------------------------
# Evol-Instruct. WizardCoder (Luo et al. 2023, section 3.1) evolves code instructions with one
# template and five in-depth methods; WizardLM adds in-breadth (a new, rarer task of the same
# domain). The method text is WizardCoder's wording.

EVOL_TEMPLATE = (
    "Please increase the difficulty of the given programming test question a bit.\n\n"
    "You can increase the difficulty using, but not limited to, the following methods:\n"
    "{method}\n\n"
    "Answer with the new question only, as a self-contained C# task statement (no solution, "
    "no heading).\n\nQuestion:\n{question}"
)
BREADTH_TEMPLATE = (
    "Draw inspiration from the given programming question to write a brand-new one. It "
    "should belong to the same domain but be rarer, with a similar length and difficulty. "
    "Answer with the new question only, as a self-contained C# task statement (no solution, "
    "no heading).\n\nQuestion:\n{question}"
)

EVOL_METHODS: dict[str, str] = {
    "add_constraints": "Add new constraints and requirements to the original problem, adding approximately 10 additional words.",
    "rarer_requirement": "Replace a commonly used requirement in the programming task with a less common and more specific one.",
    "more_reasoning": "If the original problem can be solved with only a few logical steps, please add more reasoning steps.",
    "erroneous_code": "Provide a piece of erroneous code as a reference to increase misdirection.",
    "higher_complexity": "Propose higher time or space complexity requirements, but please refrain from doing so frequently.",
    "in_breadth": "",  # BREADTH_TEMPLATE
}
# Phrases of the evolution prompt that must not leak into an evolved task (WizardLM's
# elimination rule 3: the evolved instruction copies words from the evolving prompt).
SCAFFOLDING = ("increase the difficulty", "given programming test question", "#given prompt#",
               "#rewritten prompt#", "rewritten prompt", "given prompt", "the following methods",
               "programming test question", "new question", "original problem")


def evolution_messages(method: str, instruction: str) -> list[Message]:
    if method not in EVOL_METHODS:
        raise ValueError(f"unknown evolution method {method!r}; known: {', '.join(EVOL_METHODS)}")
    text = (BREADTH_TEMPLATE.format(question=instruction) if method == "in_breadth"
            else EVOL_TEMPLATE.format(method=EVOL_METHODS[method], question=instruction))
    return [{"role": "user", "content": text}]


def solve_messages(instruction: str, fewshot: list[dict], shots: tuple[int, ...]) -> list[Message]:
    """Ask for a solution and tests of a given (evolved) task, in the generation format."""
    messages: list[Message] = [{"role": "system", "content": SYSTEM}]
    for i in shots:
        ex = fewshot[i]
        messages += [{"role": "user", "content": _solve_ask(ex["instruction"])},
                     {"role": "assistant", "content": render_answer(ex["instruction"], ex["solution"], ex["tests"])}]
    messages.append({"role": "user", "content": _solve_ask(instruction)})
    return messages


# Evolve's decomposed recipe (evolve.recipe: decomposed): the evolved task is given, the chat
# step writes its solution only; more bodies and the tests are then sampled as generate's are.
SOLUTION_SYSTEM = (
    "You are an expert C# developer who solves short programming exercises. " + COMPILER
    + f" Answer with one section, '### Solution' ({ONE_METHOD}), that solves the exercise exactly as stated. "
    + CONCRETE
)


def solution_messages(instruction: str) -> list[Message]:
    """Ask for the solution of a given (evolved) task, without tests (synth/decomposed.py)."""
    return [{"role": "system", "content": SOLUTION_SYSTEM},
            {"role": "user", "content": f"Solve this C# exercise.\n\n{instruction}"}]


def _solve_ask(instruction: str) -> str:
    return ("Solve this C# exercise. Repeat the task under '### Task', then give '### Solution' "
            f"and '### Tests'.\n\n{instruction}")


def repair_messages(conversation: list[Message], answer: str, status: str, detail: str) -> list[Message]:
    """Self-debugging feedback (Chen et al. 2023): the teacher sees what the sandbox saw."""
    if status == "compile_error":
        # sandbox paths and line numbers of the wrapped program mean nothing to the teacher
        detail = re.sub(r"\S*\.cs\(\d+,\d+\): ", "", detail)
        what = "does not compile. The C# compiler (C# 7) says:\n" + detail.strip()[:600]
    elif status == "assertion_failed":
        what = ("compiles, but at least one assertion fails: an expected value is wrong or the "
                "solution has a bug. Recompute every expected value step by step.")
    else:
        what = f"fails when run ({status}): {detail.strip()[:300]}"
    return [*conversation, {"role": "assistant", "content": answer},
            {"role": "user", "content": f"Your answer {what}\nFix it and answer again with the three "
                                        "sections ### Task, ### Solution and ### Tests."}]


JUDGE_PROMPT = (
    "Rate this C# exercise from 1 (useless) to 10 (excellent) as training data for a C# "
    "assistant: is the task clear and self-contained, is the solution idiomatic and correct, "
    "do the tests check meaningful cases? Answer with the number only.\n\n{example}"
)


def judge_messages(instruction: str, solution: str, tests: str) -> list[Message]:
    return [{"role": "user", "content": JUDGE_PROMPT.format(example=render_answer(instruction, solution, tests))}]
