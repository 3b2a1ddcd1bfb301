"""Stage generate through the real CLI with a tiny teacher: records, and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("teacher") / "model")


def project(tmp: Path, teacher: Path, **generate) -> Path:
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["teacher"]["model_dir"] = str(teacher)
    params["generate"].update({"num_tasks": 12, "chunk_size": 1, "max_new_tokens": 64, "temperature": 1.0, **generate})
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp


def cli(cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([str(BIN / "safurai-csharp"), "generate"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]


def test_records_carry_what_the_issue_asks(tmp_path, teacher):
    proj = project(tmp_path / "p", teacher, num_tasks=3)
    finish(cli(proj))
    rows = [json.loads(line) for line in (proj / "data/generated/examples.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert {"id", "instruction", "solution", "tests", "topic", "concept", "teacher", "sampling", "seed", "raw",
                "parse_error"} <= set(r)
        assert r["sampling"] == {"temperature": 1.0, "top_p": 0.95, "top_k": 0, "max_new_tokens": 64}
        assert r["parse_error"] is not None or r["solution"]  # a random tiny model rarely parses
    assert len({r["seed"] for r in rows}) == 3
    metrics = json.loads((proj / "metrics/generate.json").read_text())
    assert metrics["tasks"] == 3 and metrics["generation"]["resumed_tasks"] == 0


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, teacher):
    whole = project(tmp_path / "whole", teacher)
    finish(cli(whole))
    expected = (whole / "data/generated/examples.jsonl").read_text()

    killed = project(tmp_path / "killed", teacher)
    proc = cli(killed)
    ckpt_dir = killed / ".cache/checkpoints/generate"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill -9 as soon as the first chunk is on disk
        files = list(ckpt_dir.glob("*.jsonl")) if ckpt_dir.exists() else []
        if files and files[0].read_text().count("\n") >= 1:
            break
        if proc.poll() is not None:
            pytest.fail("generate ended before it could be killed")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = files[0]
    lines_at_kill = ckpt.read_text().count("\n")
    assert 1 <= lines_at_kill < 24, "the kill should land mid-run"
    with ckpt.open("a") as fh:  # and a torn half record, as if killed inside a write
        fh.write('{"index": 99, "_chunk": 99, "raw": "tor')
    assert not (killed / "data/generated/examples.jsonl").exists()

    finish(cli(killed))
    assert (killed / "data/generated/examples.jsonl").read_text() == expected
    metrics = json.loads((killed / "metrics/generate.json").read_text())
    records_at_kill = lines_at_kill // 2  # a one-task chunk = its record + its tally (commit mark)
    assert metrics["generation"]["resumed_tasks"] == records_at_kill
    # the cost is the whole run's: the resumed chunks' tallies count too
    whole_gen = json.loads((whole / "metrics/generate.json").read_text())["generation"]
    assert metrics["generation"]["generated_tokens"] == whole_gen["generated_tokens"] > 0
    assert metrics["generation"]["prompt_tokens"] == whole_gen["prompt_tokens"] > 0

    finish(cli(killed))  # a finished run resumes everything and generates nothing
    assert (killed / "data/generated/examples.jsonl").read_text() == expected
    assert json.loads((killed / "metrics/generate.json").read_text())["generation"]["resumed_tasks"] == 12


def test_repair_turn_sends_the_sandbox_verdict_back():
    import shutil

    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.engines import SamplingConfig
    from safurai_csharp.stages.generate import repair
    from safurai_csharp.synth.cost import Meter
    from safurai_csharp.synth.parse import render_answer

    if not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")):
        pytest.skip("mono/bubblewrap not installed")
    task = "Return the square of an integer, negative inputs included."
    good = "public static class M\n{\n    public static int Sq(int x) { return x * x; }\n}"
    tests = "Debug.Assert(M.Sq(2) == 4);\nDebug.Assert(M.Sq(-3) == 9);\nDebug.Assert(M.Sq(0) == 0);"
    broken = render_answer(task, good.replace("x * x;", "x * x"), tests)  # missing ';'
    fine = render_answer(task, good, tests)
    seen = []

    class Teacher:  # answers every feedback turn with the fixed program
        last_stats = {"generated_tokens": 0}

        def chat(self, conversations, sampling, seeds=None):
            seen.extend(conversations)
            return [[fine] for _ in conversations]

    convs = [[{"role": "user", "content": "write one"}]] * 3
    meter = Meter(Teacher())
    answers, log = repair(meter, Executor(Limits(), workers=2), convs, [broken, fine, "not parseable"],
                          [1, 2, 3], SamplingConfig(temperature=0.7), rounds=1)
    assert answers == [fine, fine, "not parseable"]
    assert log[0]["first_status"] == "compile_error" and log[0]["raw_first"] == broken
    assert log[1] is None and log[2] is None
    assert len(seen) == 1 and seen[0][-2] == {"role": "assistant", "content": broken}
    assert "does not compile" in seen[0][-1]["content"] and "error CS1525" in seen[0][-1]["content"]
    assert "/job/" not in seen[0][-1]["content"]
    assert meter.tally["seconds"] > 0  # the sandbox's time belongs to generation


def test_decomposed_recipe_through_the_cli(tmp_path, teacher):
    """The plumbing of the decomposed recipe with a real engine (a random tiny model writes no
    usable task, so every record stops at the first step; tests/synth/test_decomposed.py runs
    the later steps with a scripted teacher and the real sandbox)."""
    proj = project(tmp_path / "p", teacher, num_tasks=3, chunk_size=3, recipe="decomposed", solutions_per_task=2)
    finish(cli(proj))
    rows = [json.loads(line) for line in (proj / "data/generated/examples.jsonl").read_text().splitlines()]
    assert [r["recipe"] for r in rows] == ["decomposed"] * 3
    assert all(r["steps"]["dropped_at"] in (None, *("task", "render", "tests", "agreement")) for r in rows)
    metrics = json.loads((proj / "metrics/generate.json").read_text())
    assert metrics["recipe"] == "decomposed"
    assert sum(metrics["decomposed"].values()) == 3
    assert metrics["generation"]["generated_tokens"] > 0 and metrics["generation"]["seconds"] > 0
