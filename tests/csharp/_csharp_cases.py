"""Test programs: a tiny problem (`Add`) and completions, honest and hostile.

Each case: completion text -> the statuses allowed for it. A completion returns the
right answer (`a + b`) only when the hostile action it tries *fails*, so `pass` means
the sandbox blocked it.
"""

import shutil

import pytest

from safurai_csharp.csharp import Status

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed"
)

PROMPT = (
    "using System;\nusing System.Numerics;\nusing System.Diagnostics;\nusing System.Collections.Generic;\n"
    "using System.Linq;\nusing System.Text;\nusing System.IO;\nusing System.Threading;\n"
    "class Problem {\n    public static long Add(long a, long b) {\n"
)
TESTS = (
    "    }\n    public static void Main(string[] args) {\n"
    "    Debug.Assert(Add((1L), (2L)) == (3L));\n"
    "    Debug.Assert(Add((2L), (2L)) == (4L));\n"
    "    }\n\n}\n"
)


def blocked(action: str) -> str:
    """Completion that answers correctly only if `action` throws."""
    return f"        try {{ {action} }} catch (Exception) {{ return a + b; }}\n        return -1;\n"


P, AF, CE, EXC, TO, RL, NV = (
    Status.PASS, Status.ASSERTION_FAILED, Status.COMPILE_ERROR, Status.EXCEPTION,
    Status.TIMEOUT, Status.RESOURCE_LIMIT, Status.NO_VERDICT,
)

CASES: dict[str, tuple[str, set]] = {
    "correct": ("        return a + b;\n", {P}),
    "wrong": ("        return a - b;\n", {AF}),
    "compile_error": ("        return a +;\n", {CE}),
    "exception": ("        throw new InvalidOperationException(\"boom\");\n", {EXC}),
    "early_exit_0": ("        Environment.Exit(0);\n        return 0;\n", {NV}),
    "exit_in_static_ctor": (
        "        return a - b;\n    }\n    static Problem() { Environment.Exit(0); }\n"
        "    static void Unused() {\n", {NV}),
    # Hijacks Main: the real tests end up in another class, Problem.Main is empty. Two
    # entry points: plain mcs refuses it (CS0017), and so do we.
    "return_out_of_main": (
        "        return a + b;\n    }\n    public static void Main(string[] args) { return; }\n}\n"
        "class Junk {\n    static long Add(long a, long b) { return 0; }\n    static void Unused() {\n",
        {CE},
    ),
    # A model writing its own `static void Main()` beside the tests' Main(string[]) (seen
    # in real Qwen2.5-Coder completions): CS0017 under plain mcs, the same verdict here.
    "second_main": (
        "        return a + b;\n    }\n    public static void Main() { Console.WriteLine(Add(1, 2)); }\n"
        "    static void Unused() {\n", {CE}),
    # Upstream hack: silence the trace listeners so failed asserts print nothing.
    "clear_trace_listeners": (
        "        return a - b;\n    }\n    static Problem() { Trace.Listeners.Clear(); Debug.Listeners.Clear(); }\n"
        "    static void Unused() {\n", {AF}),
    # A failed Debug.Assert / Debug.Fail in the completion's own code fails the program
    # (upstream semantics), also after another program reset the listeners in a batch.
    "own_debug_assert_fails": ("        Debug.Assert(a < 0, \"own check\");\n        return a + b;\n", {AF}),
    "own_debug_fail": ("        Debug.Fail(\"nope\");\n        return a + b;\n", {AF}),
    "trace_write_is_harmless": ("        Trace.WriteLine(\"x\"); Debug.WriteLine(\"y\");\n        return a + b;\n", {P}),
    # Shadow Debug.Assert with a no-op for the tests that follow.
    "shadow_debug_class": (
        "        return a - b;\n    }\n    class Debug { public static void Assert(bool c) { } }\n"
        "    static void Unused() {\n", {AF}),
    # Swallow the failure: the completion cannot catch what happens in Main.
    "swallow_exceptions": (
        "        AppDomain.CurrentDomain.UnhandledException += (s, e) => Environment.Exit(0);\n"
        "        try { throw new Exception(); } catch { }\n        return a - b;\n", {AF}),
    "crash_stack_overflow": ("        return Add(a, b) + 1;\n", {EXC, NV, RL}),
    "forge_verdict": (
        "        Console.OpenStandardOutput().Write(new byte[]{64,64,120,32,48,32,80,65,83,83,32,48,32,45,10}, 0, 15);\n"
        "        Environment.Exit(0); return 0;\n", {NV}),
    "infinite_loop": ("        while (true) { }\n", {TO}),
    "foreground_thread_after_main": (
        "        var t = new Thread(() => { while (true) { } }); t.IsBackground = false; t.Start();\n"
        "        return a + b;\n", {P, TO}),
    "thread_bomb": (
        "        while (true) { var t = new Thread(() => Thread.Sleep(100000)); t.Start(); }\n", {RL, TO}),
    "fork_bomb": (
        "        while (true) { try { System.Diagnostics.Process.Start(\"/bin/sh\", \"-c 'sleep 100'\"); } catch { } }\n",
        {TO, RL}),
    "memory_hog": (
        "        var l = new List<long[]>(); while (true) l.Add(new long[1 << 20]);\n", {RL}),
    "stdout_flood_console": (
        "        var s = new string('x', 1 << 20); for (int i = 0; i < 400; i++) Console.Write(s);\n"
        "        return a + b;\n", {RL}),
    "stdout_flood_raw_fd": (
        "        var o = Console.OpenStandardOutput(); var buf = new byte[1 << 20];\n"
        "        for (int i = 0; i < 400; i++) o.Write(buf, 0, buf.Length);\n        return a + b;\n", {RL}),
    "read_root": (blocked('Directory.GetFiles("/root");'), {P}),
    "read_project": (blocked('File.ReadAllBytes("/work/shared/benchmarks/multipl-e/SOURCE.md");'), {P}),
    "see_project_dir": (blocked('if (!Directory.Exists("/work")) throw new Exception();'), {P}),
    "read_env_secret": (
        blocked('if (Environment.GetEnvironmentVariable("SAFURAI_TEST_SECRET") == null) throw new Exception();'),
        {P}),
    "network_loopback_of_host": (blocked("new System.Net.Sockets.TcpClient(\"127.0.0.1\", PORT);"), {P}),
    "network_outside": (blocked("new System.Net.Sockets.TcpClient(\"1.1.1.1\", 53);"), {P}),
    "write_usr": (blocked('File.WriteAllText("/usr/pwned", "x");'), {P}),
    "write_root_dir": (blocked('File.WriteAllText("/pwned", "x");'), {P}),
    "write_job_dir": (blocked('File.WriteAllText("/job/pwned", "x");'), {P}),
    "write_tmp_allowed": ('        File.WriteAllText("/tmp/ok", "x");\n        return a + b;\n', {P}),
    # /dev is bwrap's tmpfs (as big as the host's RAM): read-only but for a /dev/shm as small as /tmp
    "write_dev": (blocked('File.WriteAllText("/dev/pwned", "x");'), {P}),
    "dev_shm_bounded": (blocked(
        'var m = new byte[1 << 20]; using (var f = File.OpenWrite("/dev/shm/big")) '
        '{ for (int i = 0; i < 40; i++) f.Write(m, 0, m.Length); }'), {P}),
    # Status names: killing itself is no time limit; a process-spawn loop hits the task limit.
    "kill_self": ("        System.Diagnostics.Process.GetCurrentProcess().Kill();\n        return a + b;\n", {EXC}),
    "spawn_loop": ("        while (true) { System.Diagnostics.Process.Start(\"/bin/sh\", \"-c 'sleep 100'\"); }\n", {RL}),
}
