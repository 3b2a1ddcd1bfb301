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

from .base import Conversation, Engine, Message, Request, SamplingConfig, stop_at_stop_token, strip_prompt, together
from .hf_engine import HFEngine
from .openai_engine import OpenAIEngine
from .vllm_engine import VLLMEngine


ENGINES: dict[str, type] = {"hf": HFEngine, "openai": OpenAIEngine, "vllm": VLLMEngine}


def _accepted(cls: type) -> set[str]:
    return {n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "model_dir")}


def make_engine(name: str, model_dir: Path | None, **options: Any) -> Engine:
    """Build engine `name` on a checkpoint directory with exactly its own options (params.yaml's
    `engine_options.<name>`, config.EngineOptions.of): an option the engine does not take is an
    error, never dropped. `model_dir` may be None only for engines that do not load a model
    themselves (`openai`: the server holds it).
    """
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    cls = ENGINES[name]
    unknown = sorted(set(options) - _accepted(cls))
    if unknown:
        raise ValueError(f"engine {name!r} does not take option(s) {unknown}; it takes: "
                         f"{', '.join(sorted(_accepted(cls)))}")
    if model_dir is None and getattr(cls, "needs_model_dir", True):
        raise ValueError(f"engine {name!r} needs a model_dir")
    if getattr(cls, "needs_model_dir", True) and not Path(model_dir).is_dir():
        # not left to transformers/vLLM, which would take the path for a hub id and fail deep inside
        raise FileNotFoundError(f"{model_dir}: no model checkpoint there (run the stage that writes it first)")
    return cls(None if model_dir is None else Path(model_dir), **options)


__all__ = ["ENGINES", "Conversation", "Engine", "HFEngine", "Message", "OpenAIEngine", "Request", "SamplingConfig",
           "VLLMEngine", "make_engine", "stop_at_stop_token", "strip_prompt", "together"]
