"""MLflow logging shared by every stage: one run per stage execution, tagged for lineage."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .config import MlflowParams


def tracking_uri(cfg: MlflowParams) -> str:
    # The environment wins so that a team can point every stage at a shared server
    # (MLFLOW_TRACKING_URI=http://...) without editing params.yaml, which DVC tracks.
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def metric_key(name: str) -> str:
    """MLflow metric names allow no '@': pass@1 is logged as pass_at_1."""
    return name.replace("@", "_at_")


def log_metrics(mlflow: Any, metrics: Mapping[str, Any]) -> None:
    mlflow.log_metrics({metric_key(k): float(v) for k, v in metrics.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def lineage_tags(stage: str, inputs: Mapping[str, str | Path] | None = None) -> dict[str, str]:
    from .hashing import path_digest

    tags = {"dvc.stage": stage}
    commit = _git_commit()
    if commit:
        tags["git.commit"] = commit
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(var):
            tags[f"dvc.{var[4:].lower()}"] = os.environ[var]
    for name, path in (inputs or {}).items():
        if Path(path).exists():
            tags[f"input.{name}.sha256"] = path_digest(Path(path))
    return tags


@contextlib.contextmanager
def stage_run(
    cfg: MlflowParams, stage: str, *, params: Mapping[str, Any],
    inputs: Mapping[str, str | Path] | None = None, run_name: str | None = None,
) -> Iterator[Any]:
    """Start an MLflow run for one stage execution; yields the mlflow module."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(cfg))
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=run_name or stage, tags=lineage_tags(stage, inputs)):
        flat = flatten("", params)
        # MLflow caps a param value at 6000 chars; params here are short scalars and lists.
        mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
        yield mlflow
