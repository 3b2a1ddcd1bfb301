"""A warm, sandboxed C# compiler: one mono process per worker, mcs called in-process.

A fresh ``mono mcs.exe`` spends ~0.15-0.4 s starting up and JIT-compiling the
compiler; the same compile in a warm process takes ~25 ms. The server loads
``/usr/lib/mono/4.5/mcs.exe`` with ``Assembly.LoadFrom`` and calls mcs's own
``Mono.CSharp.CompilerCallableEntryPoint.InvokeCompiler(string[] args, TextWriter
error)`` (the API behind mcs's ``Main``, which resets mcs's static state after every
compile) once per request.

It runs inside the same bubblewrap sandbox and rlimits as every compile, under its
own uid, and only compiles: model code is never executed by mcs. Its input is
hostile anyway (a source file can hang or crash the compiler), so the client
(``CompileServer``) puts a wall clock on every request and reads only
``@@<nonce> OK|FAIL <base64 diagnostics>`` lines; on a timeout, a crash, a garbled
reply or a failure without a regular ``error CSnnnn`` diagnostic (e.g. an internal
compiler error or OutOfMemory, which a fresh compiler might not hit) the caller
kills it and compiles that request with a fresh ``mono mcs.exe`` instead, so
verdicts never depend on the server's state.

Protocol (stdin): the nonce line, then per request a line with the argument count
and one argument per line. Arguments are our own paths and flags (no newlines).
"""

from __future__ import annotations

import atexit
import base64
import functools
import os
import re
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .sandbox import kill_group

MCS_EXE = "/usr/lib/mono/4.5/mcs.exe"
SERVER_IN_SANDBOX = "/opt/safurai/compile_server.exe"
MAX_REPLY = 4 << 20
_REGULAR_ERROR = re.compile(r": error CS\d{4}: ")
# mcs reports its own crashes and resource exhaustion as "Internal compiler error"
_SUSPECT = re.compile(r"internal compiler error|outofmemory|out of memory|unhandled exception|stackoverflow", re.I)

SERVER_SOURCE = r"""
using System;
using System.IO;
using System.Reflection;
using System.Text;

namespace SafuraiCompileServer {
  public static class Server {
    public static int Main(string[] argv) {
      var asm = Assembly.LoadFrom(argv[0]);
      var t = asm.GetType("Mono.CSharp.CompilerCallableEntryPoint", true);
      var invoke = t.GetMethod("InvokeCompiler", BindingFlags.Public | BindingFlags.Static, null,
          new Type[] { typeof(string[]), typeof(TextWriter) }, null);
      var real = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
      var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
      string nonce = input.ReadLine();
      Console.SetIn(TextReader.Null);
      real.Write("@@" + nonce + " READY -\n"); real.Flush();
      string line;
      while ((line = input.ReadLine()) != null) {
        int n = int.Parse(line);
        var args = new string[n];
        for (int i = 0; i < n; i++) args[i] = input.ReadLine();
        // Whatever mcs prints goes into the diagnostics, never onto the reply channel.
        var diag = new StringWriter();
        Console.SetOut(diag); Console.SetError(diag);
        bool ok;
        try { ok = (bool)invoke.Invoke(null, new object[] { args, diag }); }
        catch (TargetInvocationException e) {
          ok = false;
          diag.WriteLine("internal compiler error: " + (e.InnerException == null ? "?" : e.InnerException.GetType().FullName));
        }
        var text = diag.ToString();
        real.Write("@@" + nonce + " " + (ok ? "OK" : "FAIL") + " "
                   + (text.Length == 0 ? "-" : Convert.ToBase64String(Encoding.UTF8.GetBytes(text))) + "\n");
        real.Flush();
      }
      return 0;
    }
  }
}
"""


@functools.lru_cache(maxsize=1)
def server_exe() -> Path:
    """Compile the (trusted) server once per process into a private directory."""
    d = Path(tempfile.mkdtemp(prefix="safurai-cs-server-"))
    atexit.register(shutil.rmtree, d, True)
    os.chmod(d, 0o711)  # sandbox uids must reach the exe to bind it
    src, exe = d / "server.cs", d / "compile_server.exe"
    src.write_text(SERVER_SOURCE)
    r = subprocess.run(["mcs", "-optimize+", f"-out:{exe}", str(src)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"compile server does not build: {r.stdout[-500:]}{r.stderr[-500:]}")
    os.chmod(exe, 0o644)
    return exe


@dataclass
class Reply:
    ok: bool
    text: str  # mcs diagnostics, as a fresh `mono mcs.exe` prints them


class CompileServer:
    """Client side of one running server. Not thread-safe: one per worker."""

    def __init__(self, proc: subprocess.Popen, nonce: str, max_requests: int):
        self.proc = proc
        self.nonce = nonce
        self.requests_left = max_requests
        self._buf = bytearray()
        self._sel = selectors.DefaultSelector()
        self._sel.register(proc.stdout, selectors.EVENT_READ)

    @classmethod
    def start(cls, proc: subprocess.Popen, ready_timeout_s: float, max_requests: int) -> "CompileServer | None":
        nonce = secrets.token_hex(16)
        srv = cls(proc, nonce, max_requests)
        if not srv._send(nonce + "\n") or srv._read_line(ready_timeout_s) != f"@@{nonce} READY -":
            srv.close()
            return None
        return srv

    def compile(self, args: list[str], timeout_s: float) -> Reply | None:
        """Compile; None means "no trustworthy answer": the caller must close this server."""
        if any("\n" in a for a in args):
            raise ValueError("compile arguments must not contain newlines")
        self.requests_left -= 1
        if not self._send(f"{len(args)}\n" + "".join(a + "\n" for a in args)):
            return None
        line = self._read_line(timeout_s)
        if line is None:
            return None
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != f"@@{self.nonce}" or parts[1] not in ("OK", "FAIL"):
            return None
        try:
            text = "" if parts[2] == "-" else base64.b64decode(parts[2], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        ok = parts[1] == "OK"
        if not ok and (not _REGULAR_ERROR.search(text) or _SUSPECT.search(text)):
            return None  # a failure a fresh compiler might not have: do not trust it
        return Reply(ok, text)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.requests_left > 0

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        kill_group(self.proc)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._sel.close()
        self.proc.stdout.close()

    # -- pipes --------------------------------------------------------------------
    def _send(self, text: str) -> bool:
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def _read_line(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buf) > MAX_REPLY:
                return None
            if not self._sel.select(timeout=remaining):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                return None  # the server died
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return line.decode("ascii", "replace")
