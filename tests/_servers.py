"""Helpers for tests that start a server process (mlflow server, vllm serve, torch's rendezvous)."""

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, what: str, timeout_s: float,
                       poll_s: float = 0.5) -> None:
    """Poll `url` until it answers 200; fail the test with the server's log tail if the
    process exits first or `timeout_s` passes."""
    deadline = time.time() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            pytest.fail(f"{what} not up after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(poll_s)
