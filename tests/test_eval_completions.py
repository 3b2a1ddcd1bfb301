"""`safurai-csharp eval-completions` through its real CLI: output contract and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.jsonl import write_jsonl

CLI = [sys.executable, "-m", "safurai_csharp.cli", "eval-completions"]

CLOSE = """        for (int i = 0; i < numbers.Count; i++)
            for (int j = i + 1; j < numbers.Count; j++)
                if (Math.Abs(numbers[i] - numbers[j]) < threshold) return true;
        return false;
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "b.jsonl"
    rows = build_humaneval_cs()
    write_jsonl(path, [r for r in rows if r["name"] in ("HumanEval_0_has_close_elements", "HumanEval_2_truncate_number")])
    return path


def cli(*args, env=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=env or os.environ.copy())


def test_scores_and_writes_results_in_input_order(bench, tmp_path):
    comps = tmp_path / "c.jsonl"
    write_jsonl(comps, [
        {"name": "HumanEval_2_truncate_number", "completions": ["        return number % 1.0f;\n", "        return 0f;\n"]},
        {"name": "HumanEval_0_has_close_elements", "completions": [CLOSE, "        return 1;\n"]},
    ])
    out = tmp_path / "r.jsonl"
    proc = cli("--benchmark", bench, "--completions", comps, "--mode", "corrected", "--out", out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "corrected" and summary["problems"] == 2 and summary["programs"] == 4
    assert summary["status"]["compile_error"] == 1  # `return 1;` in a bool method
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in results] == ["HumanEval_2_truncate_number", "HumanEval_0_has_close_elements"]
    assert [x["passed"] for x in results[1]["results"]] == [True, False]
    assert results[0]["results"][1]["status"] == "assertion_failed"
    assert summary["pass@1"] == pytest.approx((results[0]["results"][0]["passed"] * 0.5 + 0.5) / 2)


@pytest.mark.parametrize("content,message", [
    ('{"name": "HumanEval_999_nope", "completions": ["x"]}\n', "unknown problem 'HumanEval_999_nope'"),
    ('{"name": "HumanEval_0_has_close_elements", "completions": ["x"]}\n{not json\n', "c.jsonl:2: malformed JSON"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(bench, tmp_path, content, message):
    comps = tmp_path / "c.jsonl"
    comps.write_text(content)
    out = tmp_path / "r.jsonl"
    proc = cli("--benchmark", bench, "--completions", comps, "--out", out)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not out.exists()


def test_missing_toolchain_is_a_clear_error(bench, tmp_path):
    comps = tmp_path / "c.jsonl"
    write_jsonl(comps, [{"name": "HumanEval_0_has_close_elements", "completions": [CLOSE]}])
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no /usr/bin: no mcs, mono, bwrap
    proc = cli("--benchmark", bench, "--completions", comps, "--out", out, env=env)
    assert proc.returncode == 2
    assert "apt-get install" in proc.stderr and "mono" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("case", ["out_is_completions", "out_is_benchmark", "out_is_dir", "empty", "not_utf8",
                                  "workers_0", "timeout_0", "timeout_nan", "row_without_tests"])
def test_bad_arguments_are_one_line_and_touch_nothing(bench, tmp_path, case):
    comps = tmp_path / "c.jsonl"
    write_jsonl(comps, [{"name": "HumanEval_0_has_close_elements", "completions": [CLOSE]}])
    bench_copy = tmp_path / "b.jsonl"
    bench_copy.write_bytes(Path(bench).read_bytes())
    out, extra = tmp_path / "r.jsonl", []
    if case == "out_is_completions":
        out = comps
    elif case == "out_is_benchmark":
        out = bench_copy
    elif case == "out_is_dir":
        out = tmp_path / "d"
        out.mkdir()
    elif case == "empty":
        comps.write_text("")
    elif case == "not_utf8":
        comps.write_bytes(b'{"name": "HumanEval_0_has_close_elements", "completions": ["\xff\xfe"]}\n')
    elif case == "workers_0":
        extra = ["--workers", "0"]
    elif case == "timeout_0":
        extra = ["--timeout-s", "0"]
    elif case == "timeout_nan":
        extra = ["--timeout-s", "nan"]
    elif case == "row_without_tests":
        rows = [json.loads(line) for line in bench_copy.read_text().splitlines()]
        del rows[0]["tests"]
        write_jsonl(bench_copy, rows)
    before = {p: p.read_bytes() for p in (comps, bench_copy)}
    proc = cli("--benchmark", bench_copy, "--completions", comps, "--out", out, *extra)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    # one plain error line (argparse puts its usage above its own)
    assert "Traceback" not in proc.stderr and "error: " in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert {p: p.read_bytes() for p in (comps, bench_copy)} == before  # inputs untouched
    assert case == "out_is_dir" or case.startswith("out_is") or not out.exists()


def test_a_completion_with_a_lone_surrogate_is_a_failed_program(bench, tmp_path):
    comps = tmp_path / "c.jsonl"
    comps.write_text('{"name": "HumanEval_0_has_close_elements", "completions": ["        return true; // \\ud800\\n", '
                     + json.dumps(CLOSE) + ']}\n')
    out = tmp_path / "r.jsonl"
    proc = cli("--benchmark", bench, "--completions", comps, "--out", out)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["status"] for r in results] == ["encoding_error", "pass"]
