"""Compile and run MultiPL-E C# programs in the sandbox, alone or in batches.

Batch mode (same verdicts as alone, by construction):
* compile: each program goes into its own file, wrapped in a namespace with a random
  name plus a sentinel class, and a whole chunk is compiled by one ``mcs`` run. Files
  the compiler blames are taken out and compiled alone (the only source of a
  ``compile_error`` verdict); the rest is recompiled until the batch builds. The
  runner checks each sentinel is a top-level type, which catches a program whose
  unbalanced braces were "repaired" by the wrapper (it is then handled alone).
* run: one mono process runs the chunk's programs one after the other (fresh console
  capture, trace listener and culture for each). Only a clean ``pass`` (every
  assertion token seen) or ``assertion_failed`` without stray threads is taken from
  a batch; anything else, and the program in flight when the runner died, timed out
  or flooded its output, is rerun alone.
"""

from __future__ import annotations

import base64
import os
import logging
import queue
import re
import secrets
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .harness_cs import HARNESS_SOURCE
from .modes import apply_mode, instrument
from .sandbox import Outcome, Sandbox
from .toolchain import check_toolchain
from .types import Limits, Program, Result, Status

log = logging.getLogger(__name__)

MCS = ["mono", "/usr/lib/mono/4.5/mcs.exe", "-d:DEBUG", "-r:System.Numerics.dll"]
MCS_FLAGS = ["-main:SafuraiHarness.Entry", "-nowarn:0162,0168,0219,0414,0649,0169,0436"]
RESOURCE_EXCEPTIONS = {
    "System.OutOfMemoryException",
    "System.InsufficientMemoryException",
    "System.Threading.ThreadStartException",
    "System.ExecutionEngineException",  # mono's answer when it cannot start a thread
}
_ERR_LINE = re.compile(rb"/job/p(\d+)\.cs\(\d+,\d+\): error")
_STARTUP_SLACK_S = 5.0
_BATCH_CLEAN = (Status.PASS, Status.ASSERTION_FAILED, Status.EXCEPTION, Status.NO_VERDICT)
_DETAIL_MAX = 300


@dataclass
class _Unit:
    index: int
    source: str  # prompt + completion + "\n" + instrumented tests
    tokens: frozenset[int]


def _prepare(index: int, program: Program) -> _Unit:
    tests, tokens = instrument(apply_mode(program.tests, program.mode))
    return _Unit(index, program.prompt + program.completion + "\n" + tests, frozenset(tokens))


def _b64(s: str) -> str:
    try:
        return base64.b64decode(s).decode("utf-8", "replace")
    except ValueError:
        return ""


def _verdicts(stdout: bytes, nonce: str) -> dict[int, list[tuple[str, bool, str]]]:
    """idx -> verdict lines (status, dirty, payload); forged lines lack the nonce."""
    pat = re.compile(rb"@@" + nonce.encode() + rb" (-?\d+) ([A-Z]+) ([01]) (\S*)\n")
    found: dict[int, list[tuple[str, bool, str]]] = {}
    for m in pat.finditer(stdout):
        found.setdefault(int(m.group(1)), []).append(
            (m.group(2).decode(), m.group(3) == b"1", m.group(4).decode("ascii", "replace"))
        )
    return found


def _from_verdict(lines: list[tuple[str, bool, str]], tokens: frozenset[int]) -> Result:
    for status, _dirty, payload in lines:
        if status == "UNHANDLED":
            kind = _b64(payload)
            st = Status.RESOURCE_LIMIT if kind in RESOURCE_EXCEPTIONS else Status.EXCEPTION
            return Result(st, f"unhandled {kind}")
    status, _dirty, payload = lines[0]
    if status == "PASS":
        seen = set() if payload == "-" else {int(t, 16) for t in payload.split(",") if t}
        missing = tokens - seen
        if missing or seen - tokens:
            return Result(Status.NO_VERDICT, f"{len(missing)} of {len(tokens)} assertions did not run")
        return Result(Status.PASS)
    if status == "AFAIL":
        return Result(Status.ASSERTION_FAILED, _b64(payload)[:_DETAIL_MAX])
    if status == "EXC":
        text = _b64(payload)
        kind = text.split(":", 1)[0]
        st = Status.RESOURCE_LIMIT if kind in RESOURCE_EXCEPTIONS else Status.EXCEPTION
        return Result(st, text[:_DETAIL_MAX])
    if status == "TIMEOUT":
        return Result(Status.TIMEOUT, "wall time limit")
    if status == "OUTCAP":
        return Result(Status.RESOURCE_LIMIT, "output limit")
    return Result(Status.NO_VERDICT, status.lower())


def _classify_alone(out: Outcome, nonce: str, tokens: frozenset[int]) -> Result:
    if out.output_capped:
        return Result(Status.RESOURCE_LIMIT, "output limit")
    lines = _verdicts(out.stdout, nonce).get(0)
    if lines:
        return _from_verdict(lines, tokens)
    err = out.stderr_tail.decode("utf-8", "replace")
    tail = err[-_DETAIL_MAX:]
    if out.timed_out or out.signal == 24:  # SIGXCPU: CPU-time limit
        return Result(Status.TIMEOUT, "time limit")
    if out.signal == 9:  # not ours (we'd have set timed_out): RLIMIT_CPU hard limit
        return Result(Status.TIMEOUT, "cpu limit")
    low = err.lower()
    if "out of memory" in low or "outofmemory" in low or "cannot allocate" in low:
        return Result(Status.RESOURCE_LIMIT, tail)
    if "unhandled exception" in low or out.signal in (6, 7, 11):
        return Result(Status.EXCEPTION, tail)
    return Result(Status.NO_VERDICT, f"exit {out.returncode} without verdict; {tail}")


class SandboxError(RuntimeError):
    pass


class Executor:
    """Run programs in the sandbox; results come back in input order."""

    def __init__(self, limits: Limits | None = None, workers: int = 2, batch: bool = True, batch_size: int = 48):
        check_toolchain()
        self.limits = limits or Limits()
        self.workers = max(1, workers)
        self.batch = batch
        self.batch_size = max(1, batch_size)
        self._ids: queue.Queue[int] = queue.Queue()
        for w in range(self.workers):
            self._ids.put(w)

    # -- public -------------------------------------------------------------------
    def run(self, programs: list[Program]) -> list[Result]:
        units = [_prepare(i, p) for i, p in enumerate(programs)]
        results: list[Result | None] = [None] * len(units)
        if self.batch:
            tasks = [units[i : i + self.batch_size] for i in range(0, len(units), self.batch_size)]
            fn = self._run_chunk
        else:
            tasks = [[u] for u in units]
            fn = self._run_single
        with tempfile.TemporaryDirectory(prefix="safurai-sbx-") as root:
            os.chmod(root, 0o711)  # the sandbox uid must reach its job directory
            with ThreadPoolExecutor(self.workers) as pool:
                for chunk_results in pool.map(lambda t: self._with_worker(fn, t, Path(root)), tasks):
                    for idx, res in chunk_results.items():
                        results[idx] = res
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    # -- plumbing -----------------------------------------------------------------
    def _with_worker(self, fn, units: list[_Unit], root: Path) -> dict[int, Result]:
        worker = self._ids.get()
        try:
            job = Path(tempfile.mkdtemp(dir=root))
            try:
                sb = Sandbox(worker)
                sb.prepare_dir(job)
                return fn(sb, job, units)
            finally:
                shutil.rmtree(job, ignore_errors=True)
        finally:
            self._ids.put(worker)

    def _sandboxed(self, sb: Sandbox, job: Path, cmd: list[str], *, writable: bool, cpu_s: int, **run_kw) -> Outcome:
        lim = self.limits
        argv = sb.argv(
            cmd,
            job_dir=job,
            job_writable=writable,
            cpu_s=cpu_s,
            memory_mb=lim.memory_mb,
            max_tasks=lim.max_tasks,
            file_size_mb=lim.file_size_mb,
            max_open_files=lim.max_open_files,
        )
        out = sb.run(argv, **run_kw)
        head = out.stderr_tail.lstrip()[:16]
        if out.returncode and head.startswith((b"bwrap:", b"prlimit:", b"setpriv:")):
            # The sandbox itself failed: never report that as a verdict on the program.
            raise SandboxError(out.stderr_tail.decode("utf-8", "replace")[:_DETAIL_MAX])
        return out

    def _compile(self, sb: Sandbox, job: Path, files: list[str], exe: str) -> Outcome:
        (job / "harness.cs").write_text(HARNESS_SOURCE)
        cmd = MCS + MCS_FLAGS + [f"-out:/job/{exe}", "/job/harness.cs"] + [f"/job/{f}" for f in files]
        lim = self.limits
        return self._sandboxed(
            sb, job, cmd, writable=True, cpu_s=int(lim.compile_timeout_s) + 1,
            wall_s=lim.compile_timeout_s, out_cap=4 << 20,
        )

    def _run_exe(self, sb: Sandbox, job: Path, exe: str, jobs: list[str], nonce: str, batch: bool) -> Outcome:
        lim = self.limits
        stdin = f"{nonce}\n{int(lim.timeout_s * 1000)}\n{lim.max_output_bytes}\n" + "".join(j + "\n" for j in jobs)
        n = len(jobs)
        # The runner's own stdout carries only verdict lines; a program writing to the
        # raw fd counts against the same cap, scaled by the number of programs.
        return self._sandboxed(
            sb, job, ["mono", f"/job/{exe}"], writable=False,
            cpu_s=int(lim.cpu_s * n) + 1,
            stdin=stdin.encode(),
            wall_s=n * (lim.timeout_s + 1) + _STARTUP_SLACK_S,
            idle_s=lim.timeout_s + _STARTUP_SLACK_S if batch else None,
            progress_marker=f"@@{nonce} ".encode(),
            out_cap=lim.max_output_bytes * n + 4096 * n,
        )

    # -- one program, one compile, one run ------------------------------------------
    def _run_single(self, sb: Sandbox, job: Path, units: list[_Unit]) -> dict[int, Result]:
        return {u.index: self._alone(sb, job, u) for u in units}

    def _alone(self, sb: Sandbox, job: Path, u: _Unit, compiled: bool = False) -> Result:
        src = f"a{u.index}.cs"
        exe = f"a{u.index}.exe"
        if not compiled:
            (job / src).write_text(u.source)
            out = self._compile(sb, job, [src], exe)
            if out.returncode != 0 or not (job / exe).exists():
                text = (out.stdout + out.stderr_tail).decode("utf-8", "replace")
                errs = [l for l in text.splitlines() if "error CS" in l]
                if out.timed_out:
                    return Result(Status.COMPILE_ERROR, "compiler time limit")
                return Result(Status.COMPILE_ERROR, "\n".join(errs[:3])[:_DETAIL_MAX] or text[-_DETAIL_MAX:])
        nonce = secrets.token_hex(16)
        out = self._run_exe(sb, job, exe, ["0 Problem -"], nonce, batch=False)
        return _classify_alone(out, nonce, u.tokens)

    # -- batches ------------------------------------------------------------------------
    def _run_chunk(self, sb: Sandbox, job: Path, units: list[_Unit]) -> dict[int, Result]:
        results: dict[int, Result] = {}
        by_idx = {u.index: u for u in units}
        salt = secrets.token_hex(6)
        ns = {u.index: f"N{salt}_{u.index}" for u in units}
        for u in units:
            wrapped = f"namespace {ns[u.index]} {{\n{u.source}\nclass SafuraiSentinel {{}}\n}}\n"
            (job / f"p{u.index}.cs").write_text(wrapped)
        pending = [u.index for u in units]
        attempt = 0
        while pending:
            attempt += 1
            out = self._compile(sb, job, [f"p{i}.cs" for i in pending], f"b{attempt}.exe")
            if out.returncode == 0 and (job / f"b{attempt}.exe").exists():
                break
            text = out.stdout + out.stderr_tail
            blamed = {int(m.group(1)) for m in _ERR_LINE.finditer(text)} & set(pending)
            if not blamed or out.timed_out or out.output_capped:
                blamed = set(pending)  # cannot attribute: everyone is handled alone
            for i in sorted(blamed):
                results[i] = self._alone(sb, job, by_idx[i])
            pending = [i for i in pending if i not in blamed]
        if not pending:
            return results
        exe = f"b{attempt}.exe"
        while pending:
            nonce = secrets.token_hex(16)
            jobs = [f"{i} {ns[i]}.Problem {ns[i]}.SafuraiSentinel" for i in pending]
            out = self._run_exe(sb, job, exe, jobs, nonce, batch=True)
            verdicts = {} if out.output_capped else _verdicts(out.stdout, nonce)
            rest: list[int] = []
            for k, i in enumerate(pending):
                lines = verdicts.get(i)
                if lines is None:
                    # In flight when the runner stopped: rerun alone, the rest go on.
                    results[i] = self._alone(sb, job, by_idx[i])
                    rest = pending[k + 1 :]
                    break
                res = _from_verdict(lines, by_idx[i].tokens)
                # Deterministic outcomes of a Main that returned or threw are taken from
                # the batch; time, resource and runner-level outcomes are rerun alone.
                clean = (
                    len(lines) == 1
                    and not lines[0][1]
                    and lines[0][0] in ("PASS", "AFAIL", "EXC")
                    and res.status in _BATCH_CLEAN
                )
                if clean:
                    res.batched = True
                    results[i] = res
                else:
                    results[i] = self._alone(sb, job, by_idx[i])
                    if lines[-1][1]:  # dirty: the runner stopped after this program
                        rest = pending[k + 1 :]
                        break
            pending = rest
        return results
