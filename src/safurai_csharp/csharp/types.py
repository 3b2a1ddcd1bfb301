"""Plain data types of the execution sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    PASS = "pass"
    COMPILE_ERROR = "compile_error"
    ASSERTION_FAILED = "assertion_failed"
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"
    NO_VERDICT = "no_verdict"  # exited/crashed without proof that every assertion ran
    ENCODING_ERROR = "encoding_error"  # the text is not valid Unicode (a lone surrogate): never compiled


@dataclass(frozen=True)
class Limits:
    """Per-program limits. Every run (alone or batched) is bounded by these."""

    timeout_s: float = 10.0  # wall time of one program's Main
    cpu_s: int = 20  # RLIMIT_CPU of one program run (batches get n x this)
    memory_mb: int = 1024  # RLIMIT_AS of the mono process (virtual memory)
    max_tasks: int = 64  # RLIMIT_NPROC: processes + threads of the sandbox uid
    max_output_bytes: int = 1 << 20  # what one program may print (stdout + stderr)
    file_size_mb: int = 16  # RLIMIT_FSIZE and size of the private /tmp tmpfs
    max_open_files: int = 256  # RLIMIT_NOFILE
    compile_timeout_s: float = 60.0  # wall time of one compiler run (batch or alone)


@dataclass(frozen=True)
class Program:
    """One MultiPL-E program: prompt + completion + "\\n" + tests, under a test mode."""

    prompt: str
    completion: str
    tests: str
    mode: str = "official"
    name: str = ""


@dataclass
class Result:
    status: Status
    detail: str = ""  # short diagnostic: compiler error excerpt, exception, ...
    batched: bool = False  # verdict taken from a batch run (else from a run alone)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def to_dict(self) -> dict:
        return {"status": self.status.value, "passed": self.passed, "detail": self.detail}


class SandboxError(RuntimeError):
    """The sandbox itself failed (never a verdict on a program)."""
