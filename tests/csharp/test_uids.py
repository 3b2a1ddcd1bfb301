"""Concurrent Executors never share a sandbox uid (and so an RLIMIT_NPROC account)."""

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safurai_csharp.csharp.uids import UID_BASE, UID_COUNT, allocate_uids, lock_dir

from _csharp_cases import PROMPT, TESTS, needs_toolchain

SRC = Path(__file__).resolve().parents[2] / "src"
# 40 threads alive for 1.5 s: fit one sandbox's 64-task budget (with mono's own
# threads), not two of them sharing one uid.
HUNGRY = (
    "        var ts = new List<Thread>();\n"
    "        for (int i = 0; i < 40; i++) { var t = new Thread(() => Thread.Sleep(1500)); t.Start(); ts.Add(t); }\n"
    "        foreach (var t in ts) t.Join();\n        return a + b;\n"
)
SCRIPT = """
import json, sys
from safurai_csharp.csharp import Executor, Limits, Program
prompt, tests, comp = json.loads(sys.stdin.read())
res = Executor(Limits(timeout_s=8, memory_mb=4096), workers=1, batch=False).run([Program(prompt, comp, tests)] * 2)
print(json.dumps([r.status.value + ":" + r.detail[:80] for r in res]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dedicated sandbox uids are only used as root")
def test_allocations_are_disjoint_while_held():
    with allocate_uids(3) as a, allocate_uids(3) as b:
        assert len(set(a)) == 3 and len(set(b)) == 3 and not set(a) & set(b)
        assert all(UID_BASE <= u < UID_BASE + UID_COUNT for u in a + b)
    for uid in a + b:  # released again: anyone can take the locks now
        fd = os.open(lock_dir() / f"{uid}.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


@needs_toolchain
def test_two_executors_in_two_processes_with_thread_hungry_programs():
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    for p in procs:
        p.stdin.write(json.dumps([PROMPT, TESTS, HUNGRY]))
        p.stdin.close()
    outs = [p.stdout.read() for p in procs]
    for p in procs:
        p.wait(timeout=120)
    assert all(p.returncode == 0 for p in procs), outs
    for out in outs:
        assert json.loads(out.splitlines()[-1]) == ["pass:"] * 2, out
