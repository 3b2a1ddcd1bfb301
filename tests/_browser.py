"""A real headless browser for the pages the project writes (issue #14): Debian's chromium,
with every host name unresolvable, so a page that needs the network shows it.

`make test` installs chromium (scripts/setup.sh --with-browser) and sets
SAFURAI_REQUIRE_BROWSER=1: there a missing browser fails the test instead of skipping it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

_CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] \"(.*)\", source: ")
_BROKEN = ("Uncaught", "Failed to load", "net::ERR", "is not defined")


def chromium() -> str:
    exe = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if exe:
        return exe
    if os.environ.get("SAFURAI_REQUIRE_BROWSER") == "1":
        pytest.fail("no chromium on PATH: `bash scripts/setup.sh --with-browser` installs it")
    pytest.skip("no chromium on PATH (bash scripts/setup.sh --with-browser)")


@dataclass
class Rendered:
    dom: str           # the document after its scripts ran
    console: list[str]  # every console message, in order

    @property
    def errors(self) -> list[str]:
        """What broke: the page's own error record (web.ERROR_HOOK) and the browser's log."""
        found = re.findall(r'data-errors="([^"]*)"', self.dom)
        return found + [m for m in self.console if any(b in m for b in _BROKEN)]

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.dom))


def render(page: Path, budget_ms: int = 20000) -> Rendered:
    """Load `page` (a file) in headless chromium, offline, and dump the DOM once it settled."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", '--host-resolver-rules=MAP * ~NOTFOUND',
             "--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Rendered(proc.stdout, _CONSOLE.findall(proc.stderr))
