"""sft_data rows of every format become text prompt/completion pairs for TRL: chat rows through
the student's own chat template, text rows untouched, malformed rows refused."""

import json

import pytest

from safurai_csharp.jsonl import JsonlError
from safurai_csharp.training.data import load_split, render_rows

CHAT = {"prompt": [{"role": "user", "content": "Square x."}],
        "completion": [{"role": "assistant", "content": "```csharp\nreturn x * x;\n```"}]}
TEXT = {"prompt": "class Problem {\n    public static long Sq(long x) {", "completion": "\n        return x * x;\n    }\n"}


def test_chat_rows_render_with_the_students_template(tmp_path):
    from safurai_csharp.testing import make_tiny_model
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(make_tiny_model(tmp_path / "m"))
    chat, text = render_rows([CHAT, TEXT], tok)
    assert text == TEXT
    assert chat["prompt"] == tok.apply_chat_template(CHAT["prompt"], tokenize=False, add_generation_prompt=True)
    assert "return x * x;" in chat["completion"] and "Square x." not in chat["completion"]
    assert chat["completion"].endswith("```<|im_end|>")  # the turn ends the answer
    whole = tok.apply_chat_template(CHAT["prompt"] + CHAT["completion"], tokenize=False)
    assert whole.startswith(chat["prompt"] + chat["completion"].rstrip())


def test_load_split_takes_both_kinds_and_refuses_mixed_rows(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(CHAT) + "\n" + json.dumps(TEXT) + "\n")
    assert [type(r["prompt"]) for r in load_split(tmp_path, "train").rows] == [list, str]
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": CHAT["prompt"], "completion": "text"}) + "\n")
    with pytest.raises(JsonlError, match="both strings or both lists"):
        load_split(tmp_path, "train")
