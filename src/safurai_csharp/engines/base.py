"""Engine interface and MultiPL-E's prompt/stop rules (no heavy imports here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingConfig:
    """What to sample. temperature 0 means greedy decoding (top_p, top_k are then ignored).
    top_k 0 = off."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 400
    stop: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1 (got n={self.n}, max_new_tokens={self.max_new_tokens})")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1 (got {self.temperature}, {self.top_p})")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or a positive number of tokens (got {self.top_k})")
        if any(not s for s in self.stop):
            raise ValueError("stop tokens must be non-empty strings")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


Message = dict[str, str]  # {"role": "system" | "user" | "assistant" | ..., "content": text}
Conversation = list[Message]


class Progress(Protocol):
    """An engine's progress hook, `engine.on_progress(done, total, generated_tokens)`, for live
    metrics (tracking.LiveProgress): `done` of the `total` prompts of the current generate/chat
    call have all their samples, `generated_tokens` so far in that call (None where the engine
    cannot tell cheaply). Each call reports (0, total, 0) when it starts, then as prompts
    finish (done never decreases), and (total, total, tokens) when it ends. Called from the
    thread that called generate/chat; it only observes and never changes what is sampled."""

    def __call__(self, done: int, total: int, generated_tokens: int | None) -> None: ...


class Engine(Protocol):
    """Generates `sampling.n` completions per prompt (or conversation); each is already cut at
    the first stop token. `last_stats` describes the latest call (at least engine,
    generated_tokens, prompt_tokens, seconds). `on_progress` (None by default, set by the
    caller) is the Progress hook every engine calls while it generates.

    `seeds`, when given, holds one int per prompt: the samples of prompt i then depend only on
    (prompt i, seeds[i], sampling), never on which other prompts share the call, so a resumed
    synthetic-data run reproduces an uninterrupted one. Without `seeds` every engine keeps its
    batch-level seeding from `sampling.seed` (what the eval stage has always used).
    Greedy decoding (temperature 0) ignores seeds.
    """

    last_stats: dict[str, Any]
    on_progress: Progress | None

    def generate(self, prompts: list[str], sampling: SamplingConfig,
                 seeds: list[int] | None = None) -> list[list[str]]:
        """Completion style: each text continues the raw prompt (no chat template)."""

    def chat(self, conversations: list[Conversation], sampling: SamplingConfig,
             seeds: list[int] | None = None) -> list[list[str]]:
        """Chat style: each text is the assistant's next message, the conversation rendered by
        the model's own chat template with the generation prompt appended."""

    def close(self) -> None:
        """Free the model, worker processes or connections; the engine is unusable afterwards."""


@dataclass(frozen=True)
class Request:
    """One part of a combined call (`together`): prompts, or conversations when `chat`, with
    their own sampling and per-prompt seeds."""

    items: list[Any]
    sampling: SamplingConfig
    seeds: list[int] | None = None
    chat: bool = False


def together(engine: Engine, requests: list[Request]) -> list[list[list[str]]]:
    """Each request's completions, as `generate`/`chat` would give them, from one engine call
    where the engine has `together` (vLLM: one scheduler pass over every part, so one part's
    last few long sequences decode beside the others instead of in a nearly empty batch), else
    from one call per part. With `seeds` the samples are the same either way (see Engine)."""
    own = getattr(engine, "together", None)
    if own is not None:
        return own(requests)
    return separately(engine, requests)


def separately(engine: Any, requests: list[Request]) -> list[list[list[str]]]:
    """`together` for an engine without it: one `chat`/`generate` call per request."""
    return [(engine.chat if r.chat else engine.generate)(r.items, r.sampling, seeds=r.seeds) for r in requests]


class AcrossCalls:
    """A Progress hook for an engine that is called several times for `total` prompts in all
    (the completion protocol makes one call per stop list): `hook(done, total, tokens)` sees
    the prompts and generated tokens of every call so far (tokens None once a call had none)."""

    def __init__(self, total: int, hook: Callable[[int, int, int | None], None]) -> None:
        self.total, self.hook = total, hook
        self.before: tuple[int, int | None] = (0, 0)  # the calls that ended: prompts, tokens
        self.call: tuple[int, int | None] = (0, 0)    # the current call so far

    def __call__(self, done: int, total: int, generated_tokens: int | None) -> None:
        if done == 0:  # a call starts: the previous one is over
            self.before = _add(self.before, self.call)
        self.call = (done, generated_tokens)
        prompts, tokens = _add(self.before, self.call)
        self.hook(prompts, self.total, tokens)


def _add(a: tuple[int, int | None], b: tuple[int, int | None]) -> tuple[int, int | None]:
    return a[0] + b[0], None if a[1] is None or b[1] is None else a[1] + b[1]


def check_seeds(seeds: list[int] | None, count: int) -> None:
    """`seeds` must be None or hold exactly one int per prompt."""
    if seeds is None:
        return
    if len(seeds) != count:
        raise ValueError(f"seeds must hold one seed per prompt: got {len(seeds)} seeds for {count} prompts")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
    if bad:
        raise ValueError(f"seeds must be ints, got {bad[:3]!r}")


def check_conversation(conversation: Conversation) -> None:
    """A non-empty list of {"role": str, "content": str} dicts (what every chat API takes)."""
    if not isinstance(conversation, list) or not conversation:
        raise ValueError(f"a conversation is a non-empty list of messages, got {conversation!r:.80}")
    for m in conversation:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"a message is a dict with str 'role' and 'content', got {m!r:.80}")


def render_chat(tokenizer: Any, conversation: Conversation, model: str = "the model") -> str:
    """`conversation` as the prompt text the checkpoint's chat template makes of it, ending with
    the assistant's generation prompt.

    The rendered text already holds every special token the template wants (BOS included), so
    callers must tokenize it with add_special_tokens=False, as transformers'
    apply_chat_template(tokenize=True) and vLLM's LLM.chat do; otherwise Llama-family
    tokenizers would get a second BOS.
    """
    check_conversation(conversation)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"the tokenizer of {model} has no chat template, so chat() cannot render "
                         "conversations; use generate() with raw prompts or a chat/instruct checkpoint")
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


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
