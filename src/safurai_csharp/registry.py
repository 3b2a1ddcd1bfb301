"""The MLflow model registry: merged models as versions of one registered model.

Aliases: `candidate` = the latest merge (stage merge sets it), `champion` = the best model by
pass@1 so far (stage promote moves it). Both live in the tracking store (mlflow.db or the
server of MLFLOW_TRACKING_URI), outside DVC: `dvc repro` never rolls them back.

How a version is stored: the merged checkpoint directory is logged in the merge run with
``mlflow.transformers.log_model`` (a LoggedModel, ``models:/m-<id>``; explicit pip
requirements, since MLflow cannot infer them offline, and our model card so it never asks the
hub for one), then registered with ``mlflow.register_model`` on that logged model's URI. (On
a plain run artifact path register_model fails in MLflow 3.17; a logged model is what the
3.x registry expects.) So a version loads either way:

    from safurai_csharp.registry import load_registered
    model, tokenizer = load_registered("safurai-csharp-qwen05", "champion")   # transformers

    mlflow.transformers.load_model("models:/safurai-csharp-qwen05@champion", return_type="components")

Tags on a version: lineage (git.commit, dvc.stage, input.*.sha256 of base/adapter/data,
model.sha256 of the merged directory, merge fidelity) from merge; score and decision from
promote (see stages/promote.py).

The name is MLflow's ("Model Registry"), and it stays: `safurai_csharp.registry.load_registered`
is the documented way to load the champion. The explicit plug-in tables elsewhere are plain
dicts with other names (engines.ENGINES, synth.steps.STEP_BUILDERS). `pip_requirements()` here
is MLflow's log_model argument (runtime packages of a logged model); the model wheels' hashed
requirement lines are basemodel.wheel_requirements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UserError

CANDIDATE = "candidate"
CHAMPION = "champion"
ARTIFACT_NAME = "model"
_REQUIREMENTS = ("transformers", "torch", "safetensors", "tokenizers", "accelerate")
_TAG_MAX = 5000


class RegistryError(UserError, ValueError):
    """The registry is not in the state a stage needs; the message says what to do."""


def client(tracking_uri: str | None = None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def pip_requirements() -> list[str]:
    """The versions installed here, pinned: enough for `mlflow models serve` or a loader."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for name in _REQUIREMENTS:
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return reqs


def tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:_TAG_MAX]


def register(model_dir: str | Path, name: str, *, tags: Mapping[str, Any], card: str,
             alias: str = CANDIDATE) -> Any:
    """Log `model_dir` (a transformers checkpoint) in the active run, register it as a new
    version of `name` with `tags` and the model card as description, point `alias` at it."""
    import mlflow
    from huggingface_hub import ModelCard

    if mlflow.active_run() is None:
        raise RegistryError("register needs an active MLflow run (the merge run) to log the model in")
    # An absolute path is never mistaken for a hub id (no network call for a model card).
    info = mlflow.transformers.log_model(
        str(Path(model_dir).resolve()), name=ARTIFACT_NAME, task="text-generation",
        pip_requirements=pip_requirements(), model_card=ModelCard(card),
    )
    mv = mlflow.register_model(info.model_uri, name, tags={k: tag_value(v) for k, v in tags.items()})
    c = client(mlflow.get_tracking_uri())
    c.update_model_version(name, mv.version, description=card[:_TAG_MAX])
    c.set_registered_model_alias(name, alias, mv.version)
    return c.get_model_version(name, mv.version)


def version_by_alias(c: Any, name: str, alias: str) -> Any | None:
    """The version `alias` points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def describe(c: Any, name: str, version: str | int, text: str) -> None:
    """Set a version's description (the registry page shows it: what the model is and scored)."""
    c.update_model_version(name, str(version), description=text[:_TAG_MAX])


def description(c: Any, name: str, version: str | int) -> str:
    return c.get_model_version(name, str(version)).description or ""


def set_tags(c: Any, name: str, version: str | int, tags: Mapping[str, Any]) -> None:
    for key, value in tags.items():
        c.set_model_version_tag(name, str(version), key, tag_value(value))


def set_alias(c: Any, name: str, alias: str, version: str | int) -> None:
    c.set_registered_model_alias(name, alias, str(version))


def download(name: str, alias: str = CHAMPION, *, dst: str | Path | None = None,
             tracking_uri: str | None = None) -> Path:
    """Fetch `models:/<name>@<alias>`; return the transformers checkpoint directory in it."""
    import mlflow

    # Resolved by hand: download_artifacts("models:/...") ignores its tracking_uri argument
    # for the registry look-up (it uses the process-wide URI) in MLflow 3.17.
    c = client(tracking_uri)
    mv = version_by_alias(c, name, alias)
    if mv is None:
        raise RegistryError(f"registered model {name!r} has no version with alias {alias!r}")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=c.get_model_version_download_uri(name, str(mv.version)),
        dst_path=None if dst is None else str(dst), tracking_uri=tracking_uri,
    )
    path = Path(local) / ARTIFACT_NAME
    if not (path / "config.json").is_file():
        raise RegistryError(f"models:/{name}@{alias} holds no transformers checkpoint at {ARTIFACT_NAME}/ "
                            f"(was it registered by `safurai-csharp merge`?)")
    return path


def load_registered(name: str, alias: str = CHAMPION, *, tracking_uri: str | None = None,
                    dst: str | Path | None = None, dtype: Any = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) of the version `alias` points at, loaded with transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = download(name, alias, dst=dst, tracking_uri=tracking_uri)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path)
