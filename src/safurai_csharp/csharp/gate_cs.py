"""C# source of the batch gate, compiled with the harness (harness_cs.py).

A batch runs many programs, one after the other, in one process. A program that can reach
process-wide state (reflection, raw file descriptors, finalizers, threads, the harness's
internals, ...) could change what its neighbours compute or report, so batching would no
longer be observationally identical to one process per program. Before any program code
runs, the runner reads the IL of every method of each program and lets a program into the
batch only if everything it calls, creates or touches is its own or on the allowlist below:
pure library code (collections, LINQ, strings, math, ...) whose only shared state is
immutable or per call. Everything else is *scheduling*, not a verdict: the program runs
alone, in its own process, where it can harm nobody but itself.
"""

GATE_SOURCE = r"""
using System;
using System.Collections.Generic;
using System.Reflection;
using System.Reflection.Emit;

namespace SafuraiHarness {
  static class Gate {
    // Every type of these namespaces (generic definitions by name, e.g. List`1).
    static readonly HashSet<string> Namespaces = new HashSet<string> {
      "System.Collections", "System.Collections.Generic", "System.Collections.ObjectModel", "System.Linq",
      "System.Text", "System.Text.RegularExpressions", "System.Numerics",
    };
    static readonly HashSet<string> Types = new HashSet<string> {
      "System.Object", "System.ValueType", "System.Enum", "System.String", "System.Math", "System.Convert",
      "System.Char", "System.Boolean", "System.Byte", "System.SByte", "System.Int16", "System.UInt16",
      "System.Int32", "System.UInt32", "System.Int64", "System.UInt64", "System.Single", "System.Double",
      "System.Decimal", "System.Array", "System.Nullable", "System.Nullable`1", "System.Tuple",
      "System.Random", "System.StringComparer", "System.BitConverter", "System.Buffer", "System.TimeSpan",
      "System.DateTime", "System.Lazy`1", "System.IComparable", "System.IComparable`1", "System.IEquatable`1",
      "System.IDisposable", "System.IFormattable", "System.ICloneable", "System.IFormatProvider",
      "System.Predicate`1", "System.Comparison`1", "System.Converter`2", "System.Action", "System.MulticastDelegate",
      "System.Exception", "System.SystemException", "System.ArgumentException", "System.ArgumentNullException",
      "System.ArgumentOutOfRangeException", "System.InvalidOperationException", "System.NotImplementedException",
      "System.NotSupportedException", "System.IndexOutOfRangeException", "System.FormatException",
      "System.OverflowException", "System.DivideByZeroException", "System.ArithmeticException",
      "System.NullReferenceException", "System.InvalidCastException", "System.ApplicationException",
      "System.Diagnostics.Stopwatch", "System.Globalization.CharUnicodeInfo",
    };
    // Single members of types that are otherwise out.
    static readonly HashSet<string> Members = new HashSet<string> {
      "System.Console::Write", "System.Console::WriteLine", "System.Console::ReadLine", "System.Console::Read",
      "System.Environment::get_NewLine", "System.Environment::get_CurrentManagedThreadId",
      "System.Diagnostics.Debug::Assert", "System.Diagnostics.Debug::Fail", "System.Diagnostics.Debug::Write",
      "System.Diagnostics.Debug::WriteLine", "System.Diagnostics.Debug::WriteIf", "System.Diagnostics.Debug::WriteLineIf",
      "System.Diagnostics.Debug::Print", "System.Globalization.CultureInfo::get_InvariantCulture",
      "System.Runtime.CompilerServices.RuntimeHelpers::InitializeArray",
      "System.Threading.Monitor::Enter", "System.Threading.Monitor::Exit",
      "System.Threading.Interlocked::CompareExchange", "System.Threading.Interlocked::Exchange",
      "System.Threading.Thread::get_CurrentThread", "System.Threading.Thread::get_ManagedThreadId",
      "System.Delegate::Combine", "System.Delegate::Remove",
      // what the instrumented tests and a split solver call
      "SafuraiHarness.Checker::Assert", "SafuraiHarness.Eq::Structural", "SafuraiHarness.Solver::Site",
    };
    // Members of allowed types that reach shared state.
    static readonly HashSet<string> Denied = new HashSet<string> {
      "System.String::Intern", "System.String::IsInterned", "System.Object::GetType",
      "System.Text.RegularExpressions.Regex::set_CacheSize", "System.Text.Encoding::RegisterProvider",
      "System.AppDomain::get_CurrentDomain",
    };

    static Dictionary<short, OpCode> codes;

    static void Init() {
      codes = new Dictionary<short, OpCode>();
      foreach (var f in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)) {
        var op = (OpCode)f.GetValue(null);
        codes[op.Value] = op;
      }
    }

    internal static Type Outermost(Type t) {
      while (t.DeclaringType != null) t = t.DeclaringType;
      return t;
    }

    // The first component of the namespace of t's outermost type: a program's wrapper namespace.
    internal static string TopNamespace(Type t) {
      string ns = Outermost(t).Namespace ?? "";
      int d = ns.IndexOf('.');
      return d < 0 ? ns : ns.Substring(0, d);
    }

    // Array initialiser data and anonymous types: mcs puts them in the global namespace under
    // names no C# source can declare.
    internal static bool CompilerGenerated(Type outer) {
      return (outer.Namespace ?? "") == "" && outer.Name.StartsWith("<");
    }

    static bool AllowedType(Type t, string ns) {
      while (t.HasElementType) t = t.GetElementType();
      if (t.IsGenericParameter) return true;
      var outer = Outermost(t);
      if (Own(outer, ns)) return true;
      if (t.IsGenericType && !t.IsGenericTypeDefinition) {
        foreach (var a in t.GetGenericArguments()) if (!AllowedType(a, ns)) return false;
        t = t.GetGenericTypeDefinition();
      }
      string full = t.FullName ?? "";
      if (full.StartsWith("System.Func`") || full.StartsWith("System.Action`") || full.StartsWith("System.Tuple`")
          || full.StartsWith("System.ValueTuple") || full.StartsWith("System.Collections.Generic.")) return true;
      return Types.Contains(full) || (outer.Namespace != null && Namespaces.Contains(outer.Namespace));
    }

    static bool Own(Type outer, string ns) {
      string tns = outer.Namespace ?? "";
      return CompilerGenerated(outer) || tns == ns || tns.StartsWith(ns + ".");
    }

    static bool AllowedMember(MemberInfo m, string ns) {
      var t = m.DeclaringType;
      if (t == null) return false;
      if (Own(Outermost(t), ns)) return true;
      if (t.IsArray) return true;  // multi-dimensional array accessors
      var def = t.IsGenericType ? t.GetGenericTypeDefinition() : t;
      string key = (def.FullName ?? "") + "::" + m.Name;
      if (Denied.Contains(key)) return false;
      if (Members.Contains(key)) return true;
      return AllowedType(t, ns);
    }

    // Why the program in namespace `ns` (its types: `types`) must run alone, or null if it may
    // join a batch.
    internal static string Check(List<Type> types, string ns) {
      if (codes == null) Init();
      var flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
      foreach (var ty in types) {
        if (ty.BaseType != null && !AllowedType(ty.BaseType, ns)) return "derives from " + ty.BaseType.FullName;
        foreach (var itf in ty.GetInterfaces()) if (!AllowedType(itf, ns)) return "implements " + itf.FullName;
        foreach (var f in ty.GetFields(flags))
          if ((f.Attributes & FieldAttributes.HasFieldRVA) != 0 && !ty.Name.StartsWith("<")) return "field with RVA data";
        var methods = new List<MethodBase>();
        methods.AddRange(ty.GetMethods(flags));
        methods.AddRange(ty.GetConstructors(flags));
        foreach (var mb in methods) {
          if ((mb.Attributes & MethodAttributes.PinvokeImpl) != 0) return "P/Invoke " + mb.Name;
          if ((mb.GetMethodImplementationFlags() & (MethodImplAttributes.InternalCall | MethodImplAttributes.Native | MethodImplAttributes.Unmanaged)) != 0)
            return "native method " + mb.Name;
          if (mb.Name == "Finalize" && mb.GetParameters().Length == 0) return "finalizer";
          string why = Scan(mb, ns);
          if (why != null) return why;
        }
      }
      return null;
    }

    static string Scan(MethodBase mb, string ns) {
      var body = mb.GetMethodBody();
      if (body == null) return null;
      var il = body.GetILAsByteArray();
      var module = mb.Module;
      Type[] targs = mb.DeclaringType != null && mb.DeclaringType.IsGenericType ? mb.DeclaringType.GetGenericArguments() : null;
      Type[] margs = mb.IsGenericMethod ? mb.GetGenericArguments() : null;
      int i = 0;
      while (i < il.Length) {
        short value = il[i] == 0xFE && i + 1 < il.Length ? (short)(0xFE00 | il[i + 1]) : (short)il[i];
        OpCode op;
        if (!codes.TryGetValue(value, out op)) return "unknown opcode";
        i += op.Size;
        if (op == OpCodes.Calli || op == OpCodes.Jmp) return "calli/jmp";
        switch (op.OperandType) {
          case OperandType.InlineNone: break;
          case OperandType.ShortInlineBrTarget: case OperandType.ShortInlineI: case OperandType.ShortInlineVar: i += 1; break;
          case OperandType.InlineVar: i += 2; break;
          case OperandType.InlineI8: case OperandType.InlineR: i += 8; break;
          case OperandType.InlineSwitch:
            if (i + 4 > il.Length) return "bad IL";
            i += 4 + 4 * BitConverter.ToInt32(il, i); break;
          case OperandType.InlineMethod: case OperandType.InlineField: case OperandType.InlineTok: case OperandType.InlineType: {
            if (i + 4 > il.Length) return "bad IL";
            int token = BitConverter.ToInt32(il, i);
            i += 4;
            MemberInfo m;
            try { m = module.ResolveMember(token, targs, margs); } catch (Exception) { return "unresolvable token"; }
            if (m is Type) {
              if (op == OpCodes.Ldtoken) continue;  // a handle is inert; what uses it is checked
              if (!AllowedType((Type)m, ns)) return "uses type " + ((Type)m).FullName;
              continue;
            }
            if (m is FieldInfo && op == OpCodes.Ldtoken) continue;  // array initialiser data
            var f = m as FieldInfo;
            if (f != null && f.DeclaringType != null) {
              bool own = Own(Outermost(f.DeclaringType), ns);
              bool write = op == OpCodes.Stsfld || op == OpCodes.Stfld || op == OpCodes.Ldsflda || op == OpCodes.Ldflda;
              if (!own && (write || f.IsStatic && !f.IsInitOnly && !f.IsLiteral)) return "touches field " + f.Name;
              if (!own && !AllowedType(f.DeclaringType, ns)) return "reads field " + f.Name;
              continue;
            }
            if (!AllowedMember(m, ns)) return "calls " + (m.DeclaringType == null ? "?" : m.DeclaringType.FullName) + "::" + m.Name;
            break;
          }
          default: i += 4; break;  // InlineBrTarget, InlineI, ShortInlineR, InlineString, InlineSig
        }
      }
      return null;
    }
  }
}
"""
