"""Generation engines: one small Protocol, an explicit registry, MultiPL-E's prompt/stop rules.

MultiPL-E is completion-style: the model continues the raw prompt text (no chat template),
and each completion is cut at the first stop token. The synthetic-data stages use `chat`
(each engine renders the checkpoint's chat template, or the server does) with per-prompt
`seeds`, so a resumed run reproduces an uninterrupted one. The caller strips prompts with
`strip_prompt` (MultiPL-E's `prompt.strip()`); engines take prompts as given.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from .base import Conversation, Engine, Message, SamplingConfig, stop_at_stop_token, strip_prompt
from .hf_engine import HFEngine
from .openai_engine import OpenAIEngine
from .vllm_engine import VLLMEngine


ENGINES: dict[str, type] = {"hf": HFEngine, "openai": OpenAIEngine, "vllm": VLLMEngine}


def _accepted(cls: type) -> set[str]:
    return {n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "model_dir")}


def make_engine(name: str, model_dir: Path | None, **options: Any) -> Engine:
    """Build engine `name` on a checkpoint directory.

    params.yaml has one `engine_options` block shared by every engine, so options that only
    another registered engine understands are dropped here (e.g. batch_size for vllm); an
    option no engine knows is an error. `model_dir` may be None only for engines that do not
    load a model themselves (`openai`: the server holds it).
    """
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    known = set().union(*(_accepted(c) for c in ENGINES.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown engine option(s) {unknown}; known: {', '.join(sorted(known))}")
    cls = ENGINES[name]
    if model_dir is None and getattr(cls, "needs_model_dir", True):
        raise ValueError(f"engine {name!r} needs a model_dir")
    if getattr(cls, "needs_model_dir", True) and not Path(model_dir).is_dir():
        # not left to transformers/vLLM, which would take the path for a hub id and fail deep inside
        raise FileNotFoundError(f"{model_dir}: no model checkpoint there (run the stage that writes it first)")
    mine = _accepted(cls)
    return cls(None if model_dir is None else Path(model_dir), **{k: v for k, v in options.items() if k in mine})


__all__ = ["ENGINES", "Conversation", "Engine", "HFEngine", "Message", "OpenAIEngine", "SamplingConfig",
           "VLLMEngine", "make_engine", "stop_at_stop_token", "strip_prompt"]
