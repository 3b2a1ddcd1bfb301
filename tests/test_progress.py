"""progress.py: bars that pace themselves in a log, and the long steps that show one."""

import io
import os

from safurai_csharp.progress import LOG_INTERVAL_S, bar, quiet_logs
from safurai_csharp.synth.checkpoint import run_chunks


def test_in_a_log_a_bar_prints_a_line_per_interval_not_per_update(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    quiet_logs(io.StringIO())  # not a terminal
    assert os.environ["TQDM_MININTERVAL"] == str(LOG_INTERVAL_S)
    out = io.StringIO()
    for _ in bar(range(200000), file=out, desc="x"):
        pass
    assert out.getvalue().count("\r") <= 3 and "200000/200000" in out.getvalue()


def test_a_value_the_user_set_wins(monkeypatch):
    monkeypatch.setenv("TQDM_MININTERVAL", "1")
    quiet_logs(io.StringIO())
    assert os.environ["TQDM_MININTERVAL"] == "1"


def test_chunked_stages_show_tasks_done_and_resumed(tmp_path, capsys):
    path = tmp_path / "generate" / "key.jsonl"
    path.parent.mkdir()
    work = lambda idx: ([{"index": i} for i in idx], {"tokens": len(idx)})  # noqa: E731
    run_chunks(path, total=10, size=4, work=work, stop_after=1)
    run_chunks(path, total=10, size=4, work=work)
    err = capsys.readouterr().err
    assert "generate" in err and "10/10" in err and "4/10" in err  # the rerun starts at the resumed tasks
