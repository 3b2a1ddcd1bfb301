"""MultiPL-E's "reworded" prompt terminology for C#.

Port of ``translate_terms`` / ``edit_prompt_terminology`` in MultiPL-E's
dataset_builder/generic_translator.py with the C# row of its terms.csv.
The rewrite is plain substring replacement, applied to the docstring text
outside the ``>>>`` doctests, so it also mangles words that merely contain a
term ("happy" -> "hapcs", "python" -> "csthon"): upstream ships those words,
and we reproduce them.
"""

from __future__ import annotations

import re

# terms.csv columns (in order) and the C# row.  Order matters: "Python" is
# replaced before "py", and the article fix-up looks at the first letter.
TERMS_CS: tuple[tuple[str, str], ...] = (
    ("Python", "C#"),
    ("py", "cs"),
    ("array", "list"),
    ("list", "list"),
    ("tuple", "tuple"),
    ("dictionary", "dictionary"),
    ("None", "null"),
    ("True", "true"),
    ("False", "false"),
)

DOCTEST = re.compile(r">>>.*\n.*\n")


def _vowel(ch: str) -> bool:
    return ch.lower() in "aeiou"


def translate_terms(text: str, terms: tuple[tuple[str, str], ...] = TERMS_CS) -> str:
    for py, target in terms:
        if py not in text:
            continue
        if "an " + py in text and not _vowel(target[0]):
            text = text.replace("an " + py, "a " + target)
        elif "a " + py in text and _vowel(target[0]):
            text = text.replace("a " + py, "an " + target)
        # Not an else: later occurrences without an article still need it.
        text = text.replace(py, target)
    return text


def reword_source(source: str) -> str:
    """Reword the docstring of a Python prompt, leaving doctests untouched.

    The source must hold exactly one docstring (upstream splits on triple quotes).
    """
    before, doc, after = source.replace("'''", '"""').split('"""')
    out, last = [], 0
    for m in DOCTEST.finditer(doc):
        out.append(translate_terms(doc[last : m.start()]))
        out.append(doc[m.start() : m.end()])
        last = m.end()
    out.append(translate_terms(doc[last:]))
    return before + '"""' + "".join(out) + '"""' + after
