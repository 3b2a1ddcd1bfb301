"""MLflow logging shared by every stage: one run per stage execution, tagged for lineage."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .config import MlflowParams

log = logging.getLogger(__name__)

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


LIVE_INTERVAL_S = 15.0  # at most one live.* point per series this often, plus its first and last


class LiveProgress:
    """Progress hooks -> throttled `live.*` metrics, for stages whose long steps are one call
    (an engine's generate, an Executor.run) rather than run_chunks' chunks. Each series logs
    its first point, then at most one point every `interval_s`, and its final one (done ==
    total); `flush` logs a series' latest point not yet logged (live_progress calls it when
    the stage ends, also on an error or Ctrl-C), so a 1,580-program eval makes a few dozen
    MLflow calls and a stopped run still shows how far it got. A failed MLflow call is a
    warning, never the end of the stage: these points only watch the run."""

    def __init__(self, mlflow: Any, interval_s: float = LIVE_INTERVAL_S, clock: Any = time.monotonic) -> None:
        self.mlflow, self.interval_s, self.clock = mlflow, interval_s, clock
        self._last: dict[str, float] = {}  # series -> when it last logged
        self._pending: dict[str, tuple[dict[str, float], int]] = {}  # series -> unlogged latest point

    def generation(self, name: str = "generation") -> Any:
        """An engines.base.Progress-shaped hook `(done, total, generated_tokens)`: logs
        `live.<name>.prompts_done`, `.generated_tokens` and `.tokens_per_s` (tokens / seconds
        since the hook's first call; both left out when tokens are None), step = prompts done."""
        start: float | None = None

        def on_progress(done: int, total: int, generated_tokens: int | None) -> None:
            nonlocal start
            now = self.clock()
            start = now if start is None else start
            point: dict[str, float] = {"prompts_done": done}
            if generated_tokens is not None:
                point["generated_tokens"] = generated_tokens
                if now > start:
                    point["tokens_per_s"] = round(generated_tokens / (now - start), 2)
            self._point(_live(name), point, done, final=done >= total)

        return on_progress

    def programs(self, name: str = "") -> Any:
        """An Executor.run `on_progress(decided, passed, total)` hook: logs `live[.<name>].programs_done`,
        `.passed` and `.pass_rate` (passed / decided so far), step = programs decided."""
        def on_progress(decided: int, passed: int, total: int) -> None:
            point: dict[str, float] = {"programs_done": decided, "passed": passed}
            if decided:
                point["pass_rate"] = round(passed / decided, 4)
            self._point(_live(name), point, decided, final=decided >= total)

        return on_progress

    def flush(self) -> None:
        """Log every series' latest point that the throttle held back."""
        for series in list(self._pending):
            self._log(series, *self._pending.pop(series))

    def _point(self, series: str, point: dict[str, float], step: int, final: bool) -> None:
        now = self.clock()
        last = self._last.get(series)
        if final or last is None or now - last >= self.interval_s:
            self._pending.pop(series, None)
            self._last[series] = now
            self._log(series, point, step)
        else:
            self._pending[series] = (point, step)

    def _log(self, series: str, point: dict[str, float], step: int) -> None:
        try:
            log_metrics(self.mlflow, flatten(series, point), step=step)
        except Exception as e:  # noqa: BLE001 - a tracking hiccup must not end a 30-minute stage
            log.warning("live metrics not logged (%s): %s", series, e)


def _live(name: str) -> str:
    return f"live.{name}" if name else "live"


@contextlib.contextmanager
def live_progress(mlflow: Any, interval_s: float | None = None) -> Iterator[LiveProgress]:
    """A LiveProgress for the body of a stage_run; its unlogged latest points are logged when
    the body ends, however it ends."""
    live = LiveProgress(mlflow, LIVE_INTERVAL_S if interval_s is None else interval_s)
    try:
        yield live
    finally:
        live.flush()


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
