"""Stages split, self_sample (its sandbox selection) and sft_data on hand-made examples with the
real sandbox: the dev split follows lineage, dev problems are verified MultiPL-E problems, the
on-policy rows are the passing distinct samples only, and every format renders."""

import shutil

import pytest
import yaml

from safurai_csharp.config import parse_params
from safurai_csharp.synth.program import with_standard_usings
from safurai_csharp.synth.split import assign, root_of

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")


def example(i: int, parent: str | None = None, round_: int = 0) -> dict:
    a = i + 2
    sol = with_standard_usings(f"public static class K{i}\n{{\n    public static int F{i}(int x)\n    {{\n"
                               f"        return {a} * x;\n    }}\n}}")
    tests = "\n".join(f"Debug.Assert(K{i}.F{i}({x}) == {a * x});" for x in (1, 2, 5))
    return {"id": f"e{i}", "instruction": f"Multiply x by {a}.", "solution": sol, "tests": tests,
            "parent_id": parent, "round": round_, "topic": "t"}


def params(**split):
    raw = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    raw["split"].update(split)
    return parse_params(raw)


def test_lineage_families_never_straddle_sides():
    filtered = [example(i) for i in range(40)]
    children = [example(100 + i, parent=f"e{i}", round_=1) for i in range(40)]
    grandchildren = [example(200 + i, parent=f"e{100 + i}", round_=2) for i in range(40)]
    examples = filtered + children + grandchildren
    pools = [filtered, children, grandchildren]
    sides = assign(examples, pools, seed=3, dev_fraction=0.3, validation_fraction=0.1)
    by_id = {ex["id"]: ex for ex in examples}
    family_side: dict[str, str] = {}
    for ex, side in zip(examples, sides):
        assert family_side.setdefault(root_of(ex, by_id), side) == side
    assert {"train", "validation", "dev"} == set(sides)  # 40 families: every side drawn
    again = assign(examples[::-1], pools, seed=3, dev_fraction=0.3, validation_fraction=0.1)
    assert again == sides[::-1]  # a side depends on the family, not on order or neighbours


@needs_toolchain
def test_split_build_renders_verifies_and_holds_out_dev():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.stages.split import build

    filtered = [example(i) for i in range(12)]
    wrong = example(50)
    wrong["tests"] = wrong["tests"].replace("== 52", "== 53")  # the rendering fails its own check
    helper = example(51)
    helper["solution"] = helper["solution"].replace("    }\n}", "    }\n    static int G(int y) { return y; }\n}")
    rounds = [[example(100 + i, parent=f"e{i}", round_=1) for i in range(12)] + [wrong, helper], [], []]
    out, metrics = build(filtered, rounds, params(dev_fraction=0.4, validation_fraction=0.1).split,
                         Executor(Limits(timeout_s=10), workers=2))
    assert metrics["examples"] == 26 and metrics["render_failures"] == {"helper_methods": 1, "sandbox": 1}
    assert metrics["rendered"] == 24
    assert metrics["train"] + metrics["validation"] + metrics["dev"] + metrics["dev_unrendered"] == 26
    dev_ids = {p["source_id"] for p in out["dev"]}
    assert dev_ids and all(p["name"] == f"dev_{p['source_id']}" for p in out["dev"])
    trained = {ex["id"] for side in ("train", "validation") for ex in out[side]}
    assert not dev_ids & trained
    for p in out["dev"]:  # a child's family is its parent's: no family on both sides
        i = int(p["source_id"][1:])
        twin = f"e{i + 100}" if i < 100 else f"e{i - 100}"
        assert twin not in trained
        assert {"prompt", "tests", "stop_tokens", "entry_point"} <= set(p) and "completion" not in p
    tasks = [ex["task"] for side in ("train", "validation") for ex in out[side]]
    assert sum(t is None for t in tasks) == sum(ex["id"] in ("e50", "e51") for ex in out["train"] + out["validation"])
    assert all(t["completion"].startswith("\n        return") for t in tasks if t)


@needs_toolchain
def test_self_sample_keeps_only_passing_distinct_samples():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.stages.self_sample import keep, verdict_rows
    from safurai_csharp.synth.completion_format import render

    task = render(example(3), "e3").problem(completion="\n        return 5 * x;", source_id="e3")
    samples = [["\n        return 5 * x;",          # the teacher's body
                # passes (the tests' `}` closes the second method) but closes its own method first
                " return 5 * x; }\n    public static int Check() {\n        return 0;",
                "\n        return x * 5;",          # right, different
                "\n        return   x *  5;",       # the same as the one before, but for layout
                "\n        return x + 5;",          # wrong
                "\n        return x * 5",           # does not compile
                "\n        return 5 * x + 0;"]]     # right, but over max_per_task
    rows, passed = keep([task], samples, Executor(Limits(timeout_s=10), workers=2), max_per_task=2)
    assert passed == [[True, True, True, True, False, False, True]]
    assert [(r["sample"], r["same_as_teacher"]) for r in rows] == [(0, True), (2, False)]
    assert all(r["task_id"] == "e3" for r in rows)
    # every sample keeps its verdict for stage dpo's pairs, kept or not
    verdicts = verdict_rows([task], samples, passed)
    assert [(v["sample"], v["passed"]) for v in verdicts] == list(enumerate(passed[0]))
    assert [v["completion"] for v in verdicts] == samples[0] and {v["task_id"] for v in verdicts} == {"e3"}


def test_closes_early_reads_code_not_comments_or_strings():
    from safurai_csharp.synth.completion_format import closes_early

    assert closes_early(" return x; }\n    public static int G() {\n        return 1;")
    assert closes_early("\n        return x;\n    }\n}")
    assert not closes_early("\n        if (x > 0) { return 1; }\n        return 0;")
    assert not closes_early('\n        return "}}" + \'}\'; // } closes nothing here\n        /* } */')


def test_sft_data_rows_in_every_format_and_source():
    from safurai_csharp.stages.sft_data import build
    from safurai_csharp.synth.completion_format import render

    with_task = {**example(1), "task": render(example(1)).problem(completion="\n        return 3 * x;")}
    without = {**example(2), "task": None}
    samples = [{"task_id": "e1", "sample": 4, "completion": "\n        return x * 3;", "same_as_teacher": False},
               {"task_id": "e1", "sample": 6, "completion": "\n        return 3 * x;", "same_as_teacher": True}]
    p = params()
    train, validation, metrics = build([with_task, without], [with_task], samples, p.sft_data)
    # the sample equal to the teacher's body is trained once, as the teacher's row
    assert not any(r["id"].startswith("e1:student6") for r in train)
    assert metrics["student_samples_same_as_teacher"] == 1
    student_only = p.sft_data.model_copy(update={"sources": ["student"]})
    alone, _, alone_metrics = build([with_task], [], samples, student_only)
    assert sorted({r["id"].split(":")[1] for r in alone}) == ["student4", "student6"]
    assert alone_metrics["student_samples_same_as_teacher"] == 0
    fmt = {(r["source"], r["format"]): r for r in train if r["task_id"] == "e1"}
    comp = fmt[("teacher", "completion")]
    assert comp["prompt"].endswith("public static int F1(int x) {") and comp["completion"] == "\n        return 3 * x;\n    }\n"
    assert fmt[("student", "completion")]["completion"] == "\n        return x * 3;\n    }\n"
    assert fmt[("student", "chat")]["completion"][0]["content"] == (
        "```csharp\npublic static int F1(int x) {\n    return x * 3;\n}\n```")
    assert fmt[("teacher", "alpaca")]["prompt"].startswith("Below is an instruction")
    assert fmt[("teacher", "chat")]["prompt"] == [{"role": "user", "content": "Multiply x by 3."}]
    # the example without a task trains in chat and alpaca only; validation is teacher-only
    assert {r["format"] for r in train if r["task_id"] == "e2"} == {"chat", "alpaca"}
    assert {r["source"] for r in validation} == {"teacher"} and len(validation) == 3
    assert metrics["rows"] == {"teacher_completion": 1, "teacher_chat": 2, "teacher_alpaca": 2,
                               "student_completion": 1, "student_chat": 1, "student_alpaca": 1}
    assert len({r["id"] for r in train}) == len(train)


@needs_toolchain
def test_split_build_writes_multipl_e_types_on_every_side_when_asked():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.stages.split import build

    filtered = [example(i) for i in range(15)]
    substring = example(61)  # Substring takes an int: only the task as written compiles
    substring["solution"] = substring["solution"].replace("return 63 * x;", 'return "abcdefgh".Substring(x).Length;')
    substring["tests"] = "\n".join(f"Debug.Assert(K61.F61({x}) == {8 - x});" for x in (1, 2, 5))
    out, metrics = build(filtered + [substring], [[], [], []],
                         params(dev_fraction=0.5, validation_fraction=0.0, types="multipl_e").split,
                         Executor(Limits(timeout_s=10), workers=2))
    assert metrics["types"] == {"as_written": 1, "long": 15} and metrics["render_failures"]["sandbox"] == 0
    problems = [ex["task"] for ex in out["train"]] + out["dev"]
    assert out["dev"] and out["train"] and len(problems) == 16
    for p in problems:
        sig = p["prompt"].rstrip().split("\n")[-1]
        assert sig.endswith("(int x) {") if p["entry_point"] == "F61" else sig.endswith("(long x) {")
        assert sig.startswith("    public static int") if p["entry_point"] == "F61" else sig.startswith("    public static long")
