"""The filter's steps: one small class per step behind a Protocol, in an explicit registry.

A step looks at the records that survived the steps before it and returns, per record,
None (keep) or a short reason code (drop). Steps may add fields to the records they keep
(parse fills instruction/solution/tests, judge adds judge_score). The filter stage runs
them in the order params.yaml names and records the funnel; the evolve stage reruns
execution, heuristics and decontam on evolved examples, built by the same `build_steps`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..decontam import Blocklist, tokens
from .parse import ParseError, parse_record
from .program import assert_only, assertion_count, calls_solution, program, stub_bodies

Record = dict[str, Any]


class Step(Protocol):
    name: str

    def __call__(self, records: list[Record]) -> list[str | None]: ...


def content_id(instruction: str, solution: str, tests: str) -> str:
    """The example's id: a hash of its content, so equal examples share an id across runs."""
    h = hashlib.sha256("\x1e".join((instruction.strip(), solution.strip(), tests.strip())).encode())
    return h.hexdigest()[:16]


class ParseStep:
    """Re-parses `raw` (the source of truth), so a better parser needs no new generation."""

    name = "parse"

    def __call__(self, records: list[Record]) -> list[str | None]:
        reasons: list[str | None] = []
        for rec in records:
            try:
                p = parse_record(rec.get("raw"), rec.get("repair"))
            except ParseError as exc:
                reasons.append(exc.reason)
                continue
            rec.update(instruction=p.instruction, solution=p.solution, tests=p.tests,
                       id=content_id(p.instruction, p.solution, p.tests))
            reasons.append(None)
        return reasons


class ExecutionStep:
    """Compiles and runs solution + tests in the sandbox; the tests must call the solution,
    hold at least `min_asserts` assertions and fail on the `return default(T);` mutant.

    `prune`: a small teacher often writes a right solution and then miscomputes an expected
    value by hand. When the tests are plain assertions, each one is run on its own and only
    those the solution satisfies are kept (an agreement of two independent answers, the
    code's and the teacher's arithmetic, as in CodeT); the pruned tests must still hold
    `min_asserts` assertions, pass together and fail on the mutant.
    """

    name = "execution"

    def __init__(self, executor: Any, *, min_asserts: int = 3, mutant_check: bool = True,
                 prune: bool = True) -> None:
        self.executor, self.min_asserts, self.mutant_check, self.prune = executor, min_asserts, mutant_check, prune

    def _prune(self, records: list[Record], failed: list[int]) -> list[int]:
        """Rewrites the tests of the failed examples that keep enough passing assertions;
        returns their indices (to be run again as a whole)."""
        jobs: list[tuple[int, str]] = []
        total: dict[int, int] = {}
        for i in failed:
            asserts = assert_only(records[i]["tests"])
            if asserts and len(asserts) >= self.min_asserts:
                jobs += [(i, a) for a in asserts]
                total[i] = len(asserts)
        verdicts = self.executor.run([program(records[i]["solution"], a) for i, a in jobs])
        kept: dict[int, list[str]] = {}
        for (i, a), res in zip(jobs, verdicts, strict=True):
            kept.setdefault(i, [])
            if res.passed:
                kept[i].append(a)
        retry = []
        for i, asserts in kept.items():
            if len(asserts) >= self.min_asserts:
                rec = records[i]
                rec["asserts_pruned"] = total[i] - len(asserts)
                rec["tests"] = "\n".join(asserts)
                rec["id"] = content_id(rec["instruction"], rec["solution"], rec["tests"])
                retry.append(i)
        return retry

    def __call__(self, records: list[Record]) -> list[str | None]:
        reasons: list[str | None] = [None] * len(records)
        for i, rec in enumerate(records):
            if assertion_count(rec["tests"]) < self.min_asserts:
                reasons[i] = "too_few_asserts"
            elif not calls_solution(rec["solution"], rec["tests"]):
                reasons[i] = "tests_do_not_call_solution"
        todo = [i for i, r in enumerate(reasons) if r is None]
        results = self.executor.run([program(records[i]["solution"], records[i]["tests"], records[i].get("id", ""))
                                     for i in todo])
        for i, res in zip(todo, results, strict=True):
            records[i]["execution"] = res.status.value
            if not res.passed:
                reasons[i] = f"solution_{res.status.value}"
        if self.prune:
            retry = self._prune(records, [i for i in todo if reasons[i] in (
                "solution_assertion_failed", "solution_compile_error", "solution_exception")])
            again = self.executor.run([program(records[i]["solution"], records[i]["tests"]) for i in retry])
            for i, res in zip(retry, again, strict=True):
                if res.passed:
                    reasons[i] = None
                    records[i]["execution"] = "pass_pruned"
        if self.mutant_check:
            passed = [i for i in todo if reasons[i] is None]
            mutants = {i: stub_bodies(records[i]["solution"]) for i in passed}
            runnable = [i for i in passed if mutants[i] is not None]
            for i in passed:
                if mutants[i] is None:
                    reasons[i] = "no_method_to_mutate"
            verdicts = self.executor.run([program(mutants[i], records[i]["tests"]) for i in runnable])
            for i, res in zip(runnable, verdicts, strict=True):
                if res.passed:
                    reasons[i] = "tests_pass_trivial_body"
        return reasons


def _shingles(text: str, n: int) -> set[bytes]:
    toks = tokens(text.lower())
    return {" ".join(toks[i:i + n]).encode() for i in range(max(1, len(toks) - n + 1))}


class DedupStep:
    """Exact duplicates (same normalised task + solution), then near duplicates by MinHash
    LSH over token n-gram shingles (Jaccard >= threshold). The first occurrence wins."""

    name = "dedup"

    def __init__(self, *, threshold: float = 0.8, num_perm: int = 128, shingle: int = 5, seed: int = 1) -> None:
        self.threshold, self.num_perm, self.shingle, self.seed = threshold, num_perm, shingle, seed

    def __call__(self, records: list[Record]) -> list[str | None]:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        seen: set[str] = set()
        reasons: list[str | None] = []
        for i, rec in enumerate(records):
            text = rec["instruction"] + "\n" + rec["solution"]
            exact = " ".join(tokens(text.lower()))
            if exact in seen:
                reasons.append("exact_duplicate")
                continue
            seen.add(exact)
            mh = MinHash(num_perm=self.num_perm, seed=self.seed)
            mh.update_batch(list(_shingles(text, self.shingle)))
            if lsh.query(mh):
                reasons.append("near_duplicate")
                continue
            lsh.insert(str(i), mh)
            reasons.append(None)
        return reasons


class DecontamStep:
    """Drops examples whose task, solution or tests copy an evaluation text (decontam.py),
    and, with `prompt_examples`, those that copy a few-shot example the teacher was shown
    (a small teacher often hands an example back instead of a new task)."""

    name = "decontam"

    def __init__(self, blocklist: Blocklist, prompt_examples: Blocklist | None = None) -> None:
        self.blocklist, self.prompt_examples = blocklist, prompt_examples

    @staticmethod
    def _worst(blocklist: Blocklist, rec: Record):
        return max((blocklist.check(rec[k]) for k in ("instruction", "solution", "tests")), key=lambda v: v.overlap)

    def __call__(self, records: list[Record]) -> list[str | None]:
        reasons: list[str | None] = []
        for rec in records:
            worst = self._worst(self.blocklist, rec)
            rec["benchmark_overlap"] = round(worst.overlap, 4)
            if worst.contaminated:
                reasons.append("benchmark_overlap")
            elif self.prompt_examples is not None and self._worst(self.prompt_examples, rec).contaminated:
                reasons.append("copies_fewshot_example")
            else:
                reasons.append(None)
        return reasons


def fewshot_blocklist(examples: list[dict], n: int, threshold: float) -> Blocklist:
    """A blocklist of the shipped few-shot examples (every n-gram counts: there are only a few)."""
    docs = [t for ex in examples for t in (ex["instruction"], ex["solution"], ex["tests"])]
    return Blocklist(docs, n=n, threshold=threshold, boilerplate_docs=len(docs) + 1)


def decontam_step(benchmark: list[dict], cfg: Any) -> DecontamStep:
    """The decontamination every data stage applies (filter, evolve): the benchmark's texts
    and the upstream files `cfg.extra_files` names, and the shipped few-shot examples.
    `cfg` is params.filter.decontam."""
    from ..decontam import evaluation_documents
    from .data import load_fewshot

    docs = evaluation_documents(benchmark, reference_solutions=cfg.reference_solutions, extra_files=cfg.extra_files)
    return DecontamStep(Blocklist(docs, n=cfg.n, threshold=cfg.threshold),
                        fewshot_blocklist(load_fewshot(), cfg.n, cfg.threshold))


REFUSAL = re.compile(r"\b(?:I'?m sorry|I am sorry|I cannot|I can't|as an AI|language model)\b", re.IGNORECASE)
NOT_CSHARP = re.compile(r"^\s*(?:def |import |#include|fn |func |package |console\.log|System\.out\.print)",
                        re.MULTILINE)


class HeuristicsStep:
    """Cheap shape checks: length bounds, refusals, other languages."""

    name = "heuristics"

    def __init__(self, *, min_instruction_chars: int, max_instruction_chars: int,
                 max_solution_lines: int, max_tests_lines: int) -> None:
        self.bounds = (min_instruction_chars, max_instruction_chars, max_solution_lines, max_tests_lines)

    def __call__(self, records: list[Record]) -> list[str | None]:
        lo, hi, max_sol, max_tests = self.bounds
        reasons: list[str | None] = []
        for rec in records:
            ins, sol, tests = rec["instruction"], rec["solution"], rec["tests"]
            if not lo <= len(ins) <= hi:
                reasons.append("instruction_length")
            elif len(sol.splitlines()) > max_sol or len(tests.splitlines()) > max_tests:
                reasons.append("code_too_long")
            elif REFUSAL.search(ins) or REFUSAL.search(sol):
                reasons.append("refusal")
            elif NOT_CSHARP.search(sol) or NOT_CSHARP.search(tests) or "class " not in sol:
                reasons.append("not_csharp")
            else:
                reasons.append(None)
        return reasons


_SCORE = re.compile(r"\b(10|[1-9])(?:\s*/\s*10)?\b")


def parse_score(text: str) -> int | None:
    m = _SCORE.search(text)
    return int(m.group(1)) if m else None


class JudgeStep:
    """LLM-as-judge: the teacher scores each example 1-10 (`judge_score`, None when its answer
    has no number). Drops examples below `min_score`; the stage keeps the best `keep`."""

    name = "judge"

    def __init__(self, chat: Callable[[list[list[dict]]], list[str]], *, min_score: int = 0) -> None:
        self.chat, self.min_score = chat, min_score

    def __call__(self, records: list[Record]) -> list[str | None]:
        from .prompts import judge_messages

        answers = self.chat([judge_messages(r["instruction"], r["solution"], r["tests"]) for r in records])
        reasons: list[str | None] = []
        for rec, answer in zip(records, answers, strict=True):
            rec["judge_score"] = parse_score(answer)
            low = rec["judge_score"] is None or rec["judge_score"] < self.min_score
            reasons.append("judge_score" if self.min_score and low else None)
        return reasons


# name -> builder(cfg, context): the one place a step gets its knobs from params.yaml (`cfg` is
# the filter section, config.FilterParams), so the filter stage and evolve (which reruns some
# steps on evolved examples) build them alike. Explicit registry: adding a step = one class +
# one line. `context` holds what the stage opens itself: "executor" (the sandbox) for
# execution, "chat" (the teacher) for judge, "benchmark" (the paths of every problems file a
# model is scored on: BenchmarkParams.evaluation_files(), DVC deps of both stages) for decontam.
def _decontam(cfg: Any, ctx: dict[str, Any]) -> "DecontamStep":
    from ..jsonl import read_jsonl

    return decontam_step([row for path in ctx["benchmark"] for row in read_jsonl(path)], cfg.decontam)


STEP_BUILDERS: dict[str, Callable[[Any, dict[str, Any]], Step]] = {
    "parse": lambda cfg, ctx: ParseStep(),
    "execution": lambda cfg, ctx: ExecutionStep(ctx["executor"], min_asserts=cfg.execution.min_asserts,
                                                mutant_check=cfg.execution.mutant_check,
                                                prune=cfg.execution.prune),
    "dedup": lambda cfg, ctx: DedupStep(threshold=cfg.dedup.threshold, num_perm=cfg.dedup.num_perm,
                                        shingle=cfg.dedup.shingle, seed=cfg.seed),
    "decontam": _decontam,
    "heuristics": lambda cfg, ctx: HeuristicsStep(**cfg.heuristics.model_dump()),
    "judge": lambda cfg, ctx: JudgeStep(ctx["chat"], min_score=cfg.judge.min_score),
}


def build_steps(names: Sequence[str], cfg: Any, context: dict[str, Any]) -> list[Step]:
    """The steps `names`, in that order, with their knobs from `cfg` (params.filter, a
    config.FilterParams)."""
    return [STEP_BUILDERS[name](cfg, context) for name in names]


def run_steps(records: list[Record], steps: list[Step]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Runs the steps in order. Returns the survivors and the funnel: one entry per step with
    the count kept after it and the drop reasons (reason -> count)."""
    funnel = [{"step": "input", "kept": len(records), "dropped": {}}]
    for step in steps:
        reasons = step(records) if records else []
        dropped: dict[str, int] = {}
        for r in reasons:
            if r is not None:
                dropped[r] = dropped.get(r, 0) + 1
        records = [rec for rec, r in zip(records, reasons, strict=True) if r is None]
        funnel.append({"step": step.name, "kept": len(records), "dropped": dict(sorted(dropped.items()))})
    return records, funnel
