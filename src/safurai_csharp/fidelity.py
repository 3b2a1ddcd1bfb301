"""How faithfully one model reproduces another: next-token logits on fixed C# prompts.

Used by stage merge to compare the merged checkpoint with the model as it was trained
(base as loaded in training + adapter). Every position of every prompt counts: max and mean
|Δlogits| show numerical drift, top-token agreement shows whether greedy decoding would
pick the same token. The prompts are written here (never benchmark text), fixed, so numbers
are comparable across merges; `merge.fidelity_prompts` takes the first N.
"""

from __future__ import annotations

from typing import Any

FIDELITY_PROMPTS = (
    "using System;\nusing System.Collections.Generic;\nclass Solution {\n"
    "    // Return the largest element of the list.\n    public static long MaxElement(List<long> xs) {\n",
    "using System;\nclass Solution {\n    // Return true if s reads the same backwards.\n"
    "    public static bool IsPalindrome(string s) {\n",
    "using System;\nusing System.Linq;\nclass Solution {\n    // Count the vowels in a word.\n"
    "    public static int CountVowels(string word) {\n        return word.Count(",
    "using System;\nusing System.Collections.Generic;\nclass Solution {\n"
    "    // Return the n first Fibonacci numbers.\n    public static List<long> Fibonacci(int n) {\n"
    "        var result = new List<long>();\n",
    "using System;\nclass Solution {\n    // Greatest common divisor of a and b.\n"
    "    public static long Gcd(long a, long b) {\n        while (b != 0) {\n",
    "using System;\nusing System.Collections.Generic;\nclass Solution {\n"
    "    // Group words by their first letter.\n"
    "    public static Dictionary<char, List<string>> GroupByInitial(List<string> words) {\n",
    "using System;\nusing System.Text;\nclass Solution {\n    // Repeat s n times separated by commas.\n"
    "    public static string Repeat(string s, int n) {\n        var sb = new StringBuilder();\n",
    "using System;\nclass Solution {\n    // Binary search: index of target in a sorted array, or -1.\n"
    "    public static int Find(int[] xs, int target) {\n        int lo = 0, hi = xs.Length - 1;\n",
    "using System;\nusing System.Collections.Generic;\nclass Stack<T> {\n    private readonly List<T> items = new();\n"
    "    public void Push(T item) {\n",
    "using System;\nclass Solution {\n    // Sum of the digits of a non-negative number.\n"
    "    public static long DigitSum(long n) {\n        long total = 0;\n",
    "using System;\nusing System.Linq;\nusing System.Collections.Generic;\nclass Solution {\n"
    "    // Keep the even numbers, squared, in order.\n"
    "    public static List<long> EvenSquares(List<long> xs) {\n        return xs.Where(",
    "using System;\nclass Solution {\n    // Celsius to Fahrenheit, rounded to one decimal.\n"
    "    public static double ToFahrenheit(double c) {\n        return Math.Round(",
)


def prompt_logits(model: Any, tokenizer: Any, prompts: list[str] | tuple[str, ...]) -> list[Any]:
    """Float32 next-token logits [tokens, vocab] for each prompt, one forward each (no padding)."""
    import torch

    out = []
    with torch.no_grad():
        for text in prompts:
            ids = tokenizer(text, return_tensors="pt").input_ids
            out.append(model(input_ids=ids).logits[0].float().cpu())
    return out


def compare(reference: list[Any], other: list[Any]) -> dict[str, Any]:
    """max / mean |Δlogits| and the share of positions whose top token agrees."""
    if len(reference) != len(other):
        raise ValueError("compare needs logits of the same prompts")
    diffs = [(a - b).abs() for a, b in zip(reference, other, strict=True)]
    agree = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(reference, other, strict=True))
    positions = sum(a.shape[0] for a in reference)
    return {
        "max_abs_logits_diff": float(max(d.max() for d in diffs)),
        "mean_abs_logits_diff": float(sum(d.double().sum() for d in diffs)) / sum(d.numel() for d in diffs),
        "top1_agreement": agree / positions,
        "positions": positions,
        "prompts": len(reference),
    }
