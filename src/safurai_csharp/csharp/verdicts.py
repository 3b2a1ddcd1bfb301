"""Reading what a sandboxed run printed: the harness's nonce-tagged lines and, where a run left
none, its exit; one home for the rules that turn them into a verdict (executor.py runs them).

Every field of a line is bounded and typed by the pattern, so whatever a program writes,
parsing can never fail: a line that does not fit is no line of ours.
"""

from __future__ import annotations

import base64
import re

from .sandbox import Outcome
from .types import Result, Status

RESOURCE_EXCEPTIONS = {
    "System.OutOfMemoryException",
    "System.InsufficientMemoryException",
    "System.Threading.ThreadStartException",
    "System.ExecutionEngineException",  # mono's answer when it cannot start a thread
}
# A process the sandbox's RLIMIT_NPROC / RLIMIT_AS refused (mono reports fork's ENOMEM / EAGAIN so).
SPAWN_REFUSED = re.compile(r"System\.ComponentModel\.Win32Exception: (Out of memory|Resource temporarily unavailable)")
DETAIL_MAX = 300


def b64(s: str) -> str:
    try:
        return base64.b64decode(s).decode("utf-8", "replace")
    except ValueError:
        return ""


def stream(stdout: bytes, nonce: str) -> list[tuple[int, str, bool, str]]:
    """Every harness line (idx, status, dirty, payload) in order; forged lines lack the nonce."""
    pat = re.compile(rb"@@" + nonce.encode() + rb" (-?\d{1,9}) ([A-Z]{1,16}) ([01]) ([0-9A-Za-z+/=,-]{0,16777216})\n")
    return [(int(m.group(1)), m.group(2).decode(), m.group(3) == b"1", m.group(4).decode("ascii"))
            for m in pat.finditer(stdout)]


def site_values(lines: list[tuple[int, str, bool, str]], order: list[int]) -> dict[int, list[tuple[int, int, str]]]:
    """idx -> the (site, flags, value b64) lines a split solver reported, taking a program's
    lines only between its predecessor's verdict and its own, in the order the runner ran them."""
    values: dict[int, list[tuple[int, int, str]]] = {}
    pos = 0
    for idx, status, _dirty, payload in lines:
        if pos >= len(order):
            break
        if status == "V":
            if idx == order[pos]:
                k, flags, value = (payload.split(",") + ["", "", ""])[:3]
                if k.isdigit() and flags.isdigit() and len(k) < 7:
                    values.setdefault(idx, []).append((int(k), int(flags), value))
        elif idx == order[pos]:
            pos += 1
    return values


def verdicts(lines: list[tuple[int, str, bool, str]]) -> dict[int, list[tuple[str, bool, str]]]:
    """idx -> the verdict lines (status, dirty, payload) among a run's `stream`."""
    found: dict[int, list[tuple[str, bool, str]]] = {}
    for idx, status, dirty, payload in lines:
        if status != "V":  # a split solver's values: site_values
            found.setdefault(idx, []).append((status, dirty, payload))
    return found


def from_verdict(lines: list[tuple[str, bool, str]], tokens: frozenset[int]) -> Result:
    for status, _dirty, payload in lines:
        if status == "UNHANDLED":
            kind = b64(payload)
            st = Status.RESOURCE_LIMIT if kind in RESOURCE_EXCEPTIONS else Status.EXCEPTION
            return Result(st, f"unhandled {kind}")
    status, _dirty, payload = lines[0]
    if status == "PASS":
        try:
            seen = set() if payload == "-" else {int(t, 16) for t in payload.split(",") if t}
        except ValueError:
            return Result(Status.NO_VERDICT, "malformed verdict")
        missing = tokens - seen
        if missing or seen - tokens:
            return Result(Status.NO_VERDICT, f"{len(missing)} of {len(tokens)} assertions did not run")
        return Result(Status.PASS)
    if status == "AFAIL":
        return Result(Status.ASSERTION_FAILED, b64(payload)[:DETAIL_MAX])
    if status == "EXC":
        text = b64(payload)
        kind = text.split(":", 1)[0]
        st = Status.RESOURCE_LIMIT if kind in RESOURCE_EXCEPTIONS or SPAWN_REFUSED.match(text) else Status.EXCEPTION
        return Result(st, text[:DETAIL_MAX])
    if status == "TIMEOUT":
        return Result(Status.TIMEOUT, "wall time limit")
    if status == "MULTIMAIN":
        return Result(Status.COMPILE_ERROR, "error CS0017: Program has more than one entry point defined")
    if status == "OUTCAP":
        return Result(Status.RESOURCE_LIMIT, "output limit")
    return Result(Status.NO_VERDICT, status.lower())


def classify_alone(out: Outcome, lines: list[tuple[int, str, bool, str]], tokens: frozenset[int]) -> Result:
    """The verdict of a program run alone, from its `stream` lines or, without one, its exit."""
    if out.output_capped:
        return Result(Status.RESOURCE_LIMIT, "output limit")
    own = verdicts(lines).get(0)
    if own:
        return from_verdict(own, tokens)
    err = out.stderr_tail.decode("utf-8", "replace")
    tail = err[-DETAIL_MAX:]
    if out.timed_out or out.signal == 24:  # SIGXCPU: RLIMIT_CPU (mono dies of it)
        return Result(Status.TIMEOUT, "time limit")
    if out.signal == 9:
        # Not our wall clock (that sets timed_out) and not the CPU limit (SIGXCPU comes first and
        # ends mono): the program killed itself (Process.Kill) or the kernel's OOM killer did.
        return Result(Status.EXCEPTION, "killed by SIGKILL")
    low = err.lower()
    if "out of memory" in low or "outofmemory" in low or "cannot allocate" in low:
        return Result(Status.RESOURCE_LIMIT, tail)
    if "unhandled exception" in low or out.signal in (6, 7, 11):
        return Result(Status.EXCEPTION, tail)
    return Result(Status.NO_VERDICT, f"exit {out.returncode} without verdict; {tail}")
