"""Where the Trainer's checkpoints live, and which one a rerun resumes from.

Checkpoints go under .cache/checkpoints/sft_qlora/<key>/, outside the stage's DVC outs (DVC
deletes outs before it reruns a stage). The key hashes everything that determines the
training: the sft_qlora params (paths replaced by the content they point to), the sha256 of
both data splits, how rows become tokens (training/data.py's TOKENIZATION), the digest of the
base model directory, the accelerate config (number of processes = effective batch) and the
library versions. A rerun after a kill finds the same key and resumes from the newest complete
checkpoint; any change starts from scratch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..config import SftQloraParams
from .data import TOKENIZATION

STAGE = "sft_qlora"
PATH_FIELDS = {"model_dir", "data_dir", "out_dir", "metrics", "loss_plot", "accelerate_config"}
LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")
# What a checkpoint must hold to resume from (the Trainer writes trainer_state.json last).
REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def run_key(cfg: SftQloraParams, *, data_sha256: dict[str, str | None], model_digest: str,
            accelerate_digest: str | None) -> dict[str, Any]:
    return {"params": cfg.model_dump(exclude=PATH_FIELDS), "data": data_sha256, "model": model_digest,
            "accelerate": accelerate_digest, "libraries": library_versions(), "tokenization": TOKENIZATION}


def checkpoint_dir(root: str | Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(root) / STAGE / digest


def is_complete(ckpt: Path) -> bool:
    if not all((ckpt / f).is_file() for f in REQUIRED) or not any((ckpt / f).is_file() for f in ADAPTER_FILES):
        return False
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False  # torn write of a killed run
    return isinstance(state, dict) and "global_step" in state


def _step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def last_checkpoint(run_dir: str | Path, *, prune: bool = False) -> Path | None:
    """The newest complete checkpoint-N of run_dir, or None. Newer torn ones (a kill during a
    save) are skipped, and deleted with prune (main process only: the run will write them again)."""
    import shutil

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = sorted((p for p in run_dir.glob("checkpoint-*") if p.is_dir() and _step(p) >= 0), key=_step)
    for ckpt in reversed(found):
        if is_complete(ckpt):
            return ckpt
        if prune:
            shutil.rmtree(ckpt, ignore_errors=True)
    return None
