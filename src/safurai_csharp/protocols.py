"""How a model is asked to solve a MultiPL-E-shaped problem: the evaluation protocols.

Both return completions in MultiPL-E's sense (the text after the stripped prompt, before the
stop token), so the program the sandbox runs is always prompt + completion + "\\n" + tests and
one scorer serves both.

* ``completion``: MultiPL-E's protocol, the headline and what published numbers use: the model
  continues `prompt.strip()` as plain text, cut at the stop tokens.
* ``chat``: how instruct models are evaluated by Qwen2.5-Coder's and EvalPlus's harnesses: the
  model's chat template asks for the function, the function is found in the reply (in a
  ```csharp block, else the whole reply) and its body becomes the completion. Helper methods
  the reply declares beside the function are not kept (the tests close the method right after
  the completion, as in the completion protocol); a reply without the function scores as an
  empty body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from .engines import SamplingConfig, strip_prompt
from .synth.program import method_spans

CHAT_INSTRUCTION = ("Complete the following C# function. Reply with the whole function in one ```csharp "
                    "code block.\n\n```csharp\n{prompt}\n```")
_FENCE = re.compile(r"```[ \t]*(?:csharp|cs|c#|C#)?[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_ENTRY = re.compile(r"public\s+static\s+[^\n(]*?\b([A-Za-z_]\w*)\s*(?:<[^>\n]*>)?\s*\(")

Problem = Mapping[str, Any]


class EvalProtocol(Protocol):
    name: str

    def sample(self, engine: Any, problems: Sequence[Problem], sampling: SamplingConfig) -> list[list[str]]:
        """`sampling.n` completions per problem, in MultiPL-E's sense."""


def entry_point(problem: Problem) -> str:
    """The function a problem asks for: its `entry_point` field, else the prompt's last
    `public static ... Name(` head."""
    if problem.get("entry_point"):
        return str(problem["entry_point"])
    names = _ENTRY.findall(problem["prompt"])
    if not names:
        raise ValueError(f"{problem.get('name')}: no `public static` method in the prompt")
    return names[-1]


def extract_body(reply: str, entry: str) -> str:
    """The body of method `entry` in a chat reply, as a completion ("" when it is not there).

    Blocks are searched in order (an unterminated last block counts), then the reply itself."""
    for code in [*_FENCE.findall(reply), reply]:
        for span in method_spans(code):
            if span.name != entry:
                continue
            raw = code[span.body_start:span.body_end]
            if raw.startswith("=>"):
                expr = raw[2:-1].strip()
                return f"\n        {'' if span.ret == 'void' else 'return '}{expr};"
            return raw[1:-1].rstrip()
    return ""


class CompletionProtocol:
    name = "completion"

    def sample(self, engine: Any, problems: Sequence[Problem], sampling: SamplingConfig) -> list[list[str]]:
        # All MultiPL-E problems share one stop list in practice, but honour each problem's own.
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, p in enumerate(problems):
            groups.setdefault(tuple(p["stop_tokens"]), []).append(i)
        out: list[list[str]] = [[] for _ in problems]
        stats: dict[str, Any] = {}
        for stops, idx in groups.items():
            texts = engine.generate([strip_prompt(problems[i]["prompt"]) for i in idx],
                                    replace(sampling, stop=list(stops)))
            for i, t in zip(idx, texts, strict=True):
                out[i] = t
            _add_stats(stats, engine.last_stats)
        engine.last_stats = stats
        return out


class ChatProtocol:
    name = "chat"

    def sample(self, engine: Any, problems: Sequence[Problem], sampling: SamplingConfig) -> list[list[str]]:
        conversations = [[{"role": "user", "content": CHAT_INSTRUCTION.format(prompt=strip_prompt(p["prompt"]))}]
                         for p in problems]
        replies = engine.chat(conversations, replace(sampling, stop=[]))
        return [[extract_body(r, entry_point(p)) for r in texts] for p, texts in zip(problems, replies, strict=True)]


def _add_stats(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for k, v in part.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v
        else:
            total[k] = v


PROTOCOLS: dict[str, EvalProtocol] = {"completion": CompletionProtocol(), "chat": ChatProtocol()}


def get_protocol(name: str) -> EvalProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
