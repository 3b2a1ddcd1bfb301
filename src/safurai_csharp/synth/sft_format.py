"""How an example becomes a supervised fine-tuning record.

The paper trains with an Alpaca-style prompt and loss on the response only. Each record
carries that as TRL's prompt-completion pair (TRL then masks the prompt: completion-only
loss with no collator tricks) and as chat `messages` for trainers that apply the model's
chat template instead.
"""

from __future__ import annotations

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def response(solution: str) -> str:
    return f"```csharp\n{solution.strip()}\n```"


def sft_record(example: dict) -> dict:
    answer = response(example["solution"])
    return {
        "id": example["id"],
        "prompt": ALPACA_PROMPT.format(instruction=example["instruction"].strip()),
        "completion": answer,
        "messages": [{"role": "user", "content": example["instruction"].strip()},
                     {"role": "assistant", "content": answer}],
        "instruction": example["instruction"],
        "output": answer,
        "tests": example["tests"],
        "topic": example.get("topic"),
        "round": example.get("round", 0),
        "method": example.get("method"),
        "parent_id": example.get("parent_id"),
    }
