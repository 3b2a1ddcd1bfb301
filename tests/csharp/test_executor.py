"""Sandbox behaviour: honest and hostile programs, alone and batched, same verdicts."""

import os
import socket
import time

import pytest

from safurai_csharp.csharp import Executor, Limits, Program, Status

from _csharp_cases import CASES, PROMPT, TESTS
from _csharp_cases import needs_toolchain

pytestmark = needs_toolchain
LIMITS = Limits(timeout_s=3, cpu_s=6, memory_mb=512, max_output_bytes=1 << 16)
WORKERS = 2


def _sandbox_uid_processes(uids) -> list[str]:
    left = []
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            try:
                with open(f"/proc/{e.name}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                # zombies hold no resources; this container's PID 1 reaps them lazily
                if e.stat().st_uid in uids and state != "Z":
                    left.append(e.name)
            except (OSError, IndexError):
                pass
    return left


@pytest.fixture(scope="module")
def runs():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    os.environ["SAFURAI_TEST_SECRET"] = "hunter2"
    try:
        names = list(CASES)
        programs = [Program(PROMPT, CASES[n][0].replace("PORT", str(port)), TESTS, name=n) for n in names]
        out, uids = {}, set()
        for batch in (False, True):
            t0 = time.monotonic()
            ex = Executor(LIMITS, workers=WORKERS, batch=batch, batch_size=8)
            results = ex.run(programs)
            out[batch] = (dict(zip(names, results)), time.monotonic() - t0)
            assert len(set(ex.uids_used)) == (2 * WORKERS if os.geteuid() == 0 else 0)
            uids |= set(ex.uids_used)
        out["uids"] = uids
        return out
    finally:
        os.environ.pop("SAFURAI_TEST_SECRET", None)
        listener.close()


@pytest.mark.parametrize("name", list(CASES))
def test_case_alone(runs, name):
    result = runs[False][0][name]
    assert result.status in CASES[name][1], (name, result)
    assert result.passed == (result.status is Status.PASS)


def test_batch_verdicts_equal_alone(runs):
    alone, batched = runs[False][0], runs[True][0]
    diff = {n: (alone[n].status, batched[n].status) for n in CASES if alone[n].status != batched[n].status}
    assert not diff
    # the clean ones really came from a batch run
    assert batched["correct"].batched and batched["wrong"].batched


def test_nothing_left_running_and_runs_bounded(runs):
    # a killed PID namespace is torn down asynchronously: give it a moment
    uids = runs["uids"]
    deadline = time.monotonic() + 5
    while _sandbox_uid_processes(uids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandbox_uid_processes(uids) == []
    for batch in (False, True):
        seconds = runs[batch][1]
        assert seconds < 60, (batch, seconds)


def test_results_in_input_order_and_status_values():
    programs = [Program(PROMPT, CASES[n][0], TESTS) for n in ("wrong", "correct", "compile_error", "correct")]
    res = Executor(LIMITS, workers=2).run(programs)
    assert [r.status.value for r in res] == ["assertion_failed", "pass", "compile_error", "pass"]
    assert "CS1525" in res[2].detail or "error" in res[2].detail
    assert res[1].to_dict() == {"status": "pass", "passed": True, "detail": ""}


def test_progress_callback_counts_final_verdicts():
    from safurai_csharp.benchmark import build_humaneval_cs
    from safurai_csharp.csharp.split import split

    row = next(r for r in build_humaneval_cs() if r["name"] == "HumanEval_2_truncate_number")
    whole_tests = TESTS.replace("Debug.Assert(Add((1L), (2L)) == (3L));", "long x = Add(1L, 2L); Debug.Assert(x == 3L);")
    assert split(row["prompt"], row["tests"]) is not None and split(PROMPT, whole_tests) is None
    programs = [
        Program(row["prompt"], "        return number % 1.0f;\n", row["tests"]),  # split: pass
        Program(row["prompt"], "        return 0f;\n", row["tests"]),             # split: fails in its checker
        Program(row["prompt"], "        return \"x\";\n", row["tests"]),          # split: compile error
        Program(PROMPT, CASES["correct"][0], whole_tests),                       # whole: pass
        Program(PROMPT, CASES["wrong"][0], whole_tests),                         # whole: assertion failed
        Program(PROMPT, "        return a + b; // \ud800\n", whole_tests),       # encoding error
    ]
    calls = []
    res = Executor(LIMITS, workers=2, batch_size=2).run(programs, on_progress=lambda *a: calls.append(a))
    assert [r.status.value for r in res] == ["pass", "assertion_failed", "compile_error", "pass",
                                             "assertion_failed", "encoding_error"]
    assert calls[0] == (1, 0, 6)  # before any chunk: the encoding error is decided
    assert calls[-1] == (6, 2, 6)
    assert {t for *_, t in calls} == {6} and len(calls) >= 3
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)
    assert [p for _, p, _ in calls] == sorted(p for _, p, _ in calls)
