"""The `openai` engine against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server is written here with http.server: it records every request (path, headers, JSON
body) and answers text derived from the request (seed, sample index, last message), so the
tests see exactly what the engine sent and what it made of the answers. No network.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from safurai_csharp.engines import ENGINES, OpenAIEngine, SamplingConfig, make_engine

STOP = "<STOP>"


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.fail_first: set[str] = set()  # models whose first request gets a 503
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    fail = body["model"] in server.fail_first
                    server.fail_first.discard(body["model"])
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if fail:
                        return self._send(503, {"error": {"message": "overloaded"}}, {"retry-after-ms": "10"})
                    self._send(200, server.answer(self.path, body))
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, body: dict) -> dict:
        chat = path == "/v1/chat/completions"
        last = body["messages"][-1]["content"] if chat else body["prompt"]
        # Early prompts answer last, so a lost order would show.
        if last.startswith("q"):
            time.sleep(0.02 * (8 - int(last[1:]) % 8))
        n = 1 if body["model"] == "one-choice" else body.get("n", 1)
        texts = [f"{last}|seed={body.get('seed')}|j={j}{STOP}tail" for j in range(n)]
        choices = [{"index": j, "finish_reason": "stop", "logprobs": None,
                    **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                   for j, t in reversed(list(enumerate(texts)))]  # out of order: the engine sorts by index
        out = {"id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0,
               "model": body["model"], "choices": choices}
        if body["model"] != "no-usage":
            out["usage"] = {"prompt_tokens": len(last), "completion_tokens": 5 * n, "total_tokens": len(last) + 5 * n}
        return out


@pytest.fixture(scope="module")
def server():
    s = FakeServer()
    yield s
    s.httpd.shutdown()


@pytest.fixture
def fresh(server):
    server.requests.clear()
    server.max_in_flight = 0
    return server


def engine(server, **kw):
    kw.setdefault("served_model", "teacher")
    return make_engine("openai", None, base_url=server.base_url, **kw)


def test_registered_and_only_its_own_options(server):
    assert ENGINES["openai"] is OpenAIEngine
    e = engine(server, max_concurrency=2, seed=3)
    assert e.model == "teacher" and e.max_concurrency == 2 and e.seed == 3
    with pytest.raises(ValueError, match=r"engine 'openai' does not take option\(s\) \['batch_size', 'beam_width'\]"):
        engine(server, beam_width=2, batch_size=4)  # another engine's option is refused too, not dropped
    assert make_engine("openai", "/models/qwen", base_url=server.base_url).model == "/models/qwen"
    with pytest.raises(ValueError, match="needs a model_dir"):
        make_engine("hf", None)


def test_base_url_missing_is_an_error_and_env_is_the_fallback(server, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="base_url"):
        make_engine("openai", None, served_model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    assert make_engine("openai", None, served_model="m").base_url == server.base_url
    with pytest.raises(ValueError, match="served_model"):
        make_engine("openai", None)


def test_chat_keeps_order_under_concurrency_and_sends_per_prompt_seeds(fresh, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-test-123")
    e = engine(fresh, api_key_env="TEACHER_KEY", max_concurrency=4)
    convs = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"q{i}"}] for i in range(12)]
    seeds = [100 + i for i in range(12)]
    s = SamplingConfig(n=2, temperature=0.7, top_p=0.9, max_new_tokens=33, stop=[STOP, "never"], seed=5)
    out = e.chat(convs, s, seeds=seeds)
    assert out == [[f"q{i}|seed={100 + i}|j=0", f"q{i}|seed={100 + i}|j=1"] for i in range(12)]
    assert 1 < fresh.max_in_flight <= 4
    assert len(fresh.requests) == 12
    for r in fresh.requests:
        assert r["path"] == "/v1/chat/completions"
        assert r["headers"]["authorization"] == "Bearer sk-test-123"
        b = r["body"]
        i = int(b["messages"][-1]["content"][1:])
        assert b["messages"] == convs[i] and b["model"] == "teacher" and b["seed"] == 100 + i
        assert (b["n"], b["temperature"], b["top_p"], b["max_tokens"], b["stop"]) == (2, 0.7, 0.9, 33, [STOP, "never"])
    st = e.last_stats
    assert st["engine"] == "openai" and st["generated_tokens"] == 12 * 10
    assert st["prompt_tokens"] == sum(len(f"q{i}") for i in range(12)) and st["seconds"] > 0
    e.close()


def test_generate_uses_completions_and_batch_seed_without_seeds(fresh, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    e = engine(fresh)
    out = e.generate(["q1", "q2"], SamplingConfig(n=3, temperature=1.0, max_new_tokens=7, seed=9))
    assert out == [[f"q{i}|seed=9|j={j}{STOP}tail" for j in range(3)] for i in (1, 2)]
    assert {r["path"] for r in fresh.requests} == {"/v1/completions"}
    assert all(r["body"]["prompt"] in ("q1", "q2") and r["body"]["seed"] == 9 for r in fresh.requests)
    assert all(r["headers"]["authorization"] == "Bearer EMPTY" for r in fresh.requests)  # no key set
    assert all("stop" not in r["body"] for r in fresh.requests)  # no stop strings: none sent


def test_greedy_asks_once_and_repeats(fresh):
    out = engine(fresh).generate(["a"], SamplingConfig(n=3, max_new_tokens=4, stop=[STOP]))
    assert out == [["a|seed=0|j=0"] * 3]
    assert fresh.requests[0]["body"]["n"] == 1 and fresh.requests[0]["body"]["temperature"] == 0.0


def test_transient_errors_are_retried(fresh):
    fresh.fail_first.add("flaky")
    out = engine(fresh, served_model="flaky").chat([[{"role": "user", "content": "hi"}]],
                                                   SamplingConfig(max_new_tokens=4, stop=[STOP]))
    assert out == [["hi|seed=0|j=0"]] and len(fresh.requests) == 2


def test_missing_usage_and_ignored_n_are_reported(fresh):
    e = engine(fresh, served_model="no-usage")
    e.generate(["a", "b"], SamplingConfig(max_new_tokens=4))
    assert e.last_stats["generated_tokens"] == 0 and e.last_stats["responses_without_usage"] == 2
    with pytest.raises(ValueError, match="n=2 samples, got 1"):
        engine(fresh, served_model="one-choice").generate(["a"], SamplingConfig(n=2, temperature=1.0))


def test_bad_seeds_and_messages_are_rejected_before_any_request(fresh):
    e = engine(fresh)
    with pytest.raises(ValueError, match="one seed per prompt"):
        e.generate(["a", "b"], SamplingConfig(), seeds=[1])
    with pytest.raises(ValueError, match="'role' and 'content'"):
        e.chat([[{"role": "user"}]], SamplingConfig())
    assert fresh.requests == []


def test_top_k_goes_in_the_body_only_when_set(fresh):
    e = engine(fresh)
    e.chat([[{"role": "user", "content": "a"}]], SamplingConfig(temperature=0.7, top_k=40, seed=1))
    e.chat([[{"role": "user", "content": "b"}]], SamplingConfig(temperature=0.7, seed=1))
    e.chat([[{"role": "user", "content": "c"}]], SamplingConfig(top_k=40))  # greedy: no sampling knobs
    bodies = {r["body"]["messages"][-1]["content"]: r["body"] for r in fresh.requests}
    assert bodies["a"]["top_k"] == 40 and "top_k" not in bodies["b"] and "top_k" not in bodies["c"]


def test_progress_hook_counts_answers_as_they_arrive(fresh):
    e = engine(fresh, max_concurrency=4)
    calls = []
    e.on_progress = lambda *a: calls.append(a)
    out = e.chat([[{"role": "user", "content": f"q{i}"}] for i in range(6)], SamplingConfig(n=2, temperature=1.0))
    assert [o[0].split("|")[0] for o in out] == [f"q{i}" for i in range(6)]  # still in prompt order
    assert calls == [(i, 6, 10 * i) for i in range(7)]  # 5 completion tokens a sample


def test_together_keeps_every_part_in_one_pool_and_each_part_its_sampling(fresh):
    from safurai_csharp.engines import Request, together

    e = engine(fresh, max_concurrency=6)
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    chat = Request(convs, SamplingConfig(n=1, temperature=0.5, max_new_tokens=9, stop=[STOP]), seeds=[1, 2, 3], chat=True)
    gen = Request([f"q{i}" for i in range(3, 8)], SamplingConfig(n=2, temperature=1.0, max_new_tokens=5, seed=4))
    got = together(e, [chat, Request([], SamplingConfig()), gen])
    assert got[0] == [[f"q{i}|seed={i + 1}|j=0"] for i in range(3)] and got[1] == []
    assert got[2] == [[f"q{i}|seed=4|j={j}{STOP}tail" for j in range(2)] for i in range(3, 8)]
    assert len(fresh.requests) == 8 and fresh.max_in_flight > 3  # the parts overlapped
    by_path = {r["body"].get("prompt") or r["body"]["messages"][-1]["content"]: r for r in fresh.requests}
    assert by_path["q0"]["path"] == "/v1/chat/completions" and by_path["q0"]["body"]["max_tokens"] == 9
    assert by_path["q5"]["path"] == "/v1/completions" and by_path["q5"]["body"]["n"] == 2
    assert e.last_stats["generated_tokens"] == 3 * 5 + 5 * 10
    with pytest.raises(ValueError, match="one seed per prompt"):
        together(e, [Request(["a"], SamplingConfig(), seeds=[1, 2])])
