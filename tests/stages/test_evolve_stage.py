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
        outs = self._answer(conversations)
        self.last_stats = {"generated_tokens": sum(len(o[0].split()) for o in outs), "prompt_tokens": 0}
        return outs

    def _answer(self, conversations):
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
    (tmp_path / "data/benchmark").mkdir(parents=True)
    (tmp_path / "data/benchmark/humaneval-cs.jsonl").write_text("")  # decontam's benchmark: none here
    (tmp_path / "data/benchmark/devbench-cs.jsonl").write_text("")
    (tmp_path / "models/teacher").mkdir(parents=True)
    return load_params(tmp_path / "params.yaml")


def candidate_sections(p):
    """evolve_candidates' sections, as stage evolve's run passes them."""
    return p.evolve, p.teacher, p.filter, p.generate, p.sandbox


def round_sections(p):
    """evolve_round's sections and the evaluation files, as stage evolve's run passes them."""
    return (*candidate_sections(p), p.benchmark.evaluation_files())


@needs_toolchain
def test_round_eliminates_keeps_lineage_and_carries_parents(params):
    parents = [{"id": f"p{i}", "instruction": task, "solution": SOL, "tests": TESTS, "topic": "numerics", "round": 0}
               for i, task in enumerate(SCRIPT)]
    pool, metrics = evolve.evolve_round(parents, 1, *round_sections(params))
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
    again, _ = evolve.evolve_round(parents, 1, *round_sections(params))
    assert again == pool

    examples, per_round = collect(parents, [pool])  # what stage split splits
    assert len(examples) == 6 and per_round == {"0": 5, "1": 1}
    assert {ex["id"]: ex.get("parent_id") for ex in examples}[child["id"]] == "p0"


class SlowTeacher(ScriptedTeacher):
    """The scripted teacher at a human pace, so a run can be killed between chunks."""

    def chat(self, conversations, sampling, seeds=None):
        import time

        time.sleep(0.5)
        return super().chat(conversations, sampling, seeds)


def test_killed_round_resumes_to_the_uninterrupted_result(params, tmp_path, monkeypatch):
    """kill -9 mid-round, rerun: nothing lost, nothing doubled, the uninterrupted candidates,
    and the cost of the whole round (the resumed chunks' tallies count)."""
    import json
    import multiprocessing
    import os
    import signal
    import time

    parents = [{"id": f"p{i}", "instruction": task, "solution": SOL, "tests": TESTS, "round": 0}
               for i, task in enumerate(SCRIPT)]
    assert params.generate.chunk_size == 2  # configs/tiny.yaml: 5 parents = 3 chunks
    whole, whole_cost = evolve.evolve_candidates(parents, 1, *candidate_sections(params),
                                                 checkpoint_root=tmp_path / "whole")

    root = tmp_path / "killed"
    monkeypatch.setattr("safurai_csharp.synth.teacher.open_teacher", lambda cfg, seed: SlowTeacher())
    child = multiprocessing.get_context("fork").Process(target=evolve.evolve_candidates,
                                                        args=(parents, 1, *candidate_sections(params)),
                                                        kwargs={"checkpoint_root": root})
    child.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        files = list((root / "evolve").glob("*.jsonl")) if (root / "evolve").exists() else []
        if files and '"_tally"' in files[0].read_text():
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    lines = files[0].read_text().splitlines()
    assert 0 < sum('"_tally"' in ln for ln in lines) < 3, "the kill should land mid-round"
    with files[0].open("a") as fh:  # and a torn half record, as if killed inside a write
        fh.write('{"index": 4, "_chunk": 2, "raw": "tor')

    monkeypatch.setattr("safurai_csharp.synth.teacher.open_teacher", lambda cfg, seed: ScriptedTeacher())
    resumed, cost = evolve.evolve_candidates(parents, 1, *candidate_sections(params), checkpoint_root=root)
    assert resumed == whole
    assert cost["generated_tokens"] == whole_cost["generated_tokens"] > 0
    indices = [json.loads(ln)["index"] for ln in files[0].read_text().splitlines()
               if ln.startswith("{") and '"_tally"' not in ln and ln.endswith("}")]
    complete = sorted(set(indices))
    assert complete == list(range(5))  # nothing lost


class DecomposedTeacher(ScriptedTeacher):
    """The scripted rewrites; then, as generate's decomposed recipe asks: a solution only (chat),
    more bodies and independent tests (completion prompts in MultiPL-E's shape). P4's tests expect
    values no body returns, so no body agrees with them."""

    def __init__(self):
        self.asked = []

    def _answer(self, conversations):
        outs = []
        for conv in conversations:
            text = conv[-1]["content"]
            if "increase the difficulty" in text or "brand-new one" in text:
                outs.append(["Question:\n" + SCRIPT[next(p for p in SCRIPT if p in text)][0]])
                continue
            self.asked.append(conv)
            sol = next(s for t, s in SCRIPT.values() if t in text)
            # a reworded task before the solution: the example keeps the evolved statement
            outs.append([f"### Task\nSquare numbers.\n\n### Solution\n```csharp\n{sol}\n```\n"])
        return outs

    def generate(self, prompts, sampling, seeds=None):
        self.last_stats = {"generated_tokens": 7 * len(prompts) * sampling.n, "prompt_tokens": 0}
        tests = "Square(2) == 4);\n        Debug.Assert(Square(-3) == 9);\n        Debug.Assert(Square(5) == 25);\n"
        wrong = "Square(2) == 5);\n        Debug.Assert(Square(3) == 10);\n"
        return [[wrong if "// P4" in p else tests] * sampling.n if p.endswith("Debug.Assert(") else
                ["\n        return x * x;"] * sampling.n for p in prompts]


@needs_toolchain
def test_a_decomposed_round_solves_the_evolved_task_with_generates_steps(params, monkeypatch):
    teacher = DecomposedTeacher()
    monkeypatch.setattr("safurai_csharp.synth.teacher.open_teacher", lambda cfg, seed: teacher)
    cfg = params.evolve.model_copy(update={"recipe": "decomposed"})
    parents = [{"id": f"p{i}", "instruction": task, "solution": SOL, "tests": TESTS, "topic": "numerics", "round": 0}
               for i, task in enumerate(SCRIPT)]
    pool, metrics = evolve.evolve_round(parents, 1, cfg, *round_sections(params)[1:])
    new = [r for r in pool if not r["carried"]]
    assert [r["parent_id"] for r in new] == ["p0"]
    child = new[0]
    assert child["recipe"] == "decomposed" and child["instruction"] == SCRIPT[next(iter(SCRIPT))][0]
    assert "return x * x;" in child["solution"] and child["tests"].count("Debug.Assert(") == 3
    assert "Square(5) == 25" in child["tests"]
    # the solve step asks for a solution only; P0's and P4's evolved tasks got that far
    assert len(teacher.asked) == 2 and all("'### Solution'" in c[0]["content"] and "### Tests" not in c[0]["content"]
                                          for c in teacher.asked)
    assert metrics["eliminated"] == {"copies_evolution_prompt": 1, "no_information_gain": 1,
                                     "refusal_or_too_short": 1, "agreement_no_body_passes": 1}
    assert metrics["generation"]["generated_tokens"] > 0 and metrics["cost"]["kept"] == 1
