"""`openai` engine: any OpenAI-compatible HTTP server as a teacher or a generator.

Works with `vllm serve`, llama.cpp's server, Ollama and hosted APIs: `chat` posts to
/v1/chat/completions (the server renders its model's chat template), `generate` to
/v1/completions (raw prompt continuation, as MultiPL-E needs). Each prompt is one request;
requests run concurrently in a thread pool (the client is thread-safe) and outputs keep the
prompts' order. Transient failures (connection errors, 408/409/429/5xx) are retried with
backoff by the openai client itself (max_retries=3).

What the server does with `seed` is its own business: vLLM seeds each request's sampler, so
a prompt's samples depend only on (prompt, seed, sampling) as the Engine protocol asks;
llama.cpp and Ollama honour it too; hosted APIs treat it as best effort.

Known server limits, left to the server to report: OpenAI's hosted API takes at most 4 stop
strings, and its newest chat models want max_completion_tokens instead of max_tokens;
llama.cpp and Ollama may ignore n > 1 (checked below: a short answer is an error).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .base import Conversation, Request, SamplingConfig, check_conversation, check_seeds, stop_at_stop_token


class OpenAIEngine:
    name = "openai"
    needs_model_dir = False  # make_engine accepts model_dir=None: the server holds the model
    on_progress = None  # base.Progress: called as each response arrives

    def __init__(self, model_dir: Path | None = None, *, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", served_model: str | None = None,
                 max_concurrency: int = 8, request_timeout_s: float = 600.0, seed: int = 0) -> None:
        """`base_url` (e.g. http://127.0.0.1:8000/v1) falls back to $OPENAI_BASE_URL.
        The API key is read from the environment variable named `api_key_env`, never from
        params: when it is unset, "EMPTY" is sent, which local servers accept.
        `served_model` is the model name the server knows; it defaults to str(model_dir),
        the name `vllm serve MODEL_DIR` serves under."""
        import openai

        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ValueError("openai engine: set engine_options.openai.base_url (e.g. http://127.0.0.1:8000/v1) "
                             "or the OPENAI_BASE_URL environment variable")
        if served_model is None and model_dir is None:
            raise ValueError("openai engine: give served_model (the server's model name) or a model_dir")
        if max_concurrency < 1 or request_timeout_s <= 0:
            raise ValueError(f"openai engine: need max_concurrency >= 1 and request_timeout_s > 0 "
                             f"(got {max_concurrency}, {request_timeout_s})")
        self.base_url = base_url
        self.model = served_model if served_model is not None else str(model_dir)
        self.max_concurrency = max_concurrency
        self.seed = seed
        self.client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
                                    timeout=request_timeout_s, max_retries=3)
        self.last_stats: dict[str, Any] = {}

    def generate(self, prompts: list[str], sampling: SamplingConfig,
                 seeds: list[int] | None = None) -> list[list[str]]:
        return self._run([self._part(Request(list(prompts), sampling, seeds))])[0]

    def chat(self, conversations: list[Conversation], sampling: SamplingConfig,
             seeds: list[int] | None = None) -> list[list[str]]:
        return self._run([self._part(Request(list(conversations), sampling, seeds, chat=True))])[0]

    def together(self, requests: list[Request]) -> list[list[list[str]]]:
        """Every request's prompts through one pool (base.together): `max_concurrency` requests
        stay in flight across the parts instead of draining at the end of each."""
        return self._run([self._part(r) for r in requests])

    def _part(self, r: Request) -> tuple[list[Any], SamplingConfig, list[int] | None, Any, Any]:
        """(items, sampling, seeds, send one item, text of a choice) for `_run`."""
        if r.chat:
            for c in r.items:
                check_conversation(c)

            def one_chat(messages: Conversation, seed: int) -> Any:
                return self.client.chat.completions.create(model=self.model, messages=messages,
                                                           **self._body(r.sampling, seed))

            return list(r.items), r.sampling, r.seeds, one_chat, lambda c: c.message.content

        def one(prompt: str, seed: int) -> Any:
            return self.client.completions.create(model=self.model, prompt=prompt, **self._body(r.sampling, seed))

        return list(r.items), r.sampling, r.seeds, one, lambda c: c.text

    @staticmethod
    def _body(sampling: SamplingConfig, seed: int) -> dict[str, Any]:
        greedy = sampling.greedy
        body: dict[str, Any] = {
            # Greedy samples are identical: ask once, repeat n times (as the other engines do).
            "n": 1 if greedy else sampling.n,
            "temperature": 0.0 if greedy else sampling.temperature,
            "top_p": 1.0 if greedy else sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "seed": seed,
        }
        if sampling.top_k and not greedy:  # not in OpenAI's API: vLLM and llama.cpp servers read it
            body["extra_body"] = {"top_k": sampling.top_k}
        if sampling.stop:  # some servers reject an empty stop list
            body["stop"] = list(sampling.stop)
        return body

    def _run(self, parts: list[tuple[list[Any], SamplingConfig, list[int] | None, Any, Any]]) -> list[list[list[str]]]:
        jobs = []  # (part, item, seed) in order
        for k, (items, sampling, seeds, _request, _text_of) in enumerate(parts):
            check_seeds(seeds, len(items))
            jobs += [(k, item, seed) for item, seed in zip(items, seeds if seeds is not None else
                                                           [sampling.seed] * len(items))]
        start = time.perf_counter()
        report = self.on_progress or (lambda done, total, tokens: None)
        report(0, len(jobs), 0)
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(jobs))))
        try:
            futures = [pool.submit(parts[k][3], item, seed) for k, item, seed in jobs]
            done = tokens = 0
            for fut in as_completed(futures):  # progress in the order the server answers
                resp = fut.result()  # a failure (retries exhausted) ends the call here
                done += 1
                tokens += (resp.usage.completion_tokens or 0) if resp.usage is not None else 0
                report(done, len(jobs), tokens)
            # outputs line up with the prompts whatever the order of the answers
            responses = [fut.result() for fut in futures]
        finally:
            # After a failure (retries exhausted), drop the queued requests instead of sending them.
            pool.shutdown(wait=True, cancel_futures=True)
        results: list[list[list[str]]] = [[] for _ in parts]
        generated = prompt_tokens = without_usage = 0
        for (k, _item, _seed), resp in zip(jobs, responses, strict=True):
            _items, sampling, _seeds, _request, text_of = parts[k]
            want = 1 if sampling.greedy else sampling.n
            choices = sorted(resp.choices, key=lambda c: c.index)
            if len(choices) != want:
                raise ValueError(f"openai engine: asked {self.base_url} for n={want} samples, got {len(choices)}; "
                                 "this server may not support n > 1 (use n=1 there)")
            texts = [stop_at_stop_token(text_of(c) or "", sampling.stop) for c in choices]
            results[k].append(texts * sampling.n if sampling.greedy else texts)
            if resp.usage is None:
                without_usage += 1
            else:
                generated += resp.usage.completion_tokens or 0
                prompt_tokens += resp.usage.prompt_tokens or 0
        # Token counts come from the server's usage fields; responses without them count 0
        # and are reported, so a tokens/s figure is known to be partial.
        self.last_stats = {"engine": self.name, "model": self.model, "generated_tokens": generated,
                           "prompt_tokens": prompt_tokens, "responses_without_usage": without_usage,
                           "seconds": time.perf_counter() - start}
        return results

    def close(self) -> None:
        """Close the HTTP connection pool (the server keeps running)."""
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        self.client = None
