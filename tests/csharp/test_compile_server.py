"""The warm compile server: same answers as a fresh mcs, no state carried between
compiles, and a failing server never changes a verdict."""

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from safurai_csharp.csharp import Executor, Limits, Program, Status
from safurai_csharp.csharp.executor import start_compile_server
from safurai_csharp.csharp.sandbox import Sandbox, kill_group
from safurai_csharp.csharp.uids import allocate_uids

from _csharp_cases import CASES, PROMPT, TESTS, needs_toolchain

pytestmark = needs_toolchain
ARGS = ["-d:DEBUG", "-r:System.Numerics.dll"]
GOOD = "using System;\nclass Problem { public static void Main() { Console.WriteLine(1); } }\n"
SOURCES = {  # compiled in this order by one server: failures between successes
    "good1": GOOD,
    "semantic": "class Problem { public static void Main() { undefinedName = 1; } }\n",
    "good2": GOOD,
    "syntax": "class Problem { public static void Main() { return (; } }\n",
    "good3": GOOD,
    # a type compiled earlier must not be remembered: this only compiles if it is not
    "redefines": "class Problem { public static void Main() { } }\nclass Helper { }\nclass Helper2 : Helper { }\n",
    "uses_unknown_type": "class Problem { public static void Main() { new Helper3(); } }\n",
    "dup_in_one_file": "class Problem { public static void Main() { } }\nclass Problem { }\n",
    "good4": GOOD,
}


def _errors(text: str, prefix: str) -> list[str]:
    return sorted(l.replace(prefix, "") for l in text.splitlines() if re.search(r"error CS\d{4}", l))


def test_server_answers_like_a_fresh_mcs_and_keeps_no_state():
    with allocate_uids(1) as (uid,), tempfile.TemporaryDirectory() as d:
        root = Path(d)
        root.chmod(0o755)
        sb = Sandbox(uid)
        sb.prepare_dir(root)
        server = start_compile_server(sb, root, Limits())
        assert server is not None
        try:
            for name, src in SOURCES.items():
                (root / f"{name}.cs").write_text(src)
                (root / f"{name}.cs").chmod(0o644)
                reply = server.compile(ARGS + [f"-out:/job/{name}.exe", f"/job/{name}.cs"], 30)
                fresh = subprocess.run(
                    ["mcs", *ARGS, f"-out:{root}/fresh_{name}.exe", f"{root}/{name}.cs"], capture_output=True, text=True
                )
                assert reply is not None, name
                assert reply.ok == (fresh.returncode == 0), (name, reply.text, fresh.stdout)
                assert reply.ok == (root / f"{name}.exe").exists(), name
                assert _errors(reply.text, "/job/") == _errors(fresh.stdout + fresh.stderr, f"{root}/"), name
            assert [n for n in SOURCES if (root / f"{n}.exe").exists()] == [
                "good1", "good2", "good3", "redefines", "good4"]
            # no answer in time: None, and the caller must drop this server
            (root / "big.cs").write_text(PROMPT + "        return a + b;\n" + TESTS)
            assert server.compile(ARGS + ["-out:/job/big.exe", "/job/big.cs"], 0.0) is None
        finally:
            server.close()
        # a dead server gives no answer (never a verdict)
        server = start_compile_server(sb, root, Limits())
        assert server is not None
        kill_group(server.proc)
        assert server.compile(ARGS + ["-out:/job/x.exe", "/job/good1.cs"], 30) is None
        server.close()


class _FlakyServer(Executor):
    """Fault injection on the real server: every 3rd request gets no time to answer
    (so the server is killed and the compile redone by a fresh `mono mcs.exe`), and
    every 5th finds its server killed beforehand."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.requests = 0

    def _server_compile(self, wk, args, timeout_s):
        self.requests += 1
        if self.requests % 5 == 0 and wk.server is not None:
            kill_group(wk.server.proc)
        if self.requests % 3 == 0:
            timeout_s = 0.0
        return super()._server_compile(wk, args, timeout_s)


@pytest.mark.parametrize("batch", [False, True])
def test_server_failures_do_not_change_verdicts(batch):
    names = ["correct", "wrong", "compile_error", "exception", "correct", "compile_error", "wrong", "correct"]
    programs = [Program(PROMPT, CASES[n][0], TESTS) for n in names]
    lim = Limits(timeout_s=3)
    plain = Executor(lim, workers=1, batch=batch, batch_size=4)
    plain.use_compile_server = False
    expected = plain.run(programs)
    assert [r.status for r in expected] == [next(iter(CASES[n][1])) for n in names]
    flaky = _FlakyServer(lim, workers=1, batch=batch, batch_size=4)
    got = flaky.run(programs)
    assert flaky.requests >= 5
    assert [r.status for r in got] == [r.status for r in expected]
    # compile errors: the same diagnostics (other details carry random tokens)
    assert [r.detail for r in got if r.status is Status.COMPILE_ERROR] == [
        r.detail for r in expected if r.status is Status.COMPILE_ERROR]
    assert "CS1525" in got[2].detail  # the same diagnostics as a fresh compiler's
