"""Sections of the data stages: generate, filter, evolve, split, self_sample, sft_data."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import Float, Section


class GenerateParams(Section):
    """`safurai-csharp generate` (stage generate): self-instruct C# tasks from the teacher."""

    num_tasks: int = Field(256, ge=1, description="paper: 100,000")
    chunk_size: int = Field(128, ge=1, description="tasks per engine call and per resume checkpoint")
    recipe: Literal["answer", "decomposed"] = Field(
        "answer", description="answer: task + solution + tests in one answer (the paper); decomposed: "
                              "task + solution, more bodies, independent tests, agreement (synth/decomposed.py)")
    solutions_per_task: int = Field(4, ge=0, le=32, description="decomposed: extra bodies sampled per task")
    tests_per_task: int = Field(1, ge=1, le=8, description="decomposed: test samples per task, their assertions pooled")
    task_attempts: int = Field(1, ge=1, le=4, description="decomposed: task-step answers a task may take when one "
                                                          "does not parse or is not one class with one method")
    output_agreement: int = Field(0, ge=0, le=33, description="decomposed: a task whose agreed tests keep too few "
                                  "assertions gets one per test input from what this many distinct bodies (the "
                                  "agreed one among them) return alike; 0 = off")
    fewshot: int = Field(2, ge=0, le=8)
    temperature: Float = Field(0.7, ge=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(768, ge=64)
    repair_rounds: int = Field(1, ge=0, le=3, description="feedback turns for answers that fail in the sandbox")
    seed: int = 42
    out: str = "data/generated/examples.jsonl"
    metrics: str = "metrics/generate.json"

    @model_validator(mode="after")
    def _recipe_knobs(self) -> "GenerateParams":
        if self.task_attempts > 1 and self.recipe != "decomposed":
            raise ValueError("task_attempts applies to the decomposed recipe only (the answer recipe retries "
                             "through repair_rounds): set recipe: decomposed or task_attempts: 1")
        if self.output_agreement and self.recipe != "decomposed":
            raise ValueError("output_agreement applies to the decomposed recipe only (the answer recipe writes one "
                             "solution per task, nothing to agree): set recipe: decomposed or output_agreement: 0")
        if self.output_agreement > self.solutions_per_task + 1:
            raise ValueError(f"output_agreement {self.output_agreement} asks more bodies to agree than a task has "
                             f"(its solution + solutions_per_task {self.solutions_per_task}): lower it or raise "
                             "solutions_per_task")
        return self


class ExecutionCheckParams(Section):
    min_asserts: int = Field(3, ge=1, description="fewer assertions = weak tests")
    mutant_check: bool = Field(True, description="tests must fail on `return default(T);` bodies")
    prune: bool = Field(True, description="keep the assertions the solution passes (CodeT-style agreement)")


class DedupParams(Section):
    threshold: Float = Field(0.8, gt=0, le=1, description="MinHash Jaccard above which two are near duplicates")
    num_perm: int = Field(128, ge=16)
    shingle: int = Field(5, ge=1, description="token n-gram size of the shingles")


class DecontamParams(Section):
    n: int = Field(13, ge=4, description="n-gram length")
    threshold: Float = Field(0.2, gt=0, le=1, description="share of an example's n-grams found in evaluation texts")
    reference_solutions: bool = True
    extra_files: list[str] = Field(default_factory=list, description="more MultiPL-E jsonl files to block")


class HeuristicsParams(Section):
    min_instruction_chars: int = Field(40, ge=1)
    max_instruction_chars: int = Field(4000, ge=1)
    max_solution_lines: int = Field(150, ge=1)
    max_tests_lines: int = Field(60, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> "HeuristicsParams":
        if self.min_instruction_chars > self.max_instruction_chars:
            raise ValueError("min_instruction_chars is larger than max_instruction_chars: nothing could pass")
        return self


class JudgeParams(Section):
    enabled: bool = Field(False, description="one more teacher call per example")
    min_score: int = Field(0, ge=0, le=10, description="drop below this score (0: only rank)")
    max_new_tokens: int = Field(8, ge=1)


FILTER_STEPS = ("parse", "execution", "dedup", "decontam", "heuristics", "judge")


class FilterParams(Section):
    """`safurai-csharp filter` (stage filter): the funnel from generated to training-grade."""

    steps: list[Literal["parse", "execution", "dedup", "decontam", "heuristics", "judge"]] = list(FILTER_STEPS)
    execution: ExecutionCheckParams = ExecutionCheckParams()
    dedup: DedupParams = DedupParams()
    decontam: DecontamParams = DecontamParams()
    heuristics: HeuristicsParams = HeuristicsParams()
    judge: JudgeParams = JudgeParams()
    keep: int = Field(4000, ge=1, description="paper: 4,000; the best by judge score, then at random")
    seed: int = 7
    out: str = "data/filtered/examples.jsonl"
    metrics: str = "metrics/filter.json"
    funnel_plot: str = "metrics/filter_funnel.json"

    @model_validator(mode="after")
    def _steps(self) -> "FilterParams":
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("steps names a step twice")
        if self.steps[:1] != ["parse"]:
            raise ValueError("steps must start with parse: every later step reads the parsed example")
        if "judge" in self.steps and not self.judge.enabled:
            raise ValueError("steps lists judge but judge.enabled is false: enable it or drop the step")
        if self.judge.enabled and "judge" not in self.steps:
            raise ValueError("judge.enabled is true but steps does not list judge")
        return self


class EvolveRound(Section):
    parent: str = Field(description="the examples this round evolves (filter.out for round 1)")
    out: str


class EvolveParams(Section):
    """`safurai-csharp evolve --round K` (stages evolve@1..3): Evol-Instruct rounds."""

    methods: list[Literal["add_constraints", "rarer_requirement", "more_reasoning", "erroneous_code",
                          "higher_complexity", "in_breadth"]] = [
        "add_constraints", "rarer_requirement", "more_reasoning", "erroneous_code", "higher_complexity"]
    temperature: Float = Field(0.7, ge=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(768, ge=64)
    recipe: Literal["answer", "decomposed"] = Field(
        "answer", description="answer: the evolved task's solution and tests in one answer (WizardCoder's); "
                              "decomposed: a solution only, then bodies and independent tests sampled with "
                              "generate's decomposed knobs, and the agreed ones kept (synth/decomposed.py)")
    fewshot: int = Field(1, ge=0, le=8, description="answer only: format examples in the solve prompt")
    max_similarity: Float = Field(0.9, gt=0, le=1, description="evolved vs parent task: at or above = no information gain")
    min_growth_chars: int = Field(0, description="evolved task must be at least this much longer than its parent")
    seed: int = 11
    rounds: dict[str, EvolveRound]
    out_dir: str = "data/evolved"
    metrics_dir: str = "metrics/evolve"

    @model_validator(mode="after")
    def _chain(self) -> "EvolveParams":
        if not self.methods:
            raise ValueError("methods must name at least one evolution method")
        # String keys: DVC's templating resolves ${evolve.rounds.1.out} only for string keys.
        expected = [str(k) for k in range(1, len(self.rounds) + 1)]
        if sorted(self.rounds, key=lambda k: (len(k), k)) != expected:
            raise ValueError(f"rounds must be keyed \"1\"..\"N\" without gaps (got {sorted(self.rounds)})")
        for k in range(2, len(self.rounds) + 1):
            if self.rounds[str(k)].parent != self.rounds[str(k - 1)].out:
                raise ValueError(f"round {k}'s parent must be round {k - 1}'s out ({self.rounds[str(k - 1)].out}), "
                                 f"got {self.rounds[str(k)].parent}")
        root = Path(self.out_dir)
        for k, r in self.rounds.items():
            if root not in Path(r.out).parents:
                raise ValueError(f"round {k}'s out {r.out} must lie under out_dir {self.out_dir} "
                                 f"(stage sft_data reads every round from there)")
        return self


class SplitParams(Section):
    """`safurai-csharp split` (stage split): filtered ∪ evolved -> train / validation / dev tasks,
    by lineage (an example and everything evolved from it land on one side)."""

    dev_fraction: Float = Field(0.2, ge=0, lt=1)
    validation_fraction: Float = Field(0.05, ge=0, lt=1)
    types: Literal["as_written", "multipl_e"] = "as_written"
    seed: int = 3
    out_dir: str = "data/tasks"
    metrics: str = "metrics/split.json"

    @model_validator(mode="after")
    def _fractions(self) -> "SplitParams":
        if self.dev_fraction + self.validation_fraction >= 1:
            raise ValueError(f"dev_fraction + validation_fraction must leave tasks to train on "
                             f"(got {self.dev_fraction} + {self.validation_fraction} >= 1)")
        return self


class SelfSampleParams(Section):
    """`safurai-csharp self-sample` (stage self_sample): the student solves its training tasks
    k times; the sandbox keeps the passing, distinct solutions (rejection sampling, ReST-EM)."""

    model_dir: str = "models/base"
    k: int = Field(8, ge=1)
    temperature: Float = Field(0.8, gt=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(400, ge=1)
    max_per_task: int = Field(2, ge=1)
    seed: int = 5
    out: str = "data/onpolicy/samples.jsonl"
    verdicts: str = Field("data/onpolicy/verdicts.jsonl", description="every sample with its sandbox verdict "
                          "(stage dpo's pairs)")
    metrics: str = "metrics/self_sample.json"


class SftDataParams(Section):
    """`safurai-csharp sft-data` (stage sft_data): split's train/validation tasks (+ the student's
    own passing solutions) -> SFT rows in the chosen formats."""

    formats: list[Literal["completion", "chat", "alpaca"]] = ["completion"]
    sources: list[Literal["teacher", "student"]] = ["teacher", "student"]
    out_dir: str = "data/sft"
    metrics: str = "metrics/sft_data.json"

    @model_validator(mode="after")
    def _non_empty(self) -> "SftDataParams":
        if not self.formats or len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats must name each of completion, chat, alpaca at most once, and one at least "
                             f"(got {self.formats})")
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources must name teacher and/or student, each once (got {self.sources})")
        return self
