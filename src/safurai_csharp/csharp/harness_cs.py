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
    internal static bool Over;          // checker: the solver's output went over the cap by now
    internal static int Reached = -1;   // checker: the call site where the solver's run ended
    internal static void Reset() { Seen = new HashSet<long>(); Failed = false; FailDetail = ""; Over = false; Reached = -1; }
  }

  // Split runs (split.py). In the solver, each call site of the tests is run through Site,
  // which reports the returned value; the solver holds no assertion and no expected value.
  public static class Solver {
    public static void Site<T>(int k, Func<T> call) {
      T value = call();
      Entry.EmitSite(k, Codec.Encode(value));
    }
  }

  // In the checker (no code of the completion in it), each call site returns the solver's
  // value for it, rebuilt as the declared type T from the harness's own types.
  public static class Replay {
    internal static object[] Values = new object[0];
    internal static int[] Flags = new int[0];
    internal static int End = -1;       // the site at which the solver's run ended; -1: it returned
    public static T Site<T>(int k) {
      if (k >= 0 && k < Values.Length) {
        if ((Flags[k] & 1) != 0 && !State.Failed) { State.Failed = true; State.FailDetail = "Debug.Fail in the solution"; }
        if ((Flags[k] & 2) != 0) State.Over = true;
        return (T)Codec.To(Values[k], typeof(T));
      }
      if (End >= 0) { State.Reached = k; throw new StopSignal(); }  // the solver's run ended here
      throw new ReplayMismatch("no value for call site " + k);
    }
    // payload: "<end> <n>" then per site "<flags> <value tokens>"
    internal static void Load(string payload) {
      var tok = payload.Split(' ');
      int at = 0;
      End = int.Parse(tok[at++], CultureInfo.InvariantCulture);
      int n = int.Parse(tok[at++], CultureInfo.InvariantCulture);
      Values = new object[n]; Flags = new int[n];
      for (int i = 0; i < n; i++) {
        Flags[i] = int.Parse(tok[at++], CultureInfo.InvariantCulture);
        Values[i] = Codec.Parse(tok, ref at, 0);
      }
    }
  }

  public sealed class ReplayMismatch : Exception { public ReplayMismatch(string m) : base(m) { } }

  // A value as space-separated tokens: n | b0 b1 | i<int> | f<float R> | d<double R> | m<decimal>
  // | c<hex4> | s<len>:<hex4 per UTF-16 unit> | L<n> items | D<n> key value ... | T<n> items | ?<why>
  static class Codec {
    const int MaxDepth = 64;
    internal static string Encode(object v) { var sb = new StringBuilder(); Put(sb, v, 0); return sb.ToString(); }
    static void Hex(StringBuilder sb, string s) { foreach (char c in s) sb.Append(((int)c).ToString("x4")); }
    static void Put(StringBuilder sb, object v, int depth) {
      if (sb.Length > 0) sb.Append(' ');
      if (depth > MaxDepth) { sb.Append("?deep"); return; }
      if (v == null) { sb.Append('n'); return; }
      var ci = CultureInfo.InvariantCulture;
      if (v is bool) { sb.Append((bool)v ? "b1" : "b0"); return; }
      if (v is string) { var s = (string)v; sb.Append('s').Append(s.Length).Append(':'); Hex(sb, s); return; }
      if (v is char) { sb.Append('c').Append(((int)(char)v).ToString("x4")); return; }
      if (v is float) { sb.Append('f').Append(((float)v).ToString("R", ci)); return; }
      if (v is double) { sb.Append('d').Append(((double)v).ToString("R", ci)); return; }
      if (v is decimal) { sb.Append('m').Append(((decimal)v).ToString(ci)); return; }
      if (v is sbyte || v is byte || v is short || v is ushort || v is int || v is uint || v is long || v is ulong) {
        sb.Append('i').Append(Convert.ToDecimal(v, ci).ToString(ci)); return;
      }
      if (Eq.IsTuple(v)) {
        var items = Eq.TupleItems(v);
        sb.Append('T').Append(items.Count);
        foreach (var x in items) Put(sb, x, depth + 1);
        return;
      }
      var dict = v as IDictionary;
      if (dict != null) {
        var keys = new List<object>(); var vals = new List<object>();
        foreach (DictionaryEntry e in dict) { keys.Add(e.Key); vals.Add(e.Value); }
        sb.Append('D').Append(keys.Count);
        for (int i = 0; i < keys.Count; i++) { Put(sb, keys[i], depth + 1); Put(sb, vals[i], depth + 1); }
        return;
      }
      var seq = v as IEnumerable;
      if (seq != null) {
        var items = new List<object>();
        foreach (var x in seq) { items.Add(x); if (items.Count > 1000000) break; }
        sb.Append('L').Append(items.Count);
        foreach (var x in items) Put(sb, x, depth + 1);
        return;
      }
      sb.Append("?type");
    }

    sealed class Node { public char Kind; public string Text; public object[] Items; }

    internal static object Parse(string[] tok, ref int at, int depth) {
      if (depth > MaxDepth + 1) throw new ReplayMismatch("too deep");
      string t = tok[at++];
      char k = t[0];
      var node = new Node { Kind = k, Text = t.Substring(1) };
      if (k == 'L' || k == 'T' || k == 'D') {
        int n = int.Parse(node.Text, CultureInfo.InvariantCulture);
        if (n < 0 || n > tok.Length) throw new ReplayMismatch("bad count");
        node.Items = new object[k == 'D' ? 2 * n : n];
        for (int i = 0; i < node.Items.Length; i++) node.Items[i] = Parse(tok, ref at, depth + 1);
      }
      return node;
    }

    static string Unhex(string text) {
      int colon = text.IndexOf(':');
      int n = int.Parse(text.Substring(0, colon), CultureInfo.InvariantCulture);
      string hex = text.Substring(colon + 1);
      if (hex.Length != 4 * n) throw new ReplayMismatch("bad string");
      var chars = new char[n];
      for (int i = 0; i < n; i++) chars[i] = (char)int.Parse(hex.Substring(4 * i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
      return new string(chars);
    }

    // The claimed value as a real `t` built from the harness's own types, or ReplayMismatch.
    internal static object To(object o, Type t) {
      var node = (Node)o;
      var ci = CultureInfo.InvariantCulture;
      var under = Nullable.GetUnderlyingType(t);
      if (node.Kind == 'n') {
        if (!t.IsValueType || under != null) return null;
        throw new ReplayMismatch("null for " + t.Name);
      }
      if (under != null) return To(o, under);
      try {
        if (t == typeof(bool) && node.Kind == 'b') return node.Text == "1";
        if (t == typeof(string) && node.Kind == 's') return Unhex(node.Text);
        if (t == typeof(char) && node.Kind == 'c') return (char)int.Parse(node.Text, NumberStyles.HexNumber, ci);
        if (t == typeof(float) && node.Kind == 'f') return float.Parse(node.Text, NumberStyles.Float, ci);
        if (t == typeof(double) && node.Kind == 'd') return double.Parse(node.Text, NumberStyles.Float, ci);
        if (t == typeof(decimal) && node.Kind == 'm') return decimal.Parse(node.Text, NumberStyles.Number, ci);
        if (node.Kind == 'i' && (t == typeof(long) || t == typeof(int) || t == typeof(short) || t == typeof(byte)
            || t == typeof(sbyte) || t == typeof(ulong) || t == typeof(uint) || t == typeof(ushort)))
          return Convert.ChangeType(decimal.Parse(node.Text, NumberStyles.Integer, ci), t, ci);
      } catch (FormatException) { throw new ReplayMismatch("bad scalar"); }
      catch (OverflowException) { throw new ReplayMismatch("out of range"); }
      if (t.IsArray && node.Kind == 'L') {
        var et = t.GetElementType();
        var arr = Array.CreateInstance(et, node.Items.Length);
        for (int i = 0; i < node.Items.Length; i++) arr.SetValue(To(node.Items[i], et), i);
        return arr;
      }
      if (t.IsGenericType) {
        var def = t.GetGenericTypeDefinition();
        var args = t.GetGenericArguments();
        if (def == typeof(List<>) && node.Kind == 'L') {
          var list = (IList)Activator.CreateInstance(t);
          foreach (var x in node.Items) list.Add(To(x, args[0]));
          return list;
        }
        if (def == typeof(Dictionary<,>) && node.Kind == 'D') {
          var d = (IDictionary)Activator.CreateInstance(t);
          for (int i = 0; i < node.Items.Length; i += 2) {
            var key = To(node.Items[i], args[0]);
            if (key == null || d.Contains(key)) throw new ReplayMismatch("bad key");
            d.Add(key, To(node.Items[i + 1], args[1]));
          }
          return d;
        }
        string full = def.FullName ?? "";
        if ((full.StartsWith("System.Tuple`") || full.StartsWith("System.ValueTuple`")) && def.Assembly == typeof(object).Assembly
            && node.Kind == 'T' && node.Items.Length == args.Length) {
          var items = new object[args.Length];
          for (int i = 0; i < args.Length; i++) items[i] = To(node.Items[i], args[i]);
          return Activator.CreateInstance(t, items);
        }
      }
      throw new ReplayMismatch("a " + node.Kind + " value for " + t.Name);
    }
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
    internal static bool IsTuple(object o) {
      var t = o.GetType();
      string full = t.FullName ?? "";
      return t.IsGenericType && (full.StartsWith("System.Tuple`") || full.StartsWith("System.ValueTuple`"));
    }
    internal static List<object> TupleItems(object o) {
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
    static CapWriter curOut, curErr;

    // Solver: the value call site k returned, with what the run has done by then
    // (flag 1: a Debug.Fail/failed Debug.Assert of the solution; flag 2: output over the cap).
    internal static void EmitSite(int k, string encoded) {
      int flags = (State.Failed ? 1 : 0) | ((curOut != null && (curOut.Over || curErr.Over)) ? 2 : 0);
      Emit(current, "V", false, k + "," + flags + "," + Convert.ToBase64String(Encoding.ASCII.GetBytes(encoded)));
    }

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
    static readonly string[] HarnessTypes = { "StopSignal", "State", "Solver", "Replay", "ReplayMismatch", "Codec", "Checker", "Eq", "FailListener", "CapWriter", "Entry", "Gate" };
    static bool OnlyOwnTypes(Type[] types, List<string[]> jobs) {
      var wrappers = new HashSet<string>();
      foreach (var job in jobs) {
        int dot = job[1].LastIndexOf('.');
        if (dot <= 0) return false;
        wrappers.Add(job[1].Substring(0, dot));
      }
      if (types == null) return false;  // the assembly's types do not load
      foreach (var ty in types) {
        if (ty.DeclaringType != null || Gate.CompilerGenerated(ty)) continue;  // nested: judged by its outermost type
        if (ty.Namespace == "SafuraiHarness" && Array.IndexOf(HarnessTypes, ty.Name) >= 0) continue;
        if (!wrappers.Contains(Gate.TopNamespace(ty))) return false;
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
      bool batch = jobs.Count > 0 && jobs[0][2] != "-";
      Type[] types = null;
      if (batch) {
        try { types = asm.GetTypes(); } catch (ReflectionTypeLoadException) { types = null; }
      }
      if (batch && !OnlyOwnTypes(types, jobs)) {
        Emit(-1, "FOREIGN", false, "-");
        Environment.Exit(0);
      }
      // Batch gate (gate_cs.py): a program that could reach process-wide state runs alone. Read
      // from the IL before any program code runs; checker jobs (a replay payload) hold none.
      var gated = new Dictionary<int, string>();
      if (batch) {
        var byNs = new Dictionary<string, List<Type>>();
        foreach (var ty in types) {
          string top = Gate.TopNamespace(ty);
          List<Type> list;
          if (!byNs.TryGetValue(top, out list)) byNs[top] = list = new List<Type>();
          list.Add(ty);
        }
        foreach (var job in jobs) {
          if (job.Length > 3 && job[3] != "-") continue;
          string ns = job[1].Substring(0, job[1].LastIndexOf('.'));
          List<Type> own;
          string why = byNs.TryGetValue(ns, out own) ? Gate.Check(own, ns) : null;
          if (why != null) gated[int.Parse(job[0])] = why;
        }
      }
      InitTrace();
      int baseThreads = Threads();
      foreach (var job in jobs) {
        int idx = int.Parse(job[0]);
        current = idx;
        if (gated.ContainsKey(idx)) { Emit(idx, "GATED", false, B64(gated[idx])); continue; }
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
        curOut = cout; curErr = cerr;
        Console.SetOut(cout); Console.SetError(cerr);
        Trace.Listeners.Clear(); Trace.Listeners.Add(new FailListener());
        try { Environment.CurrentDirectory = cwd; } catch (Exception) { }
        State.Reset();
        Replay.Values = new object[0]; Replay.Flags = new int[0]; Replay.End = -1;
        if (job.Length > 3 && job[3] != "-") {
          // checker job: the solver's values (their text comes from the solver: never trusted)
          try { Replay.Load(Encoding.ASCII.GetString(Convert.FromBase64String(job[3]))); }
          catch (Exception) { Emit(idx, "BADVALUE", false, "-"); continue; }
        }
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
        if (State.Reached >= 0) Emit(idx, "REACHED", dirty, State.Reached + "," + (failed ? 1 : 0));
        else if (failed) Emit(idx, "AFAIL", dirty, B64(detail));
        else if (exc != null) Emit(idx, "EXC", dirty, B64(exc));
        else if (cout.Over || cerr.Over || State.Over) Emit(idx, "OUTCAP", dirty, "");
        else {
          var sb = new StringBuilder();
          foreach (var s in seen) { if (sb.Length > 0) sb.Append(','); sb.Append(s.ToString("x")); }
          Emit(idx, "PASS", dirty, sb.Length == 0 ? "-" : sb.ToString());
        }
        // A program that left threads behind may disturb the next one: stop here and
        // let the parent rerun it alone and start a fresh runner for the rest. A checker job
        // (a replay payload) runs only the tests and the harness: a thread the runtime itself
        // started (seen under load) is no reason to stop.
        bool checker = job.Length > 3 && job[3] != "-";
        if (dirty && !checker) Environment.Exit(0);
      }
      current = -1;
      Environment.Exit(0);
      return 0;
    }
  }
}
"""
