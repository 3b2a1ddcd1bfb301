"""jsonl.py: model output of any kind round-trips; bad files are one clear error."""

import pytest

from safurai_csharp.jsonl import JsonlError, read_jsonl, write_jsonl


def test_a_lone_surrogate_is_written_as_an_escape_and_read_back(tmp_path):
    rows = [{"text": "ok é"}, {"text": "bad \ud800 half"}]
    write_jsonl(tmp_path / "x.jsonl", rows)
    assert read_jsonl(tmp_path / "x.jsonl") == rows
    assert "é" in (tmp_path / "x.jsonl").read_text(encoding="utf-8")  # only the bad row is escaped


@pytest.mark.parametrize("data,message", [(b'{"a": "\xff"}\n', "x.jsonl:1: not UTF-8"),
                                          (b"[" * 100000 + b"\n", "x.jsonl:1: malformed JSON")])
def test_unreadable_lines_are_a_user_error(tmp_path, data, message):
    (tmp_path / "x.jsonl").write_bytes(data)
    with pytest.raises(JsonlError, match=message):
        read_jsonl(tmp_path / "x.jsonl")
