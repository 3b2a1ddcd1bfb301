"""The training data: stage sft_data's train.jsonl / validation.jsonl as TRL prompt-completion
datasets. Only `prompt` and `completion` are kept, and the loss is on the completion tokens
only (completion_only_loss).

Rows reach TRL already tokenized (:func:`tokenize_rows`): the prompt tokenized alone, then the
completion, as the model meets them at inference. TRL's own rule tokenizes prompt + completion
as one string, and with Qwen's pre-tokenizer a MultiPL-E prompt's last token " {" and the
body's first "\n" merge into " {\n": every completion row of HumanEval-C#'s shape (measured:
158 of 158 benchmark prompts) then trained the model on a context it never sees at inference,
where the prompt ends in " {" and the body's first token is its own.

A row's prompt and completion are text, or (the `chat` format) message lists, which
:func:`render_rows` turns into text with the student's own chat template, so rows of every
format train side by side in one dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hashing import file_sha256
from ..jsonl import JsonlError, read_jsonl

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Split:
    name: str
    path: Path
    rows: list[dict[str, str]]
    sha256: str | None  # None: the file does not exist (an empty validation split)


def split_path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / f"{name}.jsonl"


def load_split(data_dir: str | Path, name: str) -> Split:
    path = split_path(data_dir, name)
    if not path.is_file():
        if name == "train":
            raise FileNotFoundError(f"{path}: no training data (run stage sft_data first: dvc repro sft_data)")
        return Split(name, path, [], None)
    rows = []
    for i, row in enumerate(read_jsonl(path), 1):
        prompt, completion = row.get("prompt"), row.get("completion")
        text = isinstance(prompt, str) and isinstance(completion, str) and bool(completion.strip())
        if not text and not (_messages(prompt) and _messages(completion)):
            raise JsonlError(f"{path}: row {i} needs fields prompt and a non-empty completion, both strings or "
                             f"both lists of {{role, content}} messages (the format of stage sft_data)")
        # sft_data's format name (completion, chat, alpaca) decides whether the row ends with EOS
        rows.append({"prompt": prompt, "completion": completion,
                     "format": row["format"] if isinstance(row.get("format"), str) else None})
    if name == "train" and not rows:
        raise JsonlError(f"{path}: the training split is empty")
    return Split(name, path, rows, file_sha256(path))


def _messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)


def render_rows(rows: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """Message-list rows as text through the tokenizer's chat template: the prompt with the
    assistant's generation prompt, the completion = the rest of the rendered conversation
    (the assistant's message and its end-of-turn token; TRL appends the tokenizer's EOS when
    that is another token, as it does to every text completion)."""
    out = []
    for row in rows:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list):
            if not getattr(tokenizer, "chat_template", None):
                raise JsonlError("chat-format rows need a student with a chat template; this tokenizer has none "
                                 "(use sft_data.formats completion or alpaca)")
            head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            whole = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
            if not whole.startswith(head):
                raise JsonlError("the chat template renders the prompt differently inside the whole conversation")
            # ends with the end-of-turn token: the template's trailing newline is not the answer
            completion = whole[len(head):].rstrip()
            prompt = head
        out.append({"prompt": prompt, "completion": completion, "format": row.get("format")})
    return out


# How rows become token ids; part of the resume key, so a checkpoint is never resumed under another rule.
TOKENIZATION = "prompt-then-completion; EOS per completion_eos"

# sft_data's MultiPL-E rows (synth/completion_format.py): a method body inside a file that goes on.
# The name is synth/sft_format.FORMATS' (not imported: sft_qlora would depend on the rendering code;
# tests/training/test_data.py keeps the two equal).
COMPLETION_FORMAT = "completion"


@dataclass(frozen=True)
class Tokenized:
    rows: list[dict[str, list[int]]]  # input_ids + completion_mask (1 = the token carries loss)
    joint_rows: int  # rows tokenized TRL's way because the concatenation would not decode to the text


def tokenize_rows(rows: list[dict[str, str]], tokenizer: Any, *, completion_eos: bool = True) -> Tokenized:
    """Text rows (after :func:`render_rows`) as token ids: the prompt as inference tokenizes it
    (special tokens included), the completion tokenized on its own, then EOS unless the
    completion already ends with it (TRL's rule), or unless the row is in the completion format
    and `completion_eos` is false. Such a row is a method body in a source file that goes on
    (the class, the tests): MultiPL-E cuts it at its stop token, and an EOS after it teaches the
    model that the file ends there, which it makes true by closing the class as well
    (sft_qlora.completion_eos in params.yaml: the measurement).

    A tokenizer that adds a prefix space to a text on its own (SentencePiece, e.g. CodeLlama's)
    would change the text at the seam; such a row is tokenized TRL's way (prompt + completion as
    one string, the loss from where it leaves the prompt's tokens) and counted in `joint_rows`."""
    out, joint = [], 0
    eos = tokenizer.eos_token
    for row in rows:
        prompt, completion = row["prompt"], row["completion"]
        prompt_ids = tokenizer(prompt)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if _decode(tokenizer, prompt_ids + completion_ids) != _decode(tokenizer, prompt_ids) + completion:
            joint += 1
            whole = tokenizer(prompt + completion)["input_ids"]
            keep = next((i for i, (a, b) in enumerate(zip(prompt_ids, whole)) if a != b),
                        min(len(prompt_ids), len(whole)))
            prompt_ids, completion_ids = whole[:keep], whole[keep:]
        if not completion.endswith(eos) and (completion_eos or row.get("format") != COMPLETION_FORMAT):
            completion_ids = [*completion_ids, tokenizer.eos_token_id]
        out.append({"input_ids": prompt_ids + completion_ids,
                    "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids)})
    return Tokenized(out, joint)


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def load_splits(data_dir: str | Path) -> dict[str, Split]:
    return {name: load_split(data_dir, name) for name in SPLITS}


def to_dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list(rows)
