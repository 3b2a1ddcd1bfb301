"""Compile and run MultiPL-E C# programs in the sandbox, alone or in batches.

Batch mode (same verdicts as alone, by construction):
* compile: each program goes into its own file, wrapped in a namespace with a random
  name plus a sentinel class, and a whole chunk is compiled by one ``mcs`` run. Files
  the compiler blames are taken out and compiled alone (the only source of a
  ``compile_error`` verdict); the rest is recompiled until the batch builds. The
  runner checks each sentinel is a top-level type, which catches a program whose
  unbalanced braces were "repaired" by the wrapper (it is then handled alone).
  Every compile goes to the worker's warm compile server (compile_server.py); a
  fresh ``mono mcs.exe`` redoes any compile the server cannot answer cleanly.
* run: one mono process runs the chunk's programs one after the other (fresh console
  capture, trace listener and culture for each). Only a clean ``pass`` (every
  assertion token seen) or ``assertion_failed`` without stray threads is taken from
  a batch; anything else, and the program in flight when the runner died, timed out
  or flooded its output, is rerun alone.
* scheduling only (never a verdict): programs naming a process-ending call go alone
  directly, and a batch gives each program at most ``_BATCH_TIMEOUT_S``.
"""

from __future__ import annotations

import os
import logging
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .gate_cs import GATE_SOURCE
from .harness_cs import HARNESS_SOURCE
from .modes import apply_mode, instrument
from .split import STUB_BODY, SolverRun, Split, checker_payload, combine, split
from ..progress import bar
from .compile_server import MCS_EXE, SERVER_IN_SANDBOX, CompileServer, Reply, server_exe
from .sandbox import Outcome, Sandbox
from .uids import allocate_uids
from .toolchain import check_toolchain
from .types import Limits, Program, Result, SandboxError, Status
from .verdicts import DETAIL_MAX, classify_alone, from_verdict, site_values, verdicts as group_verdicts
from .verdicts import stream as read_stream

log = logging.getLogger(__name__)

MCS_ARGS = ["-d:DEBUG", "-r:System.Numerics.dll"]  # MultiPL-E's flags
MCS_FLAGS = ["-main:SafuraiHarness.Entry", "-nowarn:0162,0168,0219,0414,0649,0169,0436"]
# Indexes are bounded (a `#line` directive can name any file): a longer number is no file of ours.
_ERR_LINE = re.compile(r"/job/p(\d{1,9})\.cs\(\d+,\d+\): error")
_STARTUP_SLACK_S = 5.0
_ENDS_PROCESS = re.compile(r"\bEnvironment\s*\.\s*(?:Exit|FailFast)\b|\.\s*Kill\s*\(")
_BATCH_TIMEOUT_S = 1.0
_BAR_FROM = 200  # programs: a progress bar for an eval's run, none for a data stage's chunk
_SERVER_WAIT_S = 20.0  # server start-up; base of a request's wall clock (+0.5 s a file)
_SERVER_MAX_REQUESTS = 100  # then a fresh server: mcs's emitted assemblies stay in memory
_SERVER_START_TRIES = 3
_BATCH_CLEAN = (Status.PASS, Status.ASSERTION_FAILED, Status.EXCEPTION, Status.NO_VERDICT)


@dataclass
class _Unit:
    index: int
    source: str  # prompt + completion + "\n" + instrumented tests (a split: the solver's Main instead)
    tokens: frozenset[int]
    program: Program
    tests: str  # in the program's mode
    split: Split | None = None


def _prepare(index: int, program: Program, splits: dict) -> _Unit:
    tests = apply_mode(program.tests, program.mode)
    key = (program.prompt, tests)
    if key not in splits:
        splits[key] = split(program.prompt, tests)
    sp = splits[key]
    if sp is not None:  # split.py: the completion runs without the tests, the tests without it
        return _Unit(index, program.prompt + program.completion + "\n" + sp.solver_tests, frozenset(), program, tests, sp)
    return _whole(index, program, tests)


def _whole(index: int, program: Program, tests: str) -> _Unit:
    instrumented, tokens = instrument(tests)
    return _Unit(index, program.prompt + program.completion + "\n" + instrumented, frozenset(tokens), program, tests)


@dataclass
class _Compiled:
    ok: bool  # the compiler succeeded and wrote the executable
    text: str  # diagnostics, paths as a compile with the job dir at /job prints them
    uncertain: bool = False  # killed (time/output): errors cannot be attributed


@dataclass
class _Worker:
    """One worker: a compile uid (with its warm compile server) and a run uid.

    ``root`` is bound at /job for the compile server for the whole run; each chunk
    gets its own subdirectory, and every program run sees only its chunk's
    directory (read-only) at /job.
    """

    compile_sb: Sandbox
    run_sb: Sandbox
    root: Path
    server: CompileServer | None = None
    server_starts_failed: int = 0
    jobs: int = 0

    def new_job(self) -> Path:
        self.jobs += 1
        job = self.root / f"c{self.jobs}"
        job.mkdir()
        self.compile_sb.prepare_dir(job)
        return job

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)  # readable by the sandbox uids whatever our umask


def start_compile_server(sb: Sandbox, root: Path, lim: Limits) -> CompileServer | None:
    """A compile server in sb's sandbox with root bound (writable) at /job."""
    argv = sb.argv(
        ["mono", SERVER_IN_SANDBOX, MCS_EXE],
        job_dir=root,
        job_writable=True,
        # lifetime CPU budget; each request also has its own wall clock
        cpu_s=int(lim.compile_timeout_s) + 2 * _SERVER_MAX_REQUESTS,
        memory_mb=lim.memory_mb,
        max_tasks=lim.max_tasks,
        file_size_mb=lim.file_size_mb,
        max_open_files=lim.max_open_files,
        ro_files=((str(server_exe()), SERVER_IN_SANDBOX),),
    )
    return CompileServer.start(sb.start(argv), _SERVER_WAIT_S, _SERVER_MAX_REQUESTS)


class Executor:
    """Run programs in the sandbox; results come back in input order."""

    def __init__(self, limits: Limits | None = None, workers: int = 2, batch: bool = True, batch_size: int = 160):
        check_toolchain()
        self.limits = limits or Limits()
        self.workers = max(1, workers)
        self.batch = batch
        self.batch_size = max(1, batch_size)
        self.use_compile_server = True  # False: a fresh `mono mcs.exe` for every compile
        self.uids_used: tuple[int, ...] = ()  # sandbox uids held by the last run (root)
        self._runs: dict[int, SolverRun] = {}

    def site_values(self, index: int) -> list[tuple[int, str]] | None:
        """(flags, codec value text) of each call site that program `index` of the last `run`
        reached, in order, when it ran split (split.py: a solver that reported its values);
        None when it ran whole or its report was unreadable. flags: 1 the solution called
        Debug.Fail, 2 it wrote past the output cap."""
        run = self._runs.get(index)
        return None if run is None else run.ordered()

    # -- public -------------------------------------------------------------------
    def run(self, programs: list[Program],
            on_progress: Callable[[int, int, int], None] | None = None) -> list[Result]:
        """`on_progress(decided, passed, total)`, when given, is called (in this thread) once
        before the first chunk and after each chunk's results are recorded: `decided` programs
        of `total` have their final Result, `passed` of them pass. A split program is decided
        once its checker ran (or on a compile error of its solver); the last call has
        decided == total."""
        results: list[Result | None] = [None] * len(programs)
        units, splits = [], {}
        self._runs: dict[int, SolverRun] = {}  # split solvers' runs, by program index
        for i, p in enumerate(programs):
            unit = _prepare(i, p, splits)
            try:
                unit.source.encode("utf-8")
            except UnicodeEncodeError as e:  # e.g. a lone surrogate from a JSON "\ud800" escape
                results[i] = Result(Status.ENCODING_ERROR, f"not valid Unicode at character {e.start}")
                continue
            units.append(unit)
        if self.batch:
            # Big chunks amortise the runner and the batch compiles, but every worker
            # should get one: a chunk is at most batch_size, at most 1/workers of it all.
            size = min(self.batch_size, max(1, -(-len(units) // self.workers)))
            tasks = [units[i : i + size] for i in range(0, len(units), size)]
            fn = self._run_chunk
        else:
            tasks = [[u] for u in units]
            fn = self._run_single
        server_ok = self.use_compile_server
        if server_ok:
            try:
                server_exe()  # build it once, before the workers race for it
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                log.warning("C# compile server unavailable (%s); using a fresh mcs per compile", e)
                server_ok = False
        # Two uids per worker: compiles (and the server's threads) never count against
        # the RLIMIT_NPROC budget of a program run.
        with allocate_uids(2 * self.workers) as uids, tempfile.TemporaryDirectory(prefix="safurai-sbx-") as root:
            os.chmod(root, 0o711)  # the sandbox uids must reach their job directories
            self.uids_used = tuple(uids) if os.geteuid() == 0 else ()
            idle: queue.Queue[_Worker] = queue.Queue()
            workers = []
            for w in range(self.workers):
                wroot = Path(root) / f"w{w}"
                wroot.mkdir()
                wk = _Worker(Sandbox(uids[2 * w]), Sandbox(uids[2 * w + 1]), wroot)
                if not server_ok:
                    wk.server_starts_failed = _SERVER_START_TRIES
                wk.compile_sb.prepare_dir(wroot)
                workers.append(wk)
                idle.put(wk)
            try:
                pb = bar(total=len(programs), desc="sandbox", unit="program", disable=len(programs) < _BAR_FROM)
                split_idx = {u.index: u.split is not None for u in units}
                decided, passed = len(programs) - len(units), 0  # encoding errors: decided, failed
                report = on_progress or (lambda decided, passed, total: None)

                def record(chunk_results: dict[int, Result], checked: bool) -> None:
                    nonlocal decided, passed
                    for idx, res in chunk_results.items():
                        results[idx] = res
                        # a split program is decided once its checker ran (or its solver did not compile)
                        if checked or not split_idx.get(idx) or res.status is Status.COMPILE_ERROR:
                            pb.update(1)
                            decided, passed = decided + 1, passed + bool(res.passed)
                    report(decided, passed, len(programs))

                with pb, ThreadPoolExecutor(self.workers) as pool:
                    pb.update(decided)
                    report(decided, passed, len(programs))
                    for chunk_results in pool.map(lambda t: self._with_worker(fn, t, idle), tasks):
                        record(chunk_results, checked=False)
                    # Second phase: the checkers of the split programs, on what their solvers returned.
                    checks = [u for u in units if u.split is not None and results[u.index].status is not Status.COMPILE_ERROR]
                    # grouped by problem: a chunk compiles each of its checkers once, so n samples
                    # of a problem cost one checker compile, not n
                    first = {}
                    checks.sort(key=lambda u: first.setdefault((u.program.prompt, u.tests), len(first)))
                    size = min(self.batch_size, max(1, -(-len(checks) // self.workers)))
                    chunks = [(checks[i : i + size], results) for i in range(0, len(checks), size)]
                    for chunk_results in pool.map(lambda t: self._with_worker(self._run_checkers, t, idle), chunks):
                        record(chunk_results, checked=True)
            finally:
                for wk in workers:
                    wk.stop_server()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    # -- plumbing -----------------------------------------------------------------
    def _with_worker(self, fn, units: list[_Unit], idle: "queue.Queue[_Worker]") -> dict[int, Result]:
        wk = idle.get()
        try:
            job = wk.new_job()
            try:
                return fn(wk, job, units)
            finally:
                shutil.rmtree(job, ignore_errors=True)
        finally:
            idle.put(wk)

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
            raise SandboxError(out.stderr_tail.decode("utf-8", "replace")[:DETAIL_MAX])
        return out

    def _compile(self, wk: _Worker, job: Path, files: list[str], exe: str) -> _Compiled:
        """Compile with the warm server; a fresh `mono mcs.exe` when it cannot answer."""
        lim = self.limits
        if not (job / "harness.cs").exists():
            _write(job / "harness.cs", HARNESS_SOURCE)
            _write(job / "gate.cs", GATE_SOURCE)
        sub = f"/job/{job.name}/"
        args = MCS_ARGS + MCS_FLAGS + [f"-out:{sub}{exe}", f"{sub}harness.cs", f"{sub}gate.cs"] + [sub + f for f in files]
        reply = self._server_compile(wk, args, min(lim.compile_timeout_s, _SERVER_WAIT_S + 0.5 * len(files)))
        if reply is not None and reply.ok == (job / exe).exists():
            if reply.ok:
                os.chmod(job / exe, 0o644)
            return _Compiled(reply.ok, reply.text.replace(sub, "/job/"))
        (job / exe).unlink(missing_ok=True)
        cmd = ["mono", MCS_EXE] + MCS_ARGS + MCS_FLAGS + [f"-out:/job/{exe}", "/job/harness.cs", "/job/gate.cs"]
        out = self._sandboxed(
            wk.compile_sb, job, cmd + [f"/job/{f}" for f in files], writable=True,
            cpu_s=int(lim.compile_timeout_s) + 1, wall_s=lim.compile_timeout_s, out_cap=4 << 20,
        )
        ok = out.returncode == 0 and (job / exe).exists()
        if ok:
            os.chmod(job / exe, 0o644)
        text = (out.stdout + out.stderr_tail).decode("utf-8", "replace")
        if out.timed_out:
            text = "compiler time limit\n" + text
        return _Compiled(ok, text, out.timed_out or out.output_capped)

    def _server_compile(self, wk: _Worker, args: list[str], timeout_s: float) -> Reply | None:
        if wk.server_starts_failed >= _SERVER_START_TRIES:
            return None
        if wk.server is not None and not wk.server.alive:
            wk.stop_server()  # crashed, or recycled to bound the compiler's memory growth
        if wk.server is None:
            wk.server = start_compile_server(wk.compile_sb, wk.root, self.limits)
            if wk.server is None:
                wk.server_starts_failed += 1
                log.warning("C# compile server did not start; using a fresh mcs per compile")
                return None
        reply = wk.server.compile(args, timeout_s)
        if reply is None:
            log.info("C# compile server gave no trustworthy answer; restarting it")
            wk.stop_server()
        return reply

    def _run_exe(self, sb: Sandbox, job: Path, exe: str, jobs: list[str], nonce: str, batch: bool) -> Outcome:
        lim = self.limits
        # In a batch a program gets a shorter clock: one that needs more is rerun alone
        # with the full timeout (which alone decides every timeout verdict), so an
        # infinite loop costs _BATCH_TIMEOUT_S + timeout_s instead of twice timeout_s.
        timeout_s = min(lim.timeout_s, _BATCH_TIMEOUT_S) if batch else lim.timeout_s
        stdin = f"{nonce}\n{int(timeout_s * 1000)}\n{lim.max_output_bytes}\n" + "".join(j + "\n" for j in jobs)
        n = len(jobs)
        # The runner's own stdout carries only verdict lines; a program writing to the
        # raw fd counts against the same cap, scaled by the number of programs.
        return self._sandboxed(
            sb, job, ["mono", f"/job/{exe}"], writable=False,
            cpu_s=int(lim.cpu_s * n) + 1,
            stdin=stdin.encode(),
            wall_s=n * (lim.timeout_s + 1) + _STARTUP_SLACK_S,
            idle_s=timeout_s + _STARTUP_SLACK_S if batch else None,
            progress_marker=f"@@{nonce} ".encode(),
            out_cap=lim.max_output_bytes * n + 4096 * n,
        )

    # -- one program, one compile, one run ------------------------------------------
    def _run_single(self, wk: _Worker, job: Path, units: list[_Unit]) -> dict[int, Result]:
        return {u.index: self._alone(wk, job, u) for u in units}

    def _alone(self, wk: _Worker, job: Path, u: _Unit) -> Result:
        src = f"a{u.index}.cs"
        exe = f"a{u.index}.exe"
        _write(job / src, u.source)
        comp = self._compile(wk, job, [src], exe)
        if not comp.ok:
            if comp.text.startswith("compiler time limit"):
                return Result(Status.COMPILE_ERROR, "compiler time limit")
            errs = [l for l in comp.text.splitlines() if "error CS" in l]
            return Result(Status.COMPILE_ERROR, "\n".join(errs[:3])[:DETAIL_MAX] or comp.text[-DETAIL_MAX:])
        nonce = secrets.token_hex(16)
        out = self._run_exe(wk.run_sb, job, exe, ["0 Problem -"], nonce, batch=False)
        lines = [] if out.output_capped else read_stream(out.stdout, nonce)
        if u.split is not None:
            finals = group_verdicts(lines).get(0)
            self._runs[u.index] = SolverRun(finals[0][0] if finals else None,
                                            tuple(site_values(lines, [0]).get(0, ())))
        return classify_alone(out, lines, u.tokens)

    # -- batches ------------------------------------------------------------------------
    def _run_chunk(self, wk: _Worker, job: Path, units: list[_Unit]) -> dict[int, Result]:
        # Scheduling only: a program that names a process-ending call would most
        # likely kill the batch runner (costing a fresh runner for the rest of the
        # chunk) and be rerun alone anyway, so it goes straight to its own run.
        results: dict[int, Result] = {u.index: self._alone(wk, job, u) for u in units if _ENDS_PROCESS.search(u.source)}
        units = [u for u in units if u.index not in results]
        if not units:
            return results
        by_idx = {u.index: u for u in units}
        salt = secrets.token_hex(6)
        ns = {u.index: f"N{salt}_{u.index}" for u in units}
        for u in units:
            wrapped = f"namespace {ns[u.index]} {{\n{u.source}\nclass SafuraiSentinel {{}}\n}}\n"
            _write(job / f"p{u.index}.cs", wrapped)
        pending = [u.index for u in units]
        attempt = 0
        while pending:
            attempt += 1
            comp = self._compile(wk, job, [f"p{i}.cs" for i in pending], f"b{attempt}.exe")
            if comp.ok:
                break
            blamed = {int(m.group(1)) for m in _ERR_LINE.finditer(comp.text)} & set(pending)
            if not blamed or comp.uncertain:
                blamed = set(pending)  # cannot attribute: everyone is handled alone
            for i in sorted(blamed):
                results[i] = self._alone(wk, job, by_idx[i])
            pending = [i for i in pending if i not in blamed]
        if not pending:
            return results
        exe = f"b{attempt}.exe"
        while pending:
            nonce = secrets.token_hex(16)
            jobs = [f"{i} {ns[i]}.Problem {ns[i]}.SafuraiSentinel" for i in pending]
            out = self._run_exe(wk.run_sb, job, exe, jobs, nonce, batch=True)
            lines_of_run = [] if out.output_capped else read_stream(out.stdout, nonce)
            verdicts = group_verdicts(lines_of_run)
            values = site_values(lines_of_run, pending)
            if any(line[0] == "FOREIGN" for line in verdicts.get(-1, [])):
                # A program declared types outside its wrapper namespace (harness_cs.OnlyOwnTypes):
                # they could bind in any neighbour's code, so every program of the chunk runs alone.
                for i in pending:
                    results[i] = self._alone(wk, job, by_idx[i])
                break
            rest: list[int] = []
            for k, i in enumerate(pending):
                lines = verdicts.get(i)
                if lines is None:
                    # In flight when the runner stopped: rerun alone, the rest go on.
                    results[i] = self._alone(wk, job, by_idx[i])
                    rest = pending[k + 1 :]
                    break
                res = from_verdict(lines, by_idx[i].tokens)
                # Deterministic outcomes of a Main that returned or threw are taken from
                # the batch; time, resource and runner-level outcomes are rerun alone.
                clean = (
                    len(lines) == 1
                    and not lines[0][1]
                    and lines[0][0] in ("PASS", "AFAIL", "EXC")
                    and res.status in _BATCH_CLEAN
                )
                run = None
                if clean and by_idx[i].split is not None:
                    run = SolverRun(lines[0][0], tuple(values.get(i, ())))
                    clean = run.ordered() is not None
                if clean:
                    res.batched = True
                    results[i] = res
                    if run is not None:
                        self._runs[i] = run
                else:
                    results[i] = self._alone(wk, job, by_idx[i])
                    # dirty: the runner stopped after this program; more than one verdict line:
                    # it wrote lines of its own, so no later line of this runner is taken
                    if lines[-1][1] or len(lines) > 1:
                        rest = pending[k + 1 :]
                        break
            pending = rest
        return results

    # -- split programs: the checkers ----------------------------------------------------
    def _run_checkers(self, wk: _Worker, job: Path, task) -> dict[int, Result]:
        """Each split program's tests, without its completion, on its solver's values: one
        checker per distinct problem and mode, compiled once, run once per program."""
        units, phase1 = task
        results: dict[int, Result] = {}
        salt = secrets.token_hex(6)
        sources: dict[tuple[str, str], int] = {}
        tokens: dict[int, frozenset[int]] = {}
        jobs: list[tuple[_Unit, int, str]] = []
        for u in units:
            run = self._runs.get(u.index, SolverRun(None, ()))
            payload = checker_payload(run, u.split.sites)
            if payload is None:
                results[u.index] = Result(Status.NO_VERDICT, "unreadable values", phase1[u.index].batched)
                continue
            key = (u.program.prompt, u.tests)
            if key not in sources:
                n = sources[key] = len(sources)
                tests, toks = instrument(u.split.checker_tests)
                tokens[n] = frozenset(toks)
                body = u.program.prompt + STUB_BODY + "\n" + tests
                _write(job / f"q{n}.cs", f"namespace C{salt}_{n} {{\n{body}\nclass SafuraiSentinel {{}}\n}}\n")
            jobs.append((u, sources[key], payload))
        if not jobs:
            return results
        # Tests that do not build without the completion (they call a helper it declares) run
        # whole, as one program; the rest of the checkers are rebuilt without them.
        building, attempt = set(range(len(sources))), 0
        while building:
            attempt += 1
            exe = f"checkers{attempt}.exe"
            comp = self._compile(wk, job, [f"q{n}.cs" for n in sorted(building)], exe)
            if comp.ok:
                break
            blamed = {int(m) for m in re.findall(r"/job/q(\d{1,9})\.cs\(\d+,\d+\): error", comp.text)} & building
            building -= blamed if blamed and not comp.uncertain else set(building)
        for u, n, _payload in jobs:
            if n not in building:
                results[u.index] = self._alone(wk, job, _whole(u.index, u.program, u.tests))
        pending = [j for j in jobs if j[1] in building]
        tries: dict[int, int] = {}
        while pending:
            nonce = secrets.token_hex(16)
            lines = [f"{u.index} C{salt}_{n}.Problem C{salt}_{n}.SafuraiSentinel {payload}" for u, n, payload in pending]
            out = self._run_exe(wk.run_sb, job, exe, lines, nonce, batch=False)
            verdicts = {} if out.output_capped else group_verdicts(read_stream(out.stdout, nonce))
            rest = []
            for k, (u, n, _payload) in enumerate(pending):
                got = verdicts.get(u.index)
                solver, run = phase1[u.index], self._runs.get(u.index, SolverRun(None, ()))
                if got is None:
                    # The runner stopped before this job's verdict: after a job that left a thread
                    # behind (the runtime may start one under load: "dirty" ends a runner), or on this
                    # job itself. It runs no code of the completion: run it again in a fresh runner.
                    tries[u.index] = tries.get(u.index, 0) + 1
                    if tries[u.index] >= 3:
                        results[u.index] = Result(Status.NO_VERDICT, "checker stopped", solver.batched)
                        rest = pending[k + 1 :]
                    else:
                        rest = pending[k:]
                    break
                status, _dirty, payload = got[0]
                reached = None
                if status == "REACHED":
                    site, _, failed = payload.partition(",")
                    reached = (int(site), failed == "1")
                checker = None if status in ("REACHED", "BADVALUE") else from_verdict(got, tokens[n])
                results[u.index] = combine(solver, run, u.split.sites, checker, reached)
            pending = rest
        return results
