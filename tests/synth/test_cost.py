"""Cost accounting of the data stages, and the checkpoint's per-chunk tallies."""

import json

from safurai_csharp.synth import checkpoint, cost


class Engine:
    def __init__(self):
        self.last_stats = {}

    def chat(self, conversations, sampling, seeds=None):
        outs = [["answer " * (len(c) + 1)] for c in conversations]
        self.last_stats = {"generated_tokens": sum(len(o[0].split()) for o in outs), "prompt_tokens": 10 * len(outs)}
        return outs


def test_meter_adds_every_call_and_skips_empty_ones():
    m = cost.Meter(Engine())
    m.chat([[{"role": "user", "content": "x"}]] * 2, None)
    m.chat([], None)  # no engine call for nothing
    m.chat([[{"role": "user", "content": "x"}] * 2], None)
    m.add_seconds(1.5)
    assert m.tally["generated_tokens"] == 2 + 2 + 3 and m.tally["prompt_tokens"] == 30
    assert m.tally["seconds"] >= 1.5


def test_per_kept_and_total():
    assert cost.per_kept(4, 8000, 120) == {"kept": 4, "generated_tokens": 8000, "seconds": 120,
                                           "tokens_per_kept": 2000.0, "kept_per_minute": 2.0}
    assert cost.per_kept(0, 500, 60)["tokens_per_kept"] is None
    t = cost.total([{"generated_tokens": 100, "prompt_tokens": 5, "seconds": 2.0},
                    {"generated_tokens": 50, "prompt_tokens": 5, "seconds": 1.0}])
    assert t == {"generated_tokens": 150, "prompt_tokens": 10, "seconds": 3.0, "tokens_per_s": 50.0}


def test_a_chunk_counts_only_with_its_tally_line(tmp_path):
    path = tmp_path / "ck.jsonl"
    calls = []

    def work(idx):
        calls.append(list(idx))
        return [{"index": i, "v": i * i} for i in idx], {"generated_tokens": len(idx), "seconds": 0.1}

    whole, resumed, tallies = checkpoint.run_chunks(tmp_path / "whole.jsonl", 5, 2, work)
    assert resumed == 0 and [t["generated_tokens"] for t in tallies] == [2, 2, 1]
    calls.clear()
    checkpoint.run_chunks(path, 5, 2, work, stop_after=1)
    # chunk 1's records reached the disk but not its tally (killed between): it is redone
    with path.open("a") as fh:
        fh.write("".join(json.dumps({"index": i, "v": -1, "_chunk": 1}) + "\n" for i in (2, 3)))
    calls.clear()
    got, resumed, tallies = checkpoint.run_chunks(path, 5, 2, work)
    assert got == whole and resumed == 2 and calls == [[2, 3], [4]]
    assert sum(t["generated_tokens"] for t in tallies) == 5  # the whole run's cost


def test_counting_adds_the_time_between_calls_once(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(cost.time, "perf_counter", lambda: now[0])

    class SlowEngine(Engine):
        def chat(self, conversations, sampling, seeds=None):
            now[0] += 2.0  # the engine call: metered by chat
            return super().chat(conversations, sampling, seeds)

    m = cost.Meter(SlowEngine())
    m.chat([[{"role": "user", "content": "x"}]], None)
    with m.counting():
        now[0] += 0.5  # e.g. sandbox runs before the call
        m.chat([[{"role": "user", "content": "x"}]], None)
        now[0] += 0.25  # and after it
    now[0] += 9.0  # outside any block: not generation
    assert m.tally["seconds"] == 2.0 + 0.5 + 2.0 + 0.25
