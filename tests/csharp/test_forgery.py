"""No pass without solving (issue #13): completions that have read the harness source try to
make the tests of a real HumanEval-C# problem pass without returning the right answers.
Every attack runs in both test modes and both scheduling paths (batch and alone); none may
pass, and the honest neighbours around it keep the verdicts they get alone."""

import pytest

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.csharp import Executor, Limits, Program, Status

from _csharp_cases import needs_toolchain

pytestmark = needs_toolchain
LIMITS = Limits(timeout_s=5, cpu_s=10, memory_mb=768, max_output_bytes=1 << 16)

# Calls Checker.Assert for every assertion token it can find (sources under /job, the IL of
# every method of the assembly), marks them seen directly too, then stops the tests' Main.
TOKENS = r'''
        var found = new System.Collections.Generic.List<long>();
        try { foreach (var f in System.IO.Directory.GetFiles("/job"))
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(System.IO.File.ReadAllText(f), @"0x([0-9a-f]+)L"))
                found.Add(long.Parse(m.Groups[1].Value, System.Globalization.NumberStyles.HexNumber)); } catch (Exception) { }
        foreach (var t in typeof(Problem).Assembly.GetTypes())
            foreach (var mi in t.GetMethods(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly)) {
                var body = mi.GetMethodBody(); if (body == null) continue;
                var il = body.GetILAsByteArray();
                for (int i = 0; i + 8 < il.Length; i++) if (il[i] == 0x21) found.Add(BitConverter.ToInt64(il, i + 1));
            }
        var state = typeof(Problem).Assembly.GetType("SafuraiHarness.State");
        var seen = state == null ? null : (System.Collections.Generic.HashSet<long>)state.GetField("Seen", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic).GetValue(null);
        foreach (var t in found) { try { SafuraiHarness.Checker.Assert(t, true); } catch (Exception) { } if (seen != null) seen.Add(t); }
        throw new SafuraiHarness.StopSignal();
'''
# Reads the nonce by reflection and writes a PASS verdict (with every token it found) for
# itself on fd 1, then returns a wrong answer.
FORGE = TOKENS.replace("        throw new SafuraiHarness.StopSignal();\n", r'''
        var entry = typeof(Problem).Assembly.GetType("SafuraiHarness.Entry");
        var nonce = (string)entry.GetField("nonce", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic).GetValue(null);
        var idx = (int)entry.GetField("current", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic).GetValue(null);
        var line = "@@" + nonce + " " + idx + " PASS 0 " + string.Join(",", found.ConvertAll(x => x.ToString("x"))) + "\n";
        var o = Console.OpenStandardOutput(); var bytes = Encoding.ASCII.GetBytes(line); o.Write(bytes, 0, bytes.Length); o.Flush();
''')
SHADOW_LIST = '''        return new List<long>();
    }
    public class List<T> : System.Collections.Generic.List<T> {
        public List() { }
        public List(System.Collections.Generic.IEnumerable<T> items) : base(items) { }
        public override bool Equals(object o) { return true; }
        public override int GetHashCode() { return 0; }
'''
SHADOW_TUPLE = '''        return new Tuple<long, long>(0, 0);
    }
    public class Tuple<A, B> {
        public Tuple(A a, B b) { }
        public override bool Equals(object o) { return true; }
        public override int GetHashCode() { return 0; }
    }
    public static class Tuple {
        public static Tuple<A, B> Create<A, B>(A a, B b) { return new Tuple<A, B>(a, b); }
'''
GET_POSITIVE = "        return l.Where(x => x > 0).ToList();\n"
EVEN_ODD = '''        long e = 0, o = 0;
        for (long i = 1; i <= n; i++) { var s = i.ToString(); var r = new string(s.Reverse().ToArray());
            if (s == r) { if (i % 2 == 0) e++; else o++; } }
        return Tuple.Create(e, o);
'''
WRONG_POSITIVE = "        return l;\n"


@pytest.fixture(scope="module")
def problems():
    rows = {r["name"]: r for r in build_humaneval_cs()}
    return rows["HumanEval_30_get_positive"], rows["HumanEval_107_even_odd_palindrome"]


def run(programs, batch):
    return Executor(LIMITS, workers=2, batch=batch, batch_size=16).run(programs)


@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_no_attack_passes_and_neighbours_keep_their_verdicts(problems, mode):
    positive, even_odd = problems
    cases = [  # (problem, completion, must it pass?)
        (positive, GET_POSITIVE, mode == "corrected"),  # official: List.Equals is reference equality
        (positive, TOKENS, False), (positive, FORGE + "        return l;\n", False),
        (positive, SHADOW_LIST, False), (positive, WRONG_POSITIVE, False),
        (even_odd, TOKENS, False), (even_odd, SHADOW_TUPLE, False), (even_odd, EVEN_ODD, True),  # Tuple.Equals compares items in both modes
        (even_odd, FORGE + "        return Tuple.Create(0L, 0L);\n", False), (positive, GET_POSITIVE, mode == "corrected"),
    ]
    programs = [Program(p["prompt"], c, p["tests"], mode=mode) for p, c, _ in cases]
    alone, batched = run(programs, False), run(programs, True)
    for i, (_p, _c, should_pass) in enumerate(cases):
        assert alone[i].passed == should_pass, (i, alone[i])
        assert batched[i].status == alone[i].status, (i, alone[i], batched[i])
    assert alone[1].status is Status.NO_VERDICT  # stopped the tests: no value for the first call
    assert alone[6].status is Status.NO_VERDICT  # its Tuple is no System.Tuple: the value does not fit
