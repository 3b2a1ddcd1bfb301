"""Several training processes: the stage re-runs itself under `accelerate launch`.

With sft_qlora.accelerate_config set (a file under configs/accelerate/), `safurai-csharp
sft-qlora` does not train in its own process: it runs

    python -m accelerate.commands.launch --config_file <config> -m safurai_csharp.cli sft-qlora --params <p>

and waits. Each launched process sees RANK / WORLD_SIZE / LOCAL_RANK in its environment and
trains its shard of every batch (DDP), or its shard of the model (FSDP, DeepSpeed ZeRO-3);
process 0 alone logs to MLflow and writes the adapter and metrics. A user may also run that
command by hand: a process that is already launched never launches again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..config import accelerate_distributed_type
from ..hashing import file_sha256


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


def say(line: str) -> None:
    """Print one line to stdout, whole, even when several processes share the pipe.

    Launched processes inherit one stdout pipe. A print() goes through a buffer that may hold
    other text and be flushed in pieces, so another process's output can land inside the line
    (seen: a rank's report not found by a test). One write() of at most PIPE_BUF bytes (4,096 on
    Linux) to a pipe is atomic (POSIX), so the line is flushed on its own and written in one call.
    """
    sys.stdout.flush()
    data = (line.rstrip("\n") + "\n").encode()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stdout without a descriptor (captured)
        print(line, flush=True)
        return
    while data:
        data = data[os.write(fd, data):]


def launched() -> bool:
    """True inside a process started by accelerate launch / torchrun."""
    return "LOCAL_RANK" in os.environ or world_size() > 1


def sharded(accelerate_config: str | None) -> bool:
    """FSDP and DeepSpeed place the weights themselves (no per-process device_map)."""
    return bool(accelerate_config) and accelerate_distributed_type(accelerate_config) in ("FSDP", "DEEPSPEED")


def config_digest(accelerate_config: str | None) -> str | None:
    if not accelerate_config:
        return None
    path = Path(accelerate_config)
    if not path.is_file():
        raise FileNotFoundError(f"sft_qlora.accelerate_config {accelerate_config}: no such file")
    return file_sha256(path)


def launch_command(accelerate_config: str, params_path: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
            "-m", "safurai_csharp.cli", "sft-qlora", "--params", params_path]


def relaunch(accelerate_config: str, params_path: str) -> None:
    """Run the stage under accelerate launch; raise if any process failed."""
    config_digest(accelerate_config)  # a missing file is a clear error, not a launcher traceback
    cmd = launch_command(accelerate_config, params_path)
    print("sft-qlora: " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0:
        raise RuntimeError(f"accelerate launch exited with status {rc} (see the processes' output above)")
