"""Stage filter through the real CLI: malformed teacher output, a planted benchmark problem,
duplicates and good examples go in; the funnel and the kept examples come out."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.benchmark.build import build_devbench_cs
from safurai_csharp.benchmark.reference import load_solutions
from safurai_csharp.synth.parse import render_answer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")),
                                reason="mono/bubblewrap not installed")

SOL = "public static class MathX\n{\n    public static int Square(int x)\n    {\n        return x * x;\n    }\n}"
TESTS = "Debug.Assert(MathX.Square(2) == 4);\nDebug.Assert(MathX.Square(-3) == 9);\nDebug.Assert(MathX.Square(5) == 25);"
REV = ("public static class Words\n{\n    public static string Reverse(string s)\n    {\n"
       "        return string.Join(\" \", s.Split(' ').Reverse());\n    }\n}")
REV_TESTS = ('Debug.Assert(Words.Reverse("a b c") == "c b a");\nDebug.Assert(Words.Reverse("x") == "x");\n'
             'Debug.Assert(Words.Reverse("hello world") == "world hello");')


def generated_rows() -> list[dict]:
    bench = {p["name"]: p for p in build_humaneval_cs()[:20] + [p for p in build_humaneval_cs() if p["name"].startswith("HumanEval_13_")]}
    p = bench["HumanEval_13_greatest_common_divisor"]
    ref = next(s for s in load_solutions() if s["name"] == p["name"])["completions"][0]
    raws = [
        render_answer("Write a method that squares an integer, negative values included.", SOL, TESTS),
        render_answer("Write a method that squares an integer, negative values included.", SOL, TESTS),  # duplicate
        render_answer("Reverse the order of the space-separated words of a sentence.", REV, REV_TESTS),
        # a benchmark problem copied into the training data: prompt + reference solution
        render_answer("Return the greatest common divisor of two integers a and b.",
                      (p["prompt"] + ref + "\n    }\n}").replace("class Problem", "class Gcd"),
                      "Debug.Assert(Gcd.GreatestCommonDivisor(3L, 7L) == 1L);\n"
                      "Debug.Assert(Gcd.GreatestCommonDivisor(10L, 15L) == 5L);\n"
                      "Debug.Assert(Gcd.GreatestCommonDivisor(49L, 14L) == 7L);"),
        None, "", "\x00\x01 garbage \ufffd", "### Task\n" + "x" * 100000, "```csharp\nclass A {}\n```",
        "I'm sorry, but I can't write that exercise.",
        render_answer("Write a method that squares an integer value for any input.", SOL,
                      "Debug.Assert(MathX.Square(0) == 0);\nDebug.Assert(MathX.Square(0) <= 0);\n"
                      "Debug.Assert(MathX.Square(0) >= 0);"),  # vacuous tests: pass on `return default(int);`
    ]
    return [{"index": i, "raw": r, "topic": "t", "concept": "c", "teacher": "test", "id": str(i)} for i, r in enumerate(raws)]


def test_filter_cli_funnel(tmp_path):
    params = yaml.safe_load((ROOT / "configs/tiny.yaml").read_text())
    params["benchmark"]["limit"] = 20
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "data/generated").mkdir(parents=True)
    (tmp_path / "data/generated/examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in generated_rows()))
    (tmp_path / "data/benchmark").mkdir(parents=True)
    (tmp_path / "data/benchmark/humaneval-cs.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in build_humaneval_cs()[:20] + [p for p in build_humaneval_cs() if p["name"].startswith("HumanEval_13_")]))
    (tmp_path / "data/benchmark/devbench-cs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in build_devbench_cs()))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run([str(BIN / "safurai-csharp"), "filter"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics/filter.json").read_text())
    assert metrics["funnel"] == {"input": 11, "parse": 5, "execution": 4, "dedup": 3, "decontam": 2,
                                 "heuristics": 2, "keep": 2}
    assert metrics["dropped"]["execution"] == {"tests_pass_trivial_body": 1}
    assert metrics["dropped"]["decontam"] == {"benchmark_overlap": 1}
    assert metrics["dropped"]["dedup"] == {"exact_duplicate": 1}
    kept = [json.loads(line) for line in (tmp_path / "data/filtered/examples.jsonl").read_text().splitlines()]
    assert [k["index"] for k in kept] == [0, 2]
    assert all(k["round"] == 0 and k["parent_id"] is None and len(k["id"]) == 16 for k in kept)
    plot = json.loads((tmp_path / "metrics/filter_funnel.json").read_text())
    assert [p["examples"] for p in plot] == [11, 5, 4, 3, 2, 2, 2]
