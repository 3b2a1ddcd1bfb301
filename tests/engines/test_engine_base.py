"""The engine interface: MultiPL-E's prompt and stop rules, sampling validation, the registry."""

import json
from pathlib import Path

import pytest

from safurai_csharp.engines import ENGINES, SamplingConfig, make_engine, stop_at_stop_token, strip_prompt

UPSTREAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks" / "multipl-e" / "humaneval-cs-reworded.jsonl"


@pytest.mark.parametrize("text, stops, expected", [
    ("\n        return x;\n    }\n    public static void Main", ["\n    }\n"], "\n        return x;"),
    ("abc", ["\n    }\n"], "abc"),
    ("", ["x"], ""),
    ("a STOP1 b STOP2", ["STOP2", "STOP1"], "a "),  # earliest occurrence wins, not first listed
    ("xSTOP", ["STOP", "xS"], ""),  # a stop token at position 0 leaves nothing
    ("a\n}\nb", [], "a\n}\nb"),
])
def test_stop_at_stop_token(text, stops, expected):
    assert stop_at_stop_token(text, stops) == expected


def test_strip_prompt_is_multipl_e_strip():
    prompt = "using System;\nclass Problem {\n    public static long F(long n) {\n"
    assert strip_prompt(prompt) == prompt[:-1]
    assert strip_prompt("\n  x  \n\t") == "x"


@pytest.mark.skipif(not UPSTREAM.is_file(), reason="upstream MultiPL-E file not in ../shared")
def test_strip_prompt_on_upstream_prompts_removes_only_the_final_newline():
    for line in UPSTREAM.read_text().splitlines():
        prompt = json.loads(line)["prompt"]
        assert prompt.endswith("{\n") and strip_prompt(prompt) == prompt[:-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n and max_new_tokens"),
    ({"max_new_tokens": 0}, "n and max_new_tokens"),
    ({"temperature": -0.1}, "temperature >= 0"),
    ({"top_p": 0.0}, "top_p"),
    ({"stop": [""]}, "non-empty"),
])
def test_sampling_config_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplingConfig(**kwargs)


def test_sampling_greedy_flag():
    assert SamplingConfig(temperature=0).greedy and not SamplingConfig(temperature=0.2).greedy


def test_registry_and_unknown_names(tmp_path):
    assert set(ENGINES) == {"hf", "openai", "vllm"}
    with pytest.raises(ValueError, match="unknown engine 'tgi'; known: hf, openai, vllm"):
        make_engine("tgi", tmp_path)
    with pytest.raises(ValueError, match=r"engine 'hf' does not take option\(s\) \['beam_width'\]"):
        make_engine("hf", tmp_path, beam_width=4)


def test_an_option_of_another_engine_is_refused_not_dropped(tmp_path):
    """Each engine takes its own options (config.EngineOptions): a vllm engine given hf's
    batch_size says so instead of running without it."""
    with pytest.raises(ValueError, match=r"engine 'vllm' does not take option\(s\) \['batch_size'\]; it takes: .*kv_cache_gib"):
        make_engine("vllm", tmp_path, batch_size=64)
    with pytest.raises(ValueError, match=r"engine 'openai' does not take option\(s\) \['dtype'\]"):
        make_engine("openai", None, dtype="float32", served_model="m", base_url="http://127.0.0.1:9/v1")


def test_vllm_data_parallel_is_refused_before_loading(tmp_path):
    # vLLM 0.32's offline LLM refuses data_parallel_size > 1; the message names the way out.
    with pytest.raises(ValueError, match="vllm serve.*openai"):
        make_engine("vllm", tmp_path, data_parallel_size=2)


def test_across_calls_sums_the_calls_of_one_sampling():
    from safurai_csharp.engines.base import AcrossCalls

    seen = []
    hook = AcrossCalls(5, lambda *a: seen.append(a))
    for call in [(0, 3, 0), (2, 3, 20), (3, 3, 31), (0, 2, 0), (1, 2, 9), (2, 2, 12)]:
        hook(*call)
    assert seen == [(0, 5, 0), (2, 5, 20), (3, 5, 31), (3, 5, 31), (4, 5, 40), (5, 5, 43)]
    hook = AcrossCalls(2, lambda *a: seen.append(a))
    for call in [(0, 1, 0), (1, 1, None), (0, 1, 0), (1, 1, 4)]:
        hook(*call)
    assert seen[-4:] == [(0, 2, 0), (1, 2, None), (1, 2, None), (2, 2, None)]


def test_vllm_bar_factory_reports_finished_prompts_and_keeps_the_bar():
    """vllm_engine.progress_bars, driven the way vLLM 0.32's LLM._run_engine drives its bar
    (vllm/entrypoints/common/offline.py): built with total = prompts x n, postfix written,
    then update(n) per finished prompt."""
    from safurai_csharp.engines.vllm_engine import progress_bars

    calls = []
    make = progress_bars(lambda *a: calls.append(a), 3)
    rendering = make(["p1", "p2", "p3"], desc="Rendering prompts")
    assert list(rendering) == ["p1", "p2", "p3"]  # an iterable bar is a plain bar
    assert calls == []
    pb = make(total=6, desc="Processed prompts", dynamic_ncols=True,
              postfix="est. speed input: 0.00 toks/s, output: 0.00 toks/s")
    for _ in range(3):
        pb.postfix = "est. speed input: 50.00 toks/s, output: 1000.00 toks/s"
        pb.update(2)
    pb.close()
    assert pb.n == 6  # the terminal bar still counts what vLLM counts
    # the last prompt is left to the engine, which reports the end with exact counts
    assert [(d, t) for d, t, _ in calls] == [(1, 3), (2, 3)]
    assert all(isinstance(g, int) and g >= 0 for *_, g in calls)
    pb = make(total=2, postfix="unreadable")
    pb.update(1)
    assert calls[-1] == (1, 3, None)


def test_vllm_bar_still_times_when_bars_are_off(monkeypatch, capsys):
    """vLLM computes tokens/s as tokens / pbar.format_dict["elapsed"] per finished prompt; a
    disabled tqdm says 0 (ZeroDivisionError). tqdm reads TQDM_DISABLE once, at import, as the
    default of `disable` (an explicit argument wins): a bar made disabled that way keeps its
    clock and prints nothing."""
    import time

    from safurai_csharp import progress
    from safurai_csharp.engines.vllm_engine import progress_bars

    real = progress.bar

    def env_disabled(*args, **kwargs):
        kwargs.setdefault("disable", True)  # what TQDM_DISABLE=1 does to tqdm's default
        return real(*args, **kwargs)

    monkeypatch.setattr(progress, "bar", env_disabled)
    pb = progress_bars(lambda *a: None, 2)(total=2, desc="Processed prompts")
    time.sleep(0.01)
    pb.update(1)
    assert 10 / pb.format_dict["elapsed"] > 0
    pb.close()
    assert "Processed prompts" not in capsys.readouterr().err
