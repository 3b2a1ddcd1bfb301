"""DevBench: every problem is solvable as translated, looks like a HumanEval-C# problem, and is
none of HumanEval's."""

from __future__ import annotations

import re
import shutil

import pytest

from safurai_csharp.benchmark import build_humaneval_cs, load_humaneval
from safurai_csharp.benchmark.build import build_devbench_cs
from safurai_csharp.benchmark.devbench import TIERS, load_devbench, reference_completions, select_tiers, tier_of
from safurai_csharp.config import SandboxParams
from safurai_csharp.csharp import make_executor
from safurai_csharp.decontam import Blocklist, evaluation_documents
from safurai_csharp.evaluation import score

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed"
)


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    return load_devbench()


@pytest.fixture(scope="module")
def dev() -> list[dict]:
    return build_devbench_cs()


def test_every_problem_translates_into_the_test_sets_shape(raw, dev):
    assert len(raw) >= 100 and len(dev) == len(raw)
    names = [r["name"] for r in dev]
    assert len(set(names)) == len(names) and names == sorted(names)
    assert all(re.fullmatch(r"DevBench_\d+_\w+", n) for n in names)
    test_set = build_humaneval_cs()[0]
    for row in dev:
        assert set(row) == set(test_set)
        assert row["original"].startswith("safurai-csharp-devbench:DevBench/")
        assert row["stop_tokens"] == test_set["stop_tokens"]
        assert row["prompt"].startswith(test_set["prompt"][:test_set["prompt"].index("class Problem {")])
        assert "    // >>> " in row["prompt"], f"{row['name']}: no worked example, unlike HumanEval's prompts"
        assert row["tests"].count("Debug.Assert(") >= 5, row["name"]


def test_python_reference_solutions_pass_their_own_tests(raw):
    for problem in raw:  # the shipped, trusted data of this package
        namespace: dict = {}
        exec(problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"], namespace)  # noqa: S102
        namespace["check"](namespace[problem["entry_point"]])


def test_the_basics_tier_is_there_and_easy(raw):
    """Problems 300-359 are the easy tier (docs/benchmark.md): the base 0.5B solves only 30 of the
    first 120 at all, so a dev set of them alone cannot see regressions on easy problems. Easy
    as HumanEval's easy end: a Python reference of at most 3 lines, a C# body of at most 6."""
    basics = [r for r in raw if int(r["task_id"].split("/")[1]) >= 300]
    assert [r["task_id"] for r in basics] == [f"DevBench/{k}" for k in range(300, 360)]
    for r in basics:
        assert len(r["canonical_solution"].strip("\n").splitlines()) <= 3, r["task_id"]
        assert len(r["cs_solution"].strip("\n").splitlines()) <= 6, r["task_id"]
        assert 6 <= r["test"].count("    assert candidate(") <= 8, r["task_id"]


def test_the_tiers_partition_devbench(raw, dev):
    """Every problem is in exactly one tier (docs/benchmark.md's table), and eval_dev.devbench_tiers
    keeps exactly a tier's problems, in file order."""
    numbers = [int(r["task_id"].split("/")[1]) for r in raw]
    assert sorted(numbers) == sorted(k for ids in TIERS.values() for k in ids)
    assert {tier: len(ids) for tier, ids in TIERS.items()} == {"strings": 40, "integers": 40, "collections": 40,
                                                                "basics": 60}
    assert select_tiers(dev, None) is dev
    basics = select_tiers(dev, ["basics"])
    assert [r["name"] for r in basics] == [r["name"] for r in dev if int(r["name"].split("_")[1]) >= 300]
    assert len(basics) == 60 and {tier_of(r["name"]) for r in basics} == {"basics"}
    two = select_tiers(dev, ["strings", "collections"])
    assert len(two) == 80 and [r["name"] for r in two] == [r["name"] for r in dev if tier_of(r["name"]) != "integers"
                                                           and tier_of(r["name"]) != "basics"]
    with pytest.raises(ValueError, match="unknown DevBench tier"):
        select_tiers(dev, ["hard"])
    for name in ("HumanEval_0_x", "DevBench_x_y", "DevBench_50_gap"):
        with pytest.raises(ValueError):
            tier_of(name)


def _grams(text: str, n: int = 10) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_problem_is_a_humaneval_problem(raw, dev):
    humaneval = load_humaneval()
    assert not {p["entry_point"] for p in raw} & {h["entry_point"] for h in humaneval}
    he_grams = [_grams(h["prompt"]) for h in humaneval]
    for problem in raw:
        mine = _grams(problem["prompt"])
        worst = max(len(mine & g) / max(1, len(mine)) for g in he_grams)
        assert worst <= 0.1, problem["task_id"]
    # and the data stages' own decontamination, built on the test set alone, finds none of them
    blocklist = Blocklist(evaluation_documents(build_humaneval_cs(), reference_solutions=False))
    assert [r["name"] for r in dev if blocklist.check(r["prompt"] + r["tests"]).contaminated] == []


def test_decontamination_blocks_devbench_solutions():
    """DevBench is evaluation material: a training example that copies one of its references is
    dropped by the same blocklist the data stages build."""
    blocklist = Blocklist(evaluation_documents([]))
    longest = max(reference_completions().values(), key=len)
    planted = f"### Task\nDo it.\n### Solution\n```csharp\nclass S {{\n public static long F() {{{longest}}}\n}}\n```\n"
    assert blocklist.check(planted).contaminated


@needs_toolchain
def test_every_csharp_reference_passes_the_translated_tests(dev):
    refs = reference_completions()
    executor = make_executor(SandboxParams())
    outcome = score(dev, [[refs[r["name"]]] for r in dev], "corrected", executor)
    failed = [(r["name"], res[0]["status"]) for r, res in zip(dev, outcome.results, strict=True) if not res[0]["passed"]]
    assert failed == []
