"""Hostile programs against the verdicts themselves (issue #13): one program must not change a
neighbour's verdict in a batch, nor abort the whole run; every case in both test modes and
both scheduling paths (batch and alone), with the batch verdicts equal to the alone ones."""

import pytest

from safurai_csharp.csharp import Executor, Limits, Program, Status
from safurai_csharp.csharp.split import split

from _csharp_cases import PROMPT, TESTS, needs_toolchain

pytestmark = needs_toolchain
LIMITS = Limits(timeout_s=3, cpu_s=6, memory_mb=512, max_output_bytes=1 << 16)

# Wrong answers (Max(1, 2) = 2, not 3) that pass only if `Math.Max` means something else.
WRONG_MAX = "        return Math.Max(a, b);\n"
WRONG_LIST = "        var l = new List<long> { a, b }; return l.Count == 2 ? l[0] * l[1] : 0;\n"
# Closes its wrapper namespace with an extra `}` and declares global types after it, which
# a shared batch assembly would bind in every neighbour's code (CS0436 is silenced).
ESCAPE = (
    "        return a + b;\n    }\n}\n}\n"
    "namespace System { public static class Math { public static long Max(long x, long y) { return x + y; } } }\n"
    "namespace System.Collections.Generic { public class List<T> : System.Collections.ObjectModel.Collection<T> {\n"
    "    public new int Count { get { return 2; } } public new T this[int i] { get { return default(T); } set { } } } }\n"
    "namespace Evil {\nusing System.Diagnostics;\nclass Problem {\n    static long Add(long a, long b) { return a + b; }\n    static void Unused() {\n"
)
# Abort attempts: a `#line` directive naming a file with a 5,000-digit index plus a compile
# error; forged verdict lines (nonce read by reflection) with a non-hex token and a huge index.
LINE_BOMB = "#line 1 \"/job/p" + "9" * 5000 + ".cs\"\n        return a +;\n"
FORGE_BAD = (
    "        var f = Type.GetType(\"SafuraiHarness.Entry\") ?? typeof(Problem).Assembly.GetType(\"SafuraiHarness.Entry\");\n"
    "        var n = (string)f.GetField(\"nonce\", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static).GetValue(null);\n"
    "        var o = Console.OpenStandardOutput();\n"
    "        var buf = Encoding.ASCII.GetBytes(\"@@\" + n + \" 0 PASS 0 zz,qq\\n@@\" + n + \" \" + new string('7', 5000) + \" PASS 0 -\\n\");\n"
    "        o.Write(buf, 0, buf.Length); o.Flush();\n        return a - buf.Length;\n"
)
SURROGATE = "        return a + b; // \ud800\n"
CORRECT = "        return a + b;\n"


def run_both(completions, mode):
    programs = [Program(PROMPT, c, TESTS, mode=mode) for c in completions]
    alone = Executor(LIMITS, workers=2, batch=False).run(programs)
    batched = Executor(LIMITS, workers=2, batch=True, batch_size=16).run(programs)
    return alone, batched


@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_an_escaped_namespace_changes_no_neighbour(mode):
    completions = [WRONG_MAX, CORRECT, ESCAPE, WRONG_MAX, WRONG_LIST, CORRECT]
    alone, batched = run_both(completions, mode)
    assert [r.status for r in batched] == [r.status for r in alone]
    for i in (0, 3, 4):
        assert alone[i].status is Status.ASSERTION_FAILED, (i, alone[i])
    assert alone[1].passed and alone[5].passed
    assert not alone[2].passed  # alone, the extra `}` does not compile


@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_no_completion_aborts_the_run(mode):
    completions = [CORRECT, LINE_BOMB, FORGE_BAD, SURROGATE, WRONG_MAX, CORRECT]
    alone, batched = run_both(completions, mode)
    assert [r.status for r in batched] == [r.status for r in alone]
    assert alone[0].passed and alone[5].passed
    assert alone[1].status is Status.COMPILE_ERROR
    assert alone[2].status is Status.NO_VERDICT  # forged lines are never a pass, never a crash
    assert alone[3].status is Status.ENCODING_ERROR and "Unicode" in alone[3].detail
    assert alone[4].status is Status.ASSERTION_FAILED


# Replaces the harness's private writer (reflection) with one that rewrites every later
# value a solver reports into the right answers of this problem (Add(1, 2) = 3, Add(2, 2) = 4):
# in a shared runner, every wrong neighbour after it would pass. The batch gate (gate_cs.py)
# sends it to a process of its own.
TAMPER = r'''        var entry = typeof(Problem).Assembly.GetType("SafuraiHarness.Entry");
        var fld = entry.GetField("real", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic);
        fld.SetValue(null, new Rewriter((System.IO.TextWriter)fld.GetValue(null)));
        return a + b;
    }
    class Rewriter : System.IO.TextWriter {
        readonly System.IO.TextWriter inner;
        public Rewriter(System.IO.TextWriter i) { inner = i; }
        public override Encoding Encoding { get { return inner.Encoding; } }
        public override void Write(char c) { inner.Write(c); }
        public override void Write(string s) {
            var p = s.Split(' ');
            if (p.Length == 5 && p[2] == "V") {
                var f = p[4].TrimEnd('\n').Split(',');
                var v = Convert.ToBase64String(Encoding.ASCII.GetBytes(f[0] == "0" ? "i3" : "i4"));
                s = p[0] + " " + p[1] + " V " + p[3] + " " + f[0] + "," + f[1] + "," + v + "\n";
            } else if (p.Length == 5 && p[2] == "AFAIL") {
                s = p[0] + " " + p[1] + " PASS " + p[3] + " -\n";
            }
            inner.Write(s);
        }
        public override void Flush() { inner.Flush(); }
    }
    static void Unused() {
'''
# A finalizer runs on the runner's finalizer thread, whenever the GC gets to it: in a shared
# runner, during a later program. The gate sends any program with one to its own process.
FINALIZER = (
    "        new Bomb(); GC.Collect(); GC.WaitForPendingFinalizers(); return a + b;\n    }\n"
    "    class Bomb { ~Bomb() { Environment.Exit(0); } }\n    static void Unused() {\n"
)
WRONG = "        return a - b;\n"


@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_a_program_that_reaches_the_runner_changes_no_neighbour(mode):
    completions = [CORRECT, TAMPER, WRONG, WRONG_MAX, CORRECT, FINALIZER, WRONG, CORRECT]
    alone, batched = run_both(completions, mode)
    assert [r.status for r in batched] == [r.status for r in alone]
    assert [r.passed for r in alone] == [True, True, False, False, True, False, False, True]
    assert batched[0].batched and batched[2].batched  # honest programs still share a runner
    assert not batched[1].batched and not batched[5].batched  # the gate ran these alone


# Reports the right values for every call site itself (from a static constructor), then ends
# the process: one run of the whole program would have no verdict, and neither does this.
CLAIM_AND_EXIT = (
    "        return a + b;\n    }\n"
    "    static Problem() { SafuraiHarness.Solver.Site(0, () => 3L); SafuraiHarness.Solver.Site(1, () => 4L);"
    " System.Environment.Exit(0); }\n    static void Unused() {\n"
)


@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_values_without_a_finished_run_are_no_pass(mode):
    alone, batched = run_both([CLAIM_AND_EXIT, CORRECT], mode)
    assert [r.status for r in batched] == [r.status for r in alone]
    assert alone[0].status is Status.NO_VERDICT and alone[1].passed


def test_a_thread_left_in_a_checker_stops_no_later_verdict():
    # Tests that leave a thread running make their runner "dirty": a runner of programs stops
    # there (the next program could be disturbed), a checker runner (tests only) goes on.
    tests = TESTS.replace("    public static void Main", "    static bool Spawn() { new System.Threading.Thread(() => "
                          "System.Threading.Thread.Sleep(60000)) { IsBackground = true }.Start(); return true; }\n"
                          "    public static void Main").replace("== (3L));", "== (3L) == Spawn());")
    assert split(PROMPT, tests) is not None  # the thread starts in the checker
    programs = [Program(PROMPT, c, tests) for c in (CORRECT, WRONG, CORRECT, CORRECT, WRONG)]
    for batch in (False, True):
        got = Executor(LIMITS, workers=1, batch=batch).run(programs)
        assert [r.passed for r in got] == [True, False, True, True, False], (batch, got)
