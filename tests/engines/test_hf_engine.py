"""The `hf` engine on a tiny real model (random weights: tests check mechanics, not quality)."""

import pytest

from safurai_csharp.engines import SamplingConfig, make_engine, stop_at_stop_token

PROMPTS = ["using System;\nclass Problem {", "public static long", "return", "    var d = new Dictionary<string, long>();"]




@pytest.fixture(scope="module")
def engine(model_dir):
    # float32 keeps greedy argmax stable across batch shapes (bf16 rounding could flip near-ties).
    return make_engine("hf", model_dir, dtype="float32", batch_size=4, seed=0)


def test_greedy_is_deterministic_and_batch_independent(engine, model_dir):
    s = SamplingConfig(max_new_tokens=16)
    first = engine.generate(PROMPTS, s)
    assert engine.generate(PROMPTS, s) == first
    one_by_one = make_engine("hf", model_dir, dtype="float32", batch_size=1)
    assert one_by_one.generate(PROMPTS, s) == first  # left padding does not change the text
    assert all(len(c) == 1 and c[0] for c in first)
    stats = engine.last_stats
    assert stats["engine"] == "hf" and 0 < stats["generated_tokens"] <= 16 * len(PROMPTS)


def test_greedy_n_repeats_one_decode(engine):
    outs = engine.generate(PROMPTS[:2], SamplingConfig(n=3, max_new_tokens=8))
    assert [len(o) for o in outs] == [3, 3] and all(len(set(o)) == 1 for o in outs)
    assert engine.last_stats["generated_tokens"] <= 2 * 8  # decoded once per prompt


def test_sampling_n_is_seeded(engine):
    s = SamplingConfig(n=4, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=7)
    a = engine.generate(PROMPTS[:2], s)
    assert [len(o) for o in a] == [4, 4]
    assert len(set(a[0])) > 1  # random weights at temperature 1: samples differ
    assert engine.generate(PROMPTS[:2], s) == a
    b = engine.generate(PROMPTS[:2], SamplingConfig(n=4, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=8))
    assert b != a


def test_stop_tokens_cut_and_end_generation_early(engine):
    free = engine.generate(PROMPTS, SamplingConfig(max_new_tokens=24))
    free_tokens = engine.last_stats["generated_tokens"]
    # A stop string taken from the middle of each free completion must cut it exactly there.
    stops = sorted({c[0][3:6] for c in free if len(c[0]) > 8})
    assert stops
    cut = engine.generate(PROMPTS, SamplingConfig(max_new_tokens=24, stop=stops))
    for f, c in zip(free, cut):
        assert c[0] == stop_at_stop_token(f[0], stops)
        assert not any(s in c[0] for s in stops)
    assert engine.last_stats["generated_tokens"] < free_tokens  # rows stopped early


def test_auto_dtype_matches_cpu(model_dir):
    from safurai_csharp.engines.hf_engine import cpu_supports_bf16

    e = make_engine("hf", model_dir, dtype="auto")
    assert e.dtype == ("bfloat16" if cpu_supports_bf16() else "float32")
    assert str(e.model.dtype) == f"torch.{e.dtype}"


def test_chat_renders_the_checkpoint_template(engine):
    conv = [{"role": "system", "content": "You write C#."}, {"role": "user", "content": "public static long"}]
    # The tiny tokenizer's template (safurai_csharp.testing.CHAT_TEMPLATE), written out by hand.
    rendered = "<|im_start|>system\nYou write C#.<|im_end|>\n<|im_start|>user\npublic static long<|im_end|>\n<|im_start|>assistant\n"
    s = SamplingConfig(max_new_tokens=12)
    assert engine.chat([conv], s) == engine.generate([rendered], s)
    assert engine.last_stats["prompt_tokens"] == len(engine.tokenizer(rendered).input_ids)
    # Stop strings cut the generated text as in generate.
    free = engine.chat([conv], s)[0][0]
    assert len(free) > 6
    stop = free[3:6]
    assert engine.chat([conv], SamplingConfig(max_new_tokens=12, stop=[stop]))[0][0] == stop_at_stop_token(free, [stop])


def test_chat_without_template_or_with_bad_messages_is_an_error(engine, monkeypatch):
    with pytest.raises(ValueError, match="'role' and 'content'"):
        engine.chat([[{"role": "user"}]], SamplingConfig())
    monkeypatch.setattr(engine.tokenizer, "chat_template", None)
    with pytest.raises(ValueError, match="has no chat template"):
        engine.chat([[{"role": "user", "content": "hi"}]], SamplingConfig())


def test_per_prompt_seeds_are_batch_invariant(engine, model_dir):
    s = SamplingConfig(n=2, temperature=1.0, max_new_tokens=8, seed=3)
    seeds = [11, 12, 13, 14]
    batch = engine.generate(PROMPTS, s, seeds=seeds)
    alone = [engine.generate([p], s, seeds=[k])[0] for p, k in zip(PROMPTS, seeds)]
    assert batch == alone
    # Another batch order, batch size and batch-level seed: same samples per (prompt, seed).
    other = make_engine("hf", model_dir, dtype="float32", batch_size=1)
    assert other.generate(PROMPTS[::-1], SamplingConfig(n=2, temperature=1.0, max_new_tokens=8, seed=99),
                          seeds=seeds[::-1])[::-1] == batch
    # Different seeds, different samples (random weights at temperature 1).
    assert engine.generate(PROMPTS, s, seeds=[21, 22, 23, 24]) != batch
    same = engine.generate([PROMPTS[0]] * 2, s, seeds=[5, 6])
    assert same[0] != same[1]
    with pytest.raises(ValueError, match="one seed per prompt"):
        engine.generate(PROMPTS, s, seeds=[1])


def test_chat_seeds_and_greedy_ignores_seeds(engine):
    convs = [[{"role": "user", "content": p}] for p in PROMPTS]
    s = SamplingConfig(temperature=1.0, max_new_tokens=10)
    batch = engine.chat(convs, s, seeds=[1, 2, 3, 4])
    assert [engine.chat([c], s, seeds=[k])[0] for c, k in zip(convs, [1, 2, 3, 4])] == batch
    greedy = SamplingConfig(n=2, max_new_tokens=10)
    assert engine.chat(convs, greedy, seeds=[1, 2, 3, 4]) == engine.chat(convs, greedy)


def test_progress_hook_reports_every_batch_and_changes_no_output(model_dir):
    e = make_engine("hf", model_dir, dtype="float32", batch_size=2)
    s = SamplingConfig(n=2, temperature=1.0, max_new_tokens=8, seed=4)
    plain = e.generate(PROMPTS, s)
    calls = []
    e.on_progress = lambda *a: calls.append(a)
    assert e.generate(PROMPTS, s) == plain
    # batch_size 2 and n=2: one prompt per batch
    assert [(d, t) for d, t, _ in calls] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    tokens = [g for *_, g in calls]
    assert tokens == sorted(tokens) and tokens[0] == 0 and tokens[-1] == e.last_stats["generated_tokens"]
