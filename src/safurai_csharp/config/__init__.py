"""The params.yaml schema: one strict pydantic model per stage section.

Every stage loads its section through :func:`load_params`, so a typo or a wrong type
in params.yaml (or in ``dvc exp run -S key=value``) stops the stage before any work,
with an error that names the key, what was given and what is allowed.

The sections live by pipeline part (base.py: what they share; runtime.py: models, engines,
sandbox, evaluation, tracking; data.py: the data stages; training.py: sft_qlora to report);
every name is imported from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from .base import CHECKPOINT_ROOT, Float, ParamsError, Section
from .data import (DecontamParams, DedupParams, EvolveParams, EvolveRound, ExecutionCheckParams,
                   FILTER_STEPS, FilterParams, GenerateParams, HeuristicsParams, JudgeParams,
                   SelfSampleParams, SftDataParams, SplitParams)
from .runtime import (BaseModelParams, BenchmarkParams, ENGINES, EngineOptions, EvalDevParams,
                      EvalParams, EvalTarget, HFOptions, MlflowParams, OpenAIOptions,
                      SamplingParams, SandboxParams, TeacherParams, VLLMOptions)
from .training import (ACCELERATE_CONFIG_DIR, DpoParams, LoraParams, MergeParams, PromoteParams, ReportParams,
                       SftQloraParams, SftQuantizationParams, accelerate_distributed_type)


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
    dpo: DpoParams
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
    def _dpo_sits_between_training_and_merge(self) -> "Params":
        if Path(self.dpo.out_dir) == Path(self.sft_qlora.out_dir):
            raise ValueError(f"dpo.out_dir is sft_qlora.out_dir ({self.dpo.out_dir}): dpo reads that adapter and "
                             f"writes its own; use e.g. models/adapter_dpo")
        # merge may read any adapter (one trained elsewhere, say), but not skip the one dpo trains
        if self.dpo.enabled and Path(self.merge.adapter_dir) != Path(self.dpo.out_dir):
            raise ValueError(f"dpo.enabled trains {self.dpo.out_dir}, but merge.adapter_dir is "
                             f"{self.merge.adapter_dir}: merge would never read it; set merge.adapter_dir: "
                             f"{self.dpo.out_dir}")
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


__all__ = ["ACCELERATE_CONFIG_DIR", "BaseModelParams", "BenchmarkParams", "CHECKPOINT_ROOT", "DecontamParams", "DedupParams", "DpoParams", "ENGINES", "EngineOptions", "EvalDevParams", "EvalParams", "EvalTarget", "EvolveParams", "EvolveRound", "ExecutionCheckParams", "FILTER_STEPS", "FilterParams", "Float", "GenerateParams", "HFOptions", "HeuristicsParams", "JudgeParams", "LoraParams", "MergeParams", "MlflowParams", "OpenAIOptions", "Params", "ParamsError", "PromoteParams", "ReportParams", "SamplingParams", "SandboxParams", "Section", "SelfSampleParams", "SftDataParams", "SftQloraParams", "SftQuantizationParams", "SplitParams", "TeacherParams", "VLLMOptions", "accelerate_distributed_type", "load_params", "parse_params"]
