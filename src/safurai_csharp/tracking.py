"""MLflow logging shared by every stage: one run per stage execution, tagged for lineage."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .config import MlflowParams

# MLflow caps a tag value at 8,000 characters: 64 hex digits + a space, ~120 digests.
_DIR_FILES = 64


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


def log_metrics(mlflow: Any, metrics: Mapping[str, Any], step: int | None = None) -> None:
    mlflow.log_metrics({metric_key(k): float(v) for k, v in metrics.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)}, step=step)


def live(mlflow: Any, summary: Any) -> Any:
    """A run_chunks `on_chunk` callback that logs `live.*` metrics while a long stage runs, one
    step per chunk (step = tasks done), so the MLflow UI's charts move during the run and a
    killed run still shows how far it got. `summary(records, tallies)` -> the numbers to log."""
    def on_chunk(records: list[dict], tallies: list[dict]) -> None:
        log_metrics(mlflow, flatten("live", {"tasks_done": len(records), **summary(records, tallies)}),
                    step=len(records))

    return on_chunk


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def content_tags(kind: str, paths: Mapping[str, str | Path] | None) -> dict[str, str]:
    """`<kind>.<name>.sha256` per path, plus `lineage.<kind>s`: every digest in one tag, so
    lineage.py finds a run by content with one LIKE query whatever the input's name. A
    directory contributes its own digest and each file directly in it (a consumer may read
    one file of it, e.g. sft_data's train.jsonl)."""
    from .hashing import file_digests, file_sha256, tree_digest

    tags: dict[str, str] = {}
    digests: list[str] = []
    for name, path in (paths or {}).items():
        path = Path(path)
        if not path.exists():
            continue
        if path.is_file():
            tags[f"{kind}.{name}.sha256"] = digest = file_sha256(path)
            digests.append(digest)
            continue
        files = file_digests(path)   # each file hashed once: for the tree and for its own entry
        tags[f"{kind}.{name}.sha256"] = tree_digest(files)
        digests += [tags[f"{kind}.{name}.sha256"], *[d for rel, d in files.items() if "/" not in rel][:_DIR_FILES]]
    if digests:
        tags[f"lineage.{kind}s"] = " ".join(dict.fromkeys(digests))
    return tags


def lineage_tags(stage: str, inputs: Mapping[str, str | Path] | None = None) -> dict[str, str]:
    tags = {"dvc.stage": stage}
    commit = _git_commit()
    if commit:
        tags["git.commit"] = commit
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(var):
            tags[f"dvc.{var[4:].lower()}"] = os.environ[var]
    tags.update(content_tags("input", inputs))
    return tags


def is_dataset(path: str | Path) -> bool:
    """The project's layout: datasets live under data/ (models under models/, metrics under
    metrics/); a .jsonl file anywhere is one too."""
    path = Path(path)
    return path.suffix == ".jsonl" or (not path.is_absolute() and path.parts[:1] == ("data",))


def log_datasets(mlflow: Any, context: str, paths: Mapping[str, str | Path] | None, tags: Mapping[str, str]) -> None:
    """Each dataset among `paths` as an MLflow dataset input of the run (context "input" or
    "output"), named as the stage names it, with the DVC path as its source and the content
    hash already in `tags` as its digest (MLflow keeps 36 characters of it; the full one stays
    in the tags), so the runs list and search show a run's data."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    for name, path in (paths or {}).items():
        digest = tags.get(f"{context}.{name}.sha256")
        if digest is None or not is_dataset(path):
            continue
        with warnings.catch_warnings():  # a local path resolves to two equal registered sources
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(path))
        mlflow.log_input(MetaDataset(source, name=name, digest=digest[:36]), context=context)


@contextlib.contextmanager
def stage_run(
    cfg: MlflowParams, stage: str, *, params: Mapping[str, Any],
    inputs: Mapping[str, str | Path] | None = None, outputs: Mapping[str, str | Path] | None = None,
    run_name: str | None = None,
) -> Iterator[Any]:
    """Start an MLflow run for one stage execution; yields the mlflow module. The content
    hashes of `inputs` are tagged at the start, those of `outputs` when the body succeeded:
    a run that consumed a file links to the run that produced it (lineage.py)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(cfg))
    mlflow.set_experiment(cfg.experiment)
    tags = lineage_tags(stage, inputs)
    with mlflow.start_run(run_name=run_name or stage, tags=tags, log_system_metrics=cfg.system_metrics):
        flat = flatten("", params)
        # MLflow caps a param value at 6000 chars; params here are short scalars and lists.
        mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
        log_datasets(mlflow, "input", inputs, tags)
        yield mlflow
        out_tags = content_tags("output", outputs)
        mlflow.set_tags(out_tags)
        log_datasets(mlflow, "output", outputs, out_tags)
