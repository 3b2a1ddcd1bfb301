"""The dtypes the pipeline names in params (base model, engines, training, merge) and the torch
dtype of a name: one list, one conversion (torch is imported only when a dtype is converted)."""

from __future__ import annotations

from typing import Any

FLOAT_DTYPES = ("bfloat16", "float16", "float32")
ENGINE_DTYPES = ("auto", *FLOAT_DTYPES)    # engines also take "auto": the checkpoint's own dtype
STORAGE_DTYPES = ("uint8", *FLOAT_DTYPES)  # bitsandbytes' 4-bit storage (sft_qlora.quantization.quant_storage)


def torch_dtype(name: str, allowed: tuple[str, ...] = FLOAT_DTYPES) -> Any:
    """torch.<name>, for a name in `allowed` (a ValueError naming them otherwise)."""
    if name not in allowed:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(allowed)}")
    import torch

    return getattr(torch, name)
