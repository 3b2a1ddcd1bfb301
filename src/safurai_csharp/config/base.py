"""What every params section shares: strict frozen models, the float reading of `3e-4`, the
error users see, and where resumable runs keep their state."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from ..errors import UserError


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


# Where resumable runs keep their state (generate/evolve chunks: synth/checkpoint.py; the
# Trainer's checkpoints: training/resume.py): under the repository, outside every DVC out.
CHECKPOINT_ROOT = Path(".cache/checkpoints")
