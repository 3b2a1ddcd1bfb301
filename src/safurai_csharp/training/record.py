"""The training record: how an adapter was trained, the contract between sft_qlora and merge.

sft_qlora writes it into the adapter directory (`FILE`); merge reads it to rebuild the weights
the adapter was trained against (the 4-bit settings), to check that `merge.base_dir` is the
base it was trained on, and to tag the registered model with the training data's hashes.

Versioned: `schema_version` 1 is the format written since the first sft_qlora run, whose
files carry no version field. Version 1 is therefore written without it (adapters trained
before and after this module are byte-identical, so no cached sft_qlora output went stale);
a later version writes its number, and a reader refuses a version it does not know instead
of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import SftQuantizationParams
from ..dtypes import FLOAT_DTYPES
from ..errors import UserError

FILE = "training_record.json"  # in the adapter directory
SCHEMA_VERSION = 1
BNB_BLOCKSIZE = 64  # bitsandbytes' 4-bit block size; transformers does not expose another


class RecordError(UserError, ValueError):
    """A training record that cannot be read: the message names the file and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantization(_Strict):
    """How training loaded the base: what merge's `into: dequantized` and its reference rebuild."""

    load_in_4bit: bool = True
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    blocksize: int = BNB_BLOCKSIZE
    dtype: Literal[FLOAT_DTYPES] = "bfloat16"          # the weights' dtype when bitsandbytes quantized them
    compute_dtype: Literal[FLOAT_DTYPES] = "bfloat16"
    quant_storage: str = "uint8"

    @classmethod
    def from_params(cls, q: SftQuantizationParams) -> "Quantization":
        # sft_qlora loads the base in compute_dtype, so that is the dtype bitsandbytes quantized.
        return cls(load_in_4bit=q.enabled, quant_type=q.quant_type, double_quant=q.double_quant,
                   dtype=q.compute_dtype, compute_dtype=q.compute_dtype, quant_storage=q.quant_storage or "uint8")


class BaseModelRef(_Strict):
    dir: str
    sha256: str


class DataSplit(_Strict):
    sha256: str | None  # None: no such split (a run without validation data)
    rows: int


class TrainingRecord(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    base_model: BaseModelRef
    quantization: Quantization
    lora: dict[str, Any]               # sft_qlora.lora as trained
    data: dict[str, DataSplit]         # per split: sha256 of the rows and their count
    steps: int
    seed: int
    libraries: dict[str, Any]

    def to_json(self) -> str:
        doc = self.model_dump(mode="json", exclude={"schema_version"} if self.schema_version == 1 else None)
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def write(self, adapter_dir: str | Path) -> Path:
        from ..jsonl import write_atomic

        path = Path(adapter_dir) / FILE
        write_atomic(path, self.to_json())
        return path

    def lineage_tags(self, path: str | Path) -> dict[str, str]:
        """Training data hashes and row counts, steps and seed: MLflow tags of the merged model."""
        tags = {"training.record": str(path)}
        for split, info in self.data.items():
            tags.update({f"training.data.{split}.sha256": str(info.sha256), f"training.data.{split}.rows": str(info.rows)})
        tags.update({"training.steps": str(self.steps), "training.seed": str(self.seed)})
        return tags


def read(adapter_dir: str | Path) -> TrainingRecord | None:
    """The record in `adapter_dir`, or None when there is none (an adapter trained elsewhere)."""
    path = Path(adapter_dir) / FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        if isinstance(raw, dict) and raw.get("schema_version", 1) != SCHEMA_VERSION:
            raise RecordError(f"{path}: training record schema_version {raw['schema_version']!r}; this code "
                              f"reads version {SCHEMA_VERSION} (retrain with this version, or update)")
        return TrainingRecord.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"{path}: not a usable training record: {exc}") from None
