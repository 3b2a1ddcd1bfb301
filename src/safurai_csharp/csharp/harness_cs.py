"""C# source of the harness compiled together with every program.

The harness is the real entry point (``mcs -main:SafuraiHarness.Entry``). It reads
a per-run nonce and the list of programs to run from stdin, runs each program's
``Problem.Main`` on its own thread, and only after ``Main`` returns writes a verdict
line ``@@<nonce> <idx> <STATUS> <dirty> <payload>`` to the real stdout. The
program never sees the nonce in its source, so it cannot forge a verdict; an early
``Environment.Exit``/crash leaves no verdict at all. The tests' ``Debug.Assert``
calls are rewritten (see ``modes.instrument``) into ``Checker.Assert(token, cond)``
with random per-site tokens; the verdict lists the tokens that ran, and the parent
requires every expected token, so a completion that hijacks or skips ``Main``
cannot pass.
"""

HARNESS_SOURCE = r"""
using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Text;
using System.Threading;

namespace SafuraiHarness {
  public sealed class StopSignal : Exception { }

  // Per-program record of what ran. Kept non-public: only reflection can reach it
  // (a documented residual risk for in-process code).
  static class State {
    internal static HashSet<long> Seen = new HashSet<long>();
    internal static bool Failed;
    internal static string FailDetail = "";
    internal static void Reset() { Seen = new HashSet<long>(); Failed = false; FailDetail = ""; }
  }

  public static class Checker {
    public static void Assert(long token, bool cond) {
      lock (State.Seen) { State.Seen.Add(token); }
      if (!cond) {
        if (!State.Failed) { State.Failed = true; State.FailDetail = "assertion " + token.ToString("x"); }
        // Stop at the first failed test assertion: the verdict cannot change any more.
        throw new StopSignal();
      }
    }
    public static void Assert(long token, bool cond, string message) { Assert(token, cond); }
  }

  // Structural equality used by the `corrected` test mode (see modes.py).
  public static class Eq {
    public static bool Structural(object a, object b) {
      if (a == null || b == null) return a == null && b == null;
      if (a is string || b is string) return a.Equals(b);
      if (IsNumber(a) && IsNumber(b)) {
        if (a.GetType() == b.GetType()) return a.Equals(b);
        if (IsIntegral(a) && IsIntegral(b)) return Convert.ToDecimal(a) == Convert.ToDecimal(b);
        return Convert.ToDouble(a) == Convert.ToDouble(b);
      }
      var da = a as IDictionary; var db = b as IDictionary;
      if (da != null || db != null) {
        if (da == null || db == null || da.Count != db.Count) return false;
        foreach (DictionaryEntry e in da) {
          if (!db.Contains(e.Key)) return false;
          if (!Structural(e.Value, db[e.Key])) return false;
        }
        return true;
      }
      if (IsTuple(a) && IsTuple(b)) {
        var pa = TupleItems(a); var pb = TupleItems(b);
        if (pa.Count != pb.Count) return false;
        for (int i = 0; i < pa.Count; i++) if (!Structural(pa[i], pb[i])) return false;
        return true;
      }
      var ea = a as IEnumerable; var eb = b as IEnumerable;
      if (ea != null && eb != null) {
        var ia = ea.GetEnumerator(); var ib = eb.GetEnumerator();
        while (true) {
          bool ma = ia.MoveNext(), mb = ib.MoveNext();
          if (ma != mb) return false;
          if (!ma) return true;
          if (!Structural(ia.Current, ib.Current)) return false;
        }
      }
      return a.Equals(b);
    }
    static bool IsNumber(object o) {
      return o is sbyte || o is byte || o is short || o is ushort || o is int || o is uint || o is long
          || o is ulong || o is float || o is double || o is decimal;
    }
    static bool IsIntegral(object o) { return !(o is float || o is double || o is decimal); }
    static bool IsTuple(object o) {
      var t = o.GetType();
      return t.IsGenericType && (t.FullName.StartsWith("System.Tuple`") || t.FullName.StartsWith("System.ValueTuple`"));
    }
    static List<object> TupleItems(object o) {
      var r = new List<object>(); var t = o.GetType();
      for (int i = 1; i <= 8; i++) {
        var p = t.GetProperty("Item" + i);
        if (p != null) { r.Add(p.GetValue(o, null)); continue; }
        var f = t.GetField("Item" + i);
        if (f != null) { r.Add(f.GetValue(o)); continue; }
        break;
      }
      return r;
    }
  }

  // Replaces the default trace listener: a failed Debug.Assert/Debug.Fail inside the
  // program's own code counts as an assertion failure, as upstream's stderr scan does.
  sealed class FailListener : TraceListener {
    public override void Write(string m) { }
    public override void WriteLine(string m) { }
    public override void Fail(string m) { Fail(m, null); }
    public override void Fail(string m, string d) {
      if (!State.Failed) { State.Failed = true; State.FailDetail = "Debug.Fail " + (m ?? ""); }
    }
  }

  // Console replacement: counts what the program prints, keeps nothing, flags a flood.
  sealed class CapWriter : TextWriter {
    readonly long cap; internal long Count; internal bool Over;
    public CapWriter(long cap) { this.cap = cap; }
    public override Encoding Encoding { get { return Encoding.UTF8; } }
    void Add(long n) { Count += n; if (Count > cap) Over = true; }
    public override void Write(char c) { Add(1); }
    public override void Write(string s) { if (s != null) Add(s.Length); }
    public override void Write(char[] b, int i, int n) { Add(n); }
  }

  public static class Entry {
    static TextWriter real;
    static string nonce;
    static int current = -1;

    static void Emit(int idx, string status, bool dirty, string payload) {
      var line = "@@" + nonce + " " + idx + " " + status + " " + (dirty ? "1" : "0") + " " + payload + "\n";
      lock (real) { real.Write(line); real.Flush(); }
    }

    static string B64(string s) {
      if (s == null) s = "";
      if (s.Length > 300) s = s.Substring(0, 300);
      return Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
    }

    // Trace's first use loads System.Configuration and parses machine.config (~35 ms of
    // a ~60 ms runner start). Its only effect here would be the default listeners and
    // flags, which the runner replaces anyway, so install the documented defaults
    // (indent 4, global lock, no auto-flush) and our listener directly; if this
    // runtime's internals differ, fall back to the normal path.
    static bool fastTrace;
    static void InitTrace() {
      try {
        var ti = typeof(Trace).Assembly.GetType("System.Diagnostics.TraceInternal", true);
        var sf = BindingFlags.Static | BindingFlags.NonPublic;
        var coll = (TraceListenerCollection)Activator.CreateInstance(typeof(TraceListenerCollection), true);
        lock (ti.GetField("critSec", sf).GetValue(null)) {
          ti.GetField("indentSize", sf).SetValue(null, 4);
          ti.GetField("useGlobalLock", sf).SetValue(null, true);
          ti.GetField("autoFlush", sf).SetValue(null, false);
          ti.GetField("defaultInitialized", sf).SetValue(null, false);
          ti.GetField("listeners", sf).SetValue(null, coll);
          ti.GetField("settingsInitialized", sf).SetValue(null, true);
        }
        fastTrace = true;
      } catch (Exception) { fastTrace = false; }
    }

    // Plain mcs refuses a program with two entry points (CS0017: e.g. a completion that
    // writes its own `static void Main()` next to the tests' Main). Our harness is the
    // entry point, so it counts the program's own candidates to give the same verdict.
    static int EntryPoints(Assembly asm, string problemType) {
      int dot = problemType.LastIndexOf('.');
      string ns = dot < 0 ? null : problemType.Substring(0, dot);
      int n = 0;
      Type[] types;
      try { types = asm.GetTypes(); } catch (ReflectionTypeLoadException) { return 1; }
      foreach (var ty in types) {
        string tns = ty.Namespace ?? "";
        if (tns == "SafuraiHarness" || tns.StartsWith("SafuraiHarness.")) continue;
        if (ns != null && tns != ns && !tns.StartsWith(ns + ".")) continue;
        if (ty.IsGenericTypeDefinition) continue;
        foreach (var m in ty.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)) {
          if (m.Name != "Main" || m.IsGenericMethodDefinition) continue;
          if (m.ReturnType != typeof(void) && m.ReturnType != typeof(int)) continue;
          var ps = m.GetParameters();
          if (ps.Length == 0 || (ps.Length == 1 && ps[0].ParameterType == typeof(string[]))) n++;
        }
      }
      return n;
    }

    // A batch assembly may hold only the harness's own types and the types of each program's
    // wrapper namespace. A program that closed its namespace early (an extra `}`) can declare
    // types anywhere, e.g. `System.Math` or `System.Collections.Generic.List<T>`, and those
    // would bind in its neighbours' code (CS0436 is silenced): then nobody's verdict is taken
    // from this batch. Checked before any program code runs.
    static readonly string[] HarnessTypes = { "StopSignal", "State", "Checker", "Eq", "FailListener", "CapWriter", "Entry" };
    static bool OnlyOwnTypes(Assembly asm, List<string[]> jobs) {
      var wrappers = new HashSet<string>();
      foreach (var job in jobs) {
        int dot = job[1].LastIndexOf('.');
        if (dot <= 0) return false;
        wrappers.Add(job[1].Substring(0, dot));
      }
      Type[] types;
      try { types = asm.GetTypes(); } catch (ReflectionTypeLoadException) { return false; }
      foreach (var ty in types) {
        if (ty.DeclaringType != null) continue;  // nested: judged by its outermost type
        string ns = ty.Namespace ?? "";
        if (ns == "" && ty.Name.StartsWith("<")) continue;  // compiler-generated (array data, anonymous types)
        if (ns == "SafuraiHarness" && Array.IndexOf(HarnessTypes, ty.Name) >= 0) continue;
        int d = ns.IndexOf('.');
        if (!wrappers.Contains(d < 0 ? ns : ns.Substring(0, d))) return false;
      }
      return true;
    }

    static int Threads() {
      try { return Directory.GetDirectories("/proc/self/task").Length; }
      catch (Exception) { return -1; }
    }

    public static int Main(string[] argv) {
      real = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
      var input = Console.In;
      nonce = input.ReadLine();
      int timeoutMs = int.Parse(input.ReadLine());
      long outCap = long.Parse(input.ReadLine());
      var jobs = new List<string[]>();
      string l;
      while ((l = input.ReadLine()) != null && l.Length > 0) jobs.Add(l.Split(' '));
      Console.SetIn(TextReader.Null);
      string cwd = Environment.CurrentDirectory;
      AppDomain.CurrentDomain.UnhandledException += (s, e) => {
        Emit(current, "UNHANDLED", true, B64(e.ExceptionObject == null ? "" : e.ExceptionObject.GetType().FullName));
      };
      var asm = typeof(Entry).Assembly;
      if (jobs.Count > 0 && jobs[0][2] != "-" && !OnlyOwnTypes(asm, jobs)) {
        Emit(-1, "FOREIGN", false, "-");
        Environment.Exit(0);
      }
      InitTrace();
      int baseThreads = Threads();
      foreach (var job in jobs) {
        int idx = int.Parse(job[0]);
        current = idx;
        var type = asm.GetType(job[1]);
        if (job[2] != "-") {
          // Batch builds wrap each program in its own namespace followed by a sentinel
          // class; a sentinel that ended up nested means the program's braces did not
          // balance on their own, so its batch build differs from a standalone build.
          var sentinel = asm.GetType(job[2]);
          if (sentinel == null || sentinel.DeclaringType != null) { Emit(idx, "STRUCT", false, ""); continue; }
        }
        MethodInfo main = null;
        if (type != null) {
          foreach (var m in type.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            if (m.Name == "Main" && m.GetParameters().Length <= 1) { main = m; break; }
        }
        if (main == null) { Emit(idx, "NOMAIN", false, ""); continue; }
        if (EntryPoints(asm, job[1]) > 1) { Emit(idx, "MULTIMAIN", false, ""); continue; }
        var cout = new CapWriter(outCap); var cerr = new CapWriter(outCap);
        Console.SetOut(cout); Console.SetError(cerr);
        Trace.Listeners.Clear(); Trace.Listeners.Add(new FailListener());
        try { Environment.CurrentDirectory = cwd; } catch (Exception) { }
        State.Reset();
        string exc = null;
        var t = new Thread(() => {
          Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;
          Thread.CurrentThread.CurrentUICulture = CultureInfo.InvariantCulture;
          try {
            if (main.GetParameters().Length == 1) main.Invoke(null, new object[] { new string[0] });
            else main.Invoke(null, null);
          } catch (TargetInvocationException e) {
            var inner = e.InnerException;
            if (!(inner is StopSignal)) exc = inner == null ? "?" : inner.GetType().FullName + ": " + inner.Message;
          } catch (Exception e) { exc = e.GetType().FullName + ": " + e.Message; }
        }, 8 * 1024 * 1024);
        t.IsBackground = true;
        t.Start();
        if (!t.Join(timeoutMs)) {
          Emit(idx, "TIMEOUT", true, "");
          Environment.Exit(0);
        }
        bool dirty = Threads() != baseThreads;
        bool failed; string detail; long[] seen;
        lock (State.Seen) { failed = State.Failed; detail = State.FailDetail; seen = new long[State.Seen.Count]; State.Seen.CopyTo(seen); }
        if (failed) Emit(idx, "AFAIL", dirty, B64(detail));
        else if (exc != null) Emit(idx, "EXC", dirty, B64(exc));
        else if (cout.Over || cerr.Over) Emit(idx, "OUTCAP", dirty, "");
        else {
          var sb = new StringBuilder();
          foreach (var s in seen) { if (sb.Length > 0) sb.Append(','); sb.Append(s.ToString("x")); }
          Emit(idx, "PASS", dirty, sb.Length == 0 ? "-" : sb.ToString());
        }
        // A program that left threads behind may disturb the next one: stop here and
        // let the parent rerun it alone and start a fresh runner for the rest.
        if (dirty) Environment.Exit(0);
      }
      current = -1;
      Environment.Exit(0);
      return 0;
    }
  }
}
"""
