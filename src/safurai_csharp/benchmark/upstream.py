"""Compare our HumanEval-C# with an upstream MultiPL-E jsonl, field by field."""

from __future__ import annotations

from .problem import signature_line


def _asserts(tests: str) -> list[str]:
    return [ln for ln in tests.splitlines() if "Debug.Assert" in ln]


def _examples(prompt: str) -> list[str]:
    """The doctest lines (``>>> call`` and the result line after it) of a C# prompt."""
    lines = prompt.splitlines()
    out = []
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith("// >>>"):
            out += [ln, lines[i + 1] if i + 1 < len(lines) else ""]
    return out


def _prose(prompt: str) -> list[str]:
    examples = set(_examples(prompt))
    return [ln for ln in prompt.splitlines() if ln.lstrip().startswith("//") and ln not in examples]


def _reasons(ours: dict, up: dict) -> tuple[list[str], str]:
    fields, reasons = [], []
    if ours["tests"] != up["tests"]:
        fields.append("tests")
        a, b = _asserts(ours["tests"]), _asserts(up["tests"])
        if len(a) != len(b):
            reasons.append(f"tests: {len(a)} vs upstream {len(b)} assertions (upstream hand-edited test cases)")
        else:
            reasons.append("tests: same number of assertions, different values (upstream hand-edited values)")
    if signature_line(ours["prompt"]) != signature_line(up["prompt"]):
        fields.append("signature")
        reasons.append("signature: different inferred types")
    if ours["prompt"] != up["prompt"]:
        fields.append("prompt")
        if _examples(ours["prompt"]) != _examples(up["prompt"]):
            reasons.append("prompt: examples differ (upstream rewrote free-form examples as doctests by hand)")
        if _prose(ours["prompt"]) != _prose(up["prompt"]):
            reasons.append("prompt: description text differs (upstream edited the docstring by hand)")
    return fields, "; ".join(reasons)


def compare_with_upstream(ours: list[dict], upstream: list[dict]) -> dict:
    """JSON-serialisable fidelity report of ``ours`` against ``upstream`` (matched by name)."""
    mine = {r["name"]: r for r in ours}
    theirs = {r["name"]: r for r in upstream}
    common = [n for n in theirs if n in mine]
    differences = []
    for name in common:
        fields, reason = _reasons(mine[name], theirs[name])
        if fields:
            differences.append({"name": name, "fields": fields, "reason": reason})
    return {
        "upstream_problems": len(theirs),
        "our_problems": len(mine),
        "present": len(common),
        "missing": sorted(n for n in theirs if n not in mine),
        "extra": sorted(n for n in mine if n not in theirs),
        "identical_tests": sum(mine[n]["tests"] == theirs[n]["tests"] for n in common),
        "identical_signatures": sum(
            signature_line(mine[n]["prompt"]) == signature_line(theirs[n]["prompt"]) for n in common
        ),
        "identical_prompts": sum(mine[n]["prompt"] == theirs[n]["prompt"] for n in common),
        "differences": differences,
    }
