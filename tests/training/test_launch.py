"""launch.say: report lines of processes that share one stdout pipe arrive whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Each writer leaves a long unterminated run of text in its stdout buffer (as progress output or
# a library's print may), then reports. A plain print() flushes that text and the report as one
# buffer, which the kernel may split where the other writer's bytes land.
WRITER = r"""
import sys
sys.path.insert(0, {src!r})
from safurai_csharp.training import launch
tag = sys.argv[1]
for i in range(300):
    sys.stdout.write(tag * 5000)
    launch.say(f"report {{tag}} {{i}}: " + "x" * 200 + " end")
"""


def test_report_lines_of_two_processes_sharing_a_pipe_arrive_whole(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(src=str(SRC)))
    # Both children inherit the same pipe as stdout, as launched training processes do.
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         f"ps = [subprocess.Popen([sys.executable, {str(script)!r}, t]) for t in 'AB']\n"
         "sys.exit(max(p.wait() for p in ps))"],
        stdout=subprocess.PIPE,
    )
    # Read slowly in small pieces, so the pipe stays full and big writes go through in parts.
    chunks = []
    while chunk := os.read(parent.stdout.fileno(), 512):
        chunks.append(chunk)
        time.sleep(0.0002)
    assert parent.wait(timeout=120) == 0
    out = b"".join(chunks).decode()
    whole = re.findall(r"report ([AB]) (\d+): x{200} end\n", out)
    assert sorted(whole) == sorted((t, str(i)) for t in "AB" for i in range(300))


def test_say_works_without_a_file_descriptor(capsys):
    from safurai_csharp.training import launch

    launch.say("one line")
    assert capsys.readouterr().out == "one line\n"
