"""How an example becomes supervised fine-tuning rows, in the formats a student is used in.

Every row is a TRL prompt-completion pair with the loss on the completion only:

* ``completion``: the task as a MultiPL-E C# prefix (usings, `class Problem`, the statement as
  `//` lines, the signature; synth/completion_format.py), stripped as MultiPL-E strips it, and
  the method body up to and including MultiPL-E's stop token: the behaviour HumanEval-C#
  measures and code completion uses. Only examples that render as one method have it.
* ``chat``: the statement as the user's message and the C# code block as the assistant's, as
  message lists; training renders them with the student's own chat template (training/data.py),
  so an instruct student is trained in the format its chat use sees.
* ``alpaca``: the paper's Alpaca prompt (for base students, as the paper trained CodeLlama-34B).

Sources: ``teacher`` rows answer with the teacher's validated solution, ``student`` rows with one
of the student's own passing samples (stage self_sample); a row says which in `source`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.base import strip_prompt

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
FORMATS = ("completion", "chat", "alpaca")


def response(solution: str) -> str:
    return f"```csharp\n{solution.strip()}\n```"


def function_text(task: Mapping[str, Any], completion: str) -> str:
    """The whole method a completion makes with its task's signature (what a chat answer holds)."""
    signature = task["prompt"].rstrip().splitlines()[-1]
    return textwrap.dedent(signature + completion + "\n" + signature[:len(signature) - len(signature.lstrip())] + "}")


def rows(example: Mapping[str, Any], formats: Sequence[str], *, source: str = "teacher",
         completion: str | None = None, sample: int = 0) -> list[dict[str, Any]]:
    """The example's rows in each of `formats` it can take. `completion` (with source
    "student") is a student's passing body for the example's task; else the teacher's
    solution answers."""
    task = example.get("task")
    if source == "student":
        if task is None or completion is None:
            raise ValueError("a student row needs the example's task and the student's completion")
        body, code = completion, function_text(task, completion)
    else:
        body, code = (task or {}).get("completion"), example["solution"]
    instruction = example["instruction"].strip()
    meta = {"task_id": example["id"], "source": source, "topic": example.get("topic"),
            "round": example.get("round", 0), "method": example.get("method"), "parent_id": example.get("parent_id")}
    out = []
    for fmt in formats:
        if fmt == "completion":
            if task is None or body is None:
                continue  # not one MultiPL-E method (stage split's render_failures)
            prompt: Any = strip_prompt(task["prompt"])
            answer: Any = body + task["stop_tokens"][0]
        elif fmt == "chat":
            prompt = [{"role": "user", "content": instruction}]
            answer = [{"role": "assistant", "content": response(code)}]
        elif fmt == "alpaca":
            prompt, answer = ALPACA_PROMPT.format(instruction=instruction), response(code)
        else:
            raise ValueError(f"unknown SFT format {fmt!r}; known: {', '.join(FORMATS)}")
        out.append({"id": f"{example['id']}:{source}{sample}:{fmt}", "format": fmt, "prompt": prompt,
                    "completion": answer, **meta})
    return out
