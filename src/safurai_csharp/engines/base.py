"""Engine interface and MultiPL-E's prompt/stop rules (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingConfig:
    """What to sample. temperature 0 means greedy decoding (top_p is then ignored)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 400
    stop: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1 (got n={self.n}, max_new_tokens={self.max_new_tokens})")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1 (got {self.temperature}, {self.top_p})")
        if any(not s for s in self.stop):
            raise ValueError("stop tokens must be non-empty strings")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Engine(Protocol):
    """Generates `sampling.n` completions per prompt; each continues the prompt text and is
    already cut at the first stop token. `last_stats` describes the latest call
    (at least generated_tokens, prompt_tokens, seconds)."""

    last_stats: dict[str, Any]

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[str]]: ...

    def close(self) -> None:
        """Free the model and any worker processes; the engine is unusable afterwards."""


def strip_prompt(prompt: str) -> str:
    """MultiPL-E's prompt rule: `prompt.strip()` (automodel.py and automodel_vllm.py).

    It strips both ends; for HumanEval-C# only the trailing "\\n" after the method's "{" matters.
    Without it a model that sees "{\\n" tends to start a new line with a comment and keeps
    commenting (we measured SmolLM2 at 0/158). The executed program still uses the original,
    unstripped prompt: prompt + completion + "\\n" + tests.
    """
    return prompt.strip()


def stop_at_stop_token(completion: str, stop: list[str]) -> str:
    """The prefix of `completion` before the earliest occurrence of any stop token
    (MultiPL-E's stop_at_stop_token). `completion` must not include the prompt."""
    cut = len(completion)
    for token in stop:
        i = completion.find(token)
        if i != -1 and i < cut:
            cut = i
    return completion[:cut]
