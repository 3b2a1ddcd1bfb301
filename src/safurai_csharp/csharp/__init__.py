"""Hack-resistant, fast execution sandbox for MultiPL-E C# programs (issue #2, section 4).

Typical use::

    from safurai_csharp.csharp import Executor, Limits, Program
    results = Executor(Limits(timeout_s=10), workers=2).run(
        [Program(prompt, completion, tests, mode="corrected")])
    results[0].status, results[0].passed
"""

from .executor import Executor, SandboxError
from .modes import MODES, apply_mode, build_program, changed_by_correction, instrument
from .toolchain import ToolchainError, check_toolchain
from .types import Limits, Program, Result, Status


def make_executor(cfg) -> Executor:
    """An Executor with the limits of params.yaml's `sandbox` section (a SandboxParams)."""
    check_toolchain()
    limits = Limits(
        timeout_s=cfg.timeout_s, cpu_s=cfg.cpu_s, memory_mb=cfg.memory_mb,
        max_tasks=cfg.max_tasks, max_output_bytes=cfg.max_output_kb * 1024,
        file_size_mb=cfg.file_size_mb,
    )
    return Executor(limits, workers=cfg.workers, batch=cfg.batch)


__all__ = [
    "Executor",
    "SandboxError",
    "Limits",
    "MODES",
    "Program",
    "Result",
    "Status",
    "ToolchainError",
    "apply_mode",
    "build_program",
    "changed_by_correction",
    "check_toolchain",
    "instrument",
    "make_executor",
]
