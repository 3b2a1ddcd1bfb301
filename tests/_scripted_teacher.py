"""A scripted teacher behind a real OpenAI-compatible HTTP server, for the end-to-end test.

A tiny random model writes no usable C#, so a pipeline test driven by it would train on an
empty set. This server answers the pipeline's three kinds of chat requests the way a good
teacher would (a new exercise; a harder rewrite of a task; a solution + tests of a task),
deterministically from the request, with varied valid C#. Everything after the HTTP call is
the real pipeline: parsing, the sandbox, dedup, decontamination, evolution, training.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = ["Alpha", "Bravo", "Cedar", "Delta", "Ember", "Fjord", "Gamma", "Harbor", "Iris", "Juniper",
         "Kestrel", "Lumen", "Maple", "Nimbus", "Orbit", "Pebble"]


CONSTRAINTS = [
    "The method must also handle the largest int inputs without overflow, using long arithmetic inside.",
    "Document every parameter with XML comments and validate that arrays are never null before use.",
    "Solve it in a single pass over the input with constant extra memory, explaining each step.",
    "Reject any malformed argument by throwing an ArgumentException whose message names the parameter.",
    "Keep the public signature unchanged but add a private helper that isolates the core computation.",
]


def _pick(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def exercise(key: str, task: str | None = None) -> str:
    h = _pick(key)
    a, b, name = 2 + h % 7, 1 + (h >> 4) % 9, NAMES[(h >> 8) % len(NAMES)] + str(h % 97)
    kind = (h >> 12) % 3
    if kind == 0:
        task = task or f"Write a C# static method `{name}.Scale(int x)` that returns {a} times x plus {b}."
        sol = f"public static class {name}\n{{\n    public static int Scale(int x)\n    {{\n        return {a} * x + {b};\n    }}\n}}"
        tests = "\n".join(f"Debug.Assert({name}.Scale({x}) == {a * x + b});" for x in (0, 1, 5, -3))
    elif kind == 1:
        task = task or f"Write a C# static method `{name}.CountAbove(int[] xs)` that counts the values greater than {a}."
        sol = (f"public static class {name}\n{{\n    public static int CountAbove(int[] xs)\n    {{\n"
               f"        int n = 0;\n        foreach (int x in xs) if (x > {a}) n++;\n        return n;\n    }}\n}}")
        cases = [[1, 2, 3], [a, a + 1, a + 2, 0], [], [10 + a, -a, a + b]]
        tests = "\n".join(f"Debug.Assert({name}.CountAbove(new int[] {{ {', '.join(map(str, c))} }}) == "
                          f"{sum(v > a for v in c)});" for c in cases)
    else:
        task = task or f"Write a C# static method `{name}.Pad(string s)` that appends '{'*' * 1}' to s until it is {a + 2} characters long."
        sol = (f"public static class {name}\n{{\n    public static string Pad(string s)\n    {{\n"
               f"        var sb = new StringBuilder(s);\n        while (sb.Length < {a + 2}) sb.Append('*');\n"
               f"        return sb.ToString();\n    }}\n}}")
        cases = ["", "ab", "x" * (a + 3)]
        tests = "\n".join(f'Debug.Assert({name}.Pad("{c}") == "{c + "*" * max(0, a + 2 - len(c))}");' for c in cases)
    return f"### Task\n{task}\n\n### Solution\n```csharp\n{sol}\n```\n\n### Tests\n```csharp\n{tests}\n```\n"


def answer(messages: list[dict], seed: int | None) -> str:
    last = messages[-1]["content"]
    if "increase the difficulty" in last or "brand-new one" in last:
        question = last.rsplit("Question:\n", 1)[-1].strip()
        fresh = [c for c in CONSTRAINTS if c not in question] or CONSTRAINTS
        return f"{question} {fresh[_pick(question) % len(fresh)]}"
    if last.startswith("Solve this C# exercise"):
        task = last.split("\n\n", 1)[-1].strip()
        return exercise(task, task)
    if last.startswith("Rate this C# exercise"):
        return str(5 + _pick(last) % 5)
    if last.startswith("Your answer"):
        return messages[-2]["content"]
    m = re.search(r"Topic: (.*)\. Concept to practise: (.*)\.", last)
    return exercise(f"{m.group(0) if m else last}:{seed}")


class ScriptedTeacher:
    """`with ScriptedTeacher() as t:` serves http://127.0.0.1:<port>/v1 (t.base_url)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                texts = [answer(body["messages"], body.get("seed")) for _ in range(body.get("n", 1))]
                payload = {"id": "x", "object": "chat.completion", "model": body["model"],
                           "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                                        "finish_reason": "stop"} for i, t in enumerate(texts)],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 50, "total_tokens": 60}}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "ScriptedTeacher":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
