"""Evolve round logic with a scripted teacher: elimination rules, lineage, carried parents.

The teacher here is a test double that answers by rule (the real engines are tested in
tests/engines and the real CLI + tiny model path in tests/test_pipeline_e2e.py)."""

import shutil

import pytest

from safurai_csharp.config import load_params
from safurai_csharp.stages import evolve
from safurai_csharp.synth.split import collect
from safurai_csharp.synth.parse import render_answer

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")

SOL = "public static class MathX\n{\n    public static int Square(int x)\n    {\n        return x * x;\n    }\n}"
TESTS = "Debug.Assert(MathX.Square(2) == 4);\nDebug.Assert(MathX.Square(-3) == 9);\nDebug.Assert(MathX.Square(5) == 25);"

# parent task -> (rewritten task, solution of the rewritten task)
SCRIPT = {
    "P0 Square an integer value and return the result to the caller.":
        ("P0 Square an integer value and return the result to the caller; inputs may be negative, "
         "and the method must run in constant time without loops.", SOL),
    "P1 Square an integer value and return the result to the caller.":
        ("P1 Square an integer value and return the result to the caller.", SOL),  # no information gain
    "P2 Square an integer value and return the result to the caller.":
        ("I'm sorry, I cannot make this harder.", SOL),
    "P3 Square an integer value and return the result to the caller.":
        ("#Rewritten Prompt#: P3 square an integer and return it, handling negative numbers too.", SOL),
    "P4 Square an integer value and return the result to the caller.":
        ("P4 Square an integer value, checking for overflow and returning -1 on overflow, else the square.",
         SOL.replace("x * x", "x + x")),  # wrong solution: fails its tests
}


class ScriptedTeacher:
    last_stats = {"generated_tokens": 0}

    def chat(self, conversations, sampling, seeds=None):
        outs = []
        for conv in conversations:
            text = conv[-1]["content"]
            parent = next((p for p in SCRIPT if p in text), None)
            if "increase the difficulty" in text or "brand-new one" in text:
                outs.append(["Question:\n" + SCRIPT[parent][0]])
            else:
                task = next(t for t, _ in SCRIPT.values() if t in text)
                sol = next(s for t, s in SCRIPT.values() if t == task)
                outs.append([render_answer(task, sol, TESTS)])
        return outs

    def close(self):
        pass


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "configs/tiny.yaml").read_text())
    monkeypatch.setattr("safurai_csharp.synth.teacher.open_teacher", lambda cfg, seed: ScriptedTeacher())
    monkeypatch.setattr(evolve, "describe", lambda cfg: "scripted")
    monkeypatch.setattr("safurai_csharp.stages.filter.read_jsonl", lambda path: [])  # no benchmark file here
    (tmp_path / "models/teacher").mkdir(parents=True)
    return load_params(tmp_path / "params.yaml")


@needs_toolchain
def test_round_eliminates_keeps_lineage_and_carries_parents(params):
    parents = [{"id": f"p{i}", "instruction": task, "solution": SOL, "tests": TESTS, "topic": "numerics", "round": 0}
               for i, task in enumerate(SCRIPT)]
    pool, metrics = evolve.evolve_round(parents, 1, params)
    new = [r for r in pool if not r["carried"]]
    assert [r["parent_id"] for r in new] == ["p0"]
    child = new[0]
    assert child["round"] == 1 and child["method"] in params.evolve.methods and child["instruction"].startswith("P0")
    assert child["id"] != "p0" and child["topic"] == "numerics"
    assert sorted(r["id"] for r in pool if r["carried"]) == ["p1", "p2", "p3", "p4"]
    assert metrics["eliminated"] == {"copies_evolution_prompt": 1, "no_information_gain": 1,
                                     "refusal_or_too_short": 1, "solution_assertion_failed": 1}
    assert metrics["evolved"] == 1 and metrics["carried"] == 4 and metrics["pool"] == 5

    # the same round again: same methods, same result (seeded draws, checkpointed calls)
    again, _ = evolve.evolve_round(parents, 1, params)
    assert again == pool

    examples, per_round = collect(parents, [pool])  # what stage split splits
    assert len(examples) == 6 and per_round == {"0": 5, "1": 1}
    assert {ex["id"]: ex.get("parent_id") for ex in examples}[child["id"]] == "p0"
