"""The evaluation protocols: chat replies become MultiPL-E completions that the sandbox runs
exactly like completion-protocol ones; both protocols run on a real (tiny) engine."""

import shutil

import pytest

from safurai_csharp.protocols import CHAT_INSTRUCTION, PROTOCOLS, entry_point, extract_body, get_protocol
from safurai_csharp.synth.completion_format import render
from safurai_csharp.synth.program import with_standard_usings

EX = {"id": "x", "instruction": "Add one to every element of a list.",
      "solution": with_standard_usings("public static class L { public static List<long> Inc(List<long> xs) "
                                       "{ return xs.Select(x => x + 1).ToList(); } }"),
      "tests": "Debug.Assert(L.Inc(new List<long>{1, 2}).SequenceEqual(new List<long>{2, 3}));\n"
               "Debug.Assert(L.Inc(new List<long>()).Count == 0);\n"
               "Debug.Assert(L.Inc(new List<long>{-1})[0] == 0);"}
PROBLEM = render(EX, "p").problem()

REPLY = """Sure! Here is the function:

```csharp
using System.Linq;

class Problem {
    public static List<long> Inc(List<long> xs) {
        var res = new List<long>();
        foreach (var x in xs) { res.Add(x + 1); }
        return res;
    }
}
```
It adds one to each element."""


def test_entry_point_from_field_or_prompt():
    assert entry_point(PROBLEM) == "Inc"
    assert entry_point({k: v for k, v in PROBLEM.items() if k != "entry_point"}) == "Inc"


def test_extract_body_from_blocks_bare_code_and_expression_bodies():
    body = extract_body(REPLY, "Inc")
    assert body.startswith("\n        var res") and body.rstrip().endswith("return res;")
    assert extract_body("public static List<long> Inc(List<long> xs) => xs.ToList();", "Inc") == \
        "\n        return xs.ToList();"
    assert extract_body("```csharp\npublic static int Other() { return 1; }\n```", "Inc") == ""
    unterminated = "```csharp\npublic static List<long> Inc(List<long> xs) {\n    return xs;\n}\n"
    assert extract_body(unterminated, "Inc") == "\n    return xs;"


@pytest.mark.skipif(not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="no sandbox")
def test_an_extracted_body_runs_like_a_completion():
    from safurai_csharp.csharp import Executor, Limits
    from safurai_csharp.synth.completion_format import CompletionTask

    task = CompletionTask.from_problem(PROBLEM)
    good, empty = Executor(Limits(timeout_s=10), workers=2).run(
        [task.program(extract_body(REPLY, "Inc")), task.program(extract_body("no code", "Inc"))])
    assert good.passed and not empty.passed


def test_both_protocols_sample_through_a_real_engine(tmp_path):
    from safurai_csharp.engines import SamplingConfig, make_engine
    from safurai_csharp.testing import make_tiny_model

    engine = make_engine("hf", make_tiny_model(tmp_path / "m"), dtype="float32", batch_size=2)
    s = SamplingConfig(n=2, temperature=1.0, max_new_tokens=8, seed=1)
    for name in ("completion", "chat"):
        out = get_protocol(name).sample(engine, [PROBLEM, PROBLEM], s)
        assert [len(o) for o in out] == [2, 2] and all(isinstance(t, str) for o in out for t in o)
        assert engine.last_stats["generated_tokens"] > 0
    assert set(PROTOCOLS) == {"completion", "chat"} and "{prompt}" in CHAT_INSTRUCTION
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("fim")
