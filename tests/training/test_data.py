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
    assert text == {**TEXT, "format": None}  # text untouched; the format rides along (tokenize_rows reads it)
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


def _metaspace_tokenizer():
    """A SentencePiece-style tokenizer (CodeLlama's kind): a text on its own gets a prefix space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from safurai_csharp.testing import _CORPUS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train_from_iterator(_CORPUS.splitlines(keepends=True) * 4, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def test_rows_are_tokenized_as_inference_meets_them():
    """Qwen's pre-tokenizer merges a MultiPL-E prompt's last " {" with the body's first "\\n".
    Tokenizing prompt + completion as one string (TRL's rule) would train on " {\\n", a context
    the model never sees: at inference the prompt is tokenized alone and ends in " {"."""
    from safurai_csharp.testing import make_tiny_tokenizer
    from safurai_csharp.training.data import tokenize_rows

    tok = make_tiny_tokenizer(qwen_split=True)
    prompt_ids = tok(TEXT["prompt"])["input_ids"]
    assert tok(TEXT["prompt"] + TEXT["completion"])["input_ids"][:len(prompt_ids)] != prompt_ids  # the trap is real

    out = tokenize_rows([TEXT], tok)
    ids, mask = out.rows[0]["input_ids"], out.rows[0]["completion_mask"]
    assert out.joint_rows == 0 and len(ids) == len(mask)
    assert ids[:len(prompt_ids)] == prompt_ids and mask == [0] * len(prompt_ids) + [1] * (len(ids) - len(prompt_ids))
    assert tok.decode(ids[len(prompt_ids):]) == TEXT["completion"] + tok.eos_token


def test_a_completion_that_ends_with_eos_gets_no_second_one():
    from safurai_csharp.testing import make_tiny_tokenizer
    from safurai_csharp.training.data import tokenize_rows

    tok = make_tiny_tokenizer(qwen_split=True)
    row = {"prompt": TEXT["prompt"], "completion": TEXT["completion"] + tok.eos_token}
    ids = tokenize_rows([row], tok).rows[0]["input_ids"]
    assert ids.count(tok.eos_token_id) == 1 and ids[-1] == tok.eos_token_id


def test_completion_eos_false_leaves_only_completion_format_rows_open():
    """A MultiPL-E body is cut by the stop token inside a file that goes on: with completion_eos
    false its row ends without EOS; rows of other formats keep theirs, and so does the default."""
    from safurai_csharp.testing import make_tiny_tokenizer
    from safurai_csharp.training.data import tokenize_rows

    tok = make_tiny_tokenizer(qwen_split=True)
    body = {**TEXT, "format": "completion"}
    other = {**TEXT, "format": "alpaca"}
    open_rows = tokenize_rows([body, other, TEXT], tok, completion_eos=False).rows
    assert [r["input_ids"][-1] == tok.eos_token_id for r in open_rows] == [False, True, True]
    assert tok.decode(open_rows[0]["input_ids"]).endswith(TEXT["completion"])
    assert open_rows[0]["completion_mask"][-1] == 1
    assert all(r["input_ids"][-1] == tok.eos_token_id for r in tokenize_rows([body, other], tok).rows)


def test_completion_eos_false_reaches_rows_read_from_disk(tmp_path):
    """The trainer's path: sft_data's jsonl -> load_split -> render_rows -> tokenize_rows."""
    from safurai_csharp.testing import make_tiny_tokenizer
    from safurai_csharp.training.data import tokenize_rows

    (tmp_path / "train.jsonl").write_text(json.dumps({**TEXT, "format": "completion", "id": "a"}) + "\n"
                                          + json.dumps({**TEXT, "format": "alpaca", "id": "b"}) + "\n")
    tok = make_tiny_tokenizer(qwen_split=True)
    rows = render_rows(load_split(tmp_path, "train").rows, tok)
    ends = [r["input_ids"][-1] == tok.eos_token_id for r in tokenize_rows(rows, tok, completion_eos=False).rows]
    assert ends == [False, True]


def test_the_trainer_knows_sft_datas_completion_rows_by_their_format():
    """training/data.COMPLETION_FORMAT names the rows synth/sft_format writes for MultiPL-E bodies:
    were one renamed, completion_eos would silently stop finding its rows."""
    from safurai_csharp.synth.sft_format import FORMATS, rows
    from safurai_csharp.training.data import COMPLETION_FORMAT

    task = {"prompt": "class Problem {\n    public static long F(long x) {\n", "completion": "\n        return x;",
            "stop_tokens": ["\n    }\n"]}
    example = {"id": "e", "instruction": "Return x.", "solution": "return x;", "task": task}
    assert COMPLETION_FORMAT in FORMATS
    assert [r["format"] == COMPLETION_FORMAT for r in rows(example, list(FORMATS))] == [f == "completion" for f in FORMATS]


def test_a_prefix_space_tokenizer_keeps_the_text_and_is_counted():
    """Tokenized on its own, a completion would gain a space at the seam; such rows are
    tokenized as one string (the text stays exact) and counted."""
    from safurai_csharp.training.data import tokenize_rows

    tok = _metaspace_tokenizer()
    row = {"prompt": "long Sq(long x) {", "completion": " return x * x; }"}
    alone = tok(row["prompt"])["input_ids"] + tok(row["completion"], add_special_tokens=False)["input_ids"]
    assert tok.decode(alone) != tok.decode(tok(row["prompt"])["input_ids"]) + row["completion"]  # the seam moves

    out = tokenize_rows([row], tok)
    ids, mask = out.rows[0]["input_ids"], out.rows[0]["completion_mask"]
    assert out.joint_rows == 1
    assert ids == tok(row["prompt"] + row["completion"])["input_ids"] + [tok.eos_token_id]
    assert mask[0] == 0 and mask[-1] == 1 and sum(mask) < len(ids)
