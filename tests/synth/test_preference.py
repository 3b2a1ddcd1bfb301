"""Preference pairs (synth/preference.py): both answers of a pair answer one task, the chosen
passed and stays inside its method, the rejected failed, layout copies count once, and the cap
per task holds; the rows are sft_qlora's completion rows."""

import pytest

from safurai_csharp.synth.preference import pairs
from safurai_csharp.synth.sft_format import rows as sft_rows


def example(i: int) -> dict:
    prompt = f"class Problem {{\n    // Multiply x by {i}.\n    public static long F{i}(long x) {{\n"
    return {"id": f"e{i}", "instruction": f"Multiply x by {i}.", "solution": "",
            "task": {"name": f"e{i}", "prompt": prompt, "tests": "", "stop_tokens": ["\n    }\n"],
                     "completion": f"\n        return {i} * x;"}}


def v(task: str, sample: int, completion: str, passed: bool) -> dict:
    return {"task_id": task, "name": task, "sample": sample, "completion": completion, "passed": passed}


VERDICTS = [
    # e1: two distinct passing (one more only in layout), an early closer that passed, three failing
    v("e1", 0, "\n        return 1 * x;", True),
    v("e1", 1, "\n        return   1 *  x;", True),                       # layout copy of 0
    v("e1", 2, " return x; }\n    public static long G() {\n        return 0;", True),  # closes early
    v("e1", 3, "\n        return x * 1;", True),
    v("e1", 4, "\n        return x + 1;", False),
    v("e1", 5, "\n        return x - 1;", False),
    v("e1", 6, "\n        return x + 1;", False),                           # copy of 4
    v("e1", 7, "\n        return 0;", False),
    # e2: everything passes; e3: everything fails; e4: one of each
    v("e2", 0, "\n        return 2 * x;", True), v("e2", 1, "\n        return x * 2;", True),
    v("e3", 0, "\n        return x;", False), v("e3", 1, "\n        return 3;", False),
    v("e4", 1, "\n        return x;", False), v("e4", 0, "\n        return 4 * x;", True),
]


def test_pairs_join_a_passing_and_a_failing_answer_of_one_task():
    examples = [example(i) for i in range(1, 5)]
    out, counts = pairs(examples, VERDICTS, max_per_task=4)
    by_task = {}
    for p in out:
        by_task.setdefault(p["task_id"], []).append((p["chosen_sample"], p["rejected_sample"]))
    # distinct chosen 0, 3 (1 is 0's layout copy, 2 closes early); distinct rejected 4, 5, 7
    assert by_task == {"e1": [(0, 4), (3, 5), (0, 7)], "e4": [(0, 1)]}
    assert counts == {"tasks": 4, "tasks_all_pass": 1, "tasks_all_fail": 1, "tasks_with_pairs": 2, "pairs": 4}
    verdict = {(x["task_id"], x["sample"]): x for x in VERDICTS}
    for p in out:
        good, bad = verdict[(p["task_id"], p["chosen_sample"])], verdict[(p["task_id"], p["rejected_sample"])]
        assert good["passed"] and not bad["passed"]
        # exactly sft_qlora's completion rows of the same task: stripped prompt, body + stop token
        row = sft_rows(examples[int(p["task_id"][1:]) - 1], ["completion"], source="student",
                       completion=good["completion"])[0]
        assert (p["prompt"], p["chosen"]) == (row["prompt"], row["completion"])
        assert p["rejected"] == bad["completion"] + "\n    }\n"
    assert len({p["id"] for p in out}) == len(out)


def test_the_cap_per_task_and_the_order_do_not_depend_on_the_file_order():
    examples = [example(i) for i in range(1, 5)]
    capped, _ = pairs(examples, VERDICTS, max_per_task=1)
    assert [(p["task_id"], p["chosen_sample"], p["rejected_sample"]) for p in capped] == [("e1", 0, 4), ("e4", 0, 1)]
    shuffled, _ = pairs(examples, list(reversed(VERDICTS)), max_per_task=4)
    assert sorted(p["id"] for p in shuffled) == sorted(p["id"] for p in pairs(examples, VERDICTS, 4)[0])


def test_a_verdict_for_a_task_that_is_not_a_training_task_is_refused():
    with pytest.raises(KeyError, match="not a training task"):
        pairs([example(1)], [v("dev7", 0, "\n        return x;", True)], max_per_task=2)
