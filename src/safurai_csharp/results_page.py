"""`safurai-csharp results-page`: the latest run on one static HTML page (issue #14).

What it shows, all read from the files the pipeline already wrote: the scores of stage
`report` (metrics/report.json: baseline and candidate pass@1 with intervals, their paired
difference and p-value, per test mode, on HumanEval-C# and on the dev set), and every plot
`dvc plots show` knows (dvc.yaml: base vs merged per problem, the filter funnel, the training
loss), as the Vega-Lite specs DVC fills with the data (`dvc plots show --json`). No plot is
drawn here: DVC builds the specs and Vega-Embed renders them, from libraries inlined into the
page (web/), so it renders without a network. The page is written atomically and holds no
timestamp: the same run gives the same page.

Each number of the scores table carries its key and exact value (`data-key`, `data-value`),
so a test (or a script) can check the page against metrics/report.json.
"""

from __future__ import annotations

import argparse
import html
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UserError

# metrics/report.json: the columns of one mode's comparison, in the table's order
_SCORE_COLUMNS = (("{b}_pass@1", "baseline pass@1"), ("{c}_pass@1", "candidate pass@1"), ("delta", "difference"),
                  ("p_value", "p"), ("improved", "improved"), ("regressed", "regressed"),
                  ("{b}_compile_rate", "baseline compiles"), ("{c}_compile_rate", "candidate compiles"))
_INTERVALS = {"{b}_pass@1": "{b}_pass@1_ci95", "{c}_pass@1": "{c}_pass@1_ci95", "delta": "delta_ci95"}
_FRACTIONS = {"{b}_pass@1", "{c}_pass@1", "delta", "{b}_compile_rate", "{c}_compile_rate"}


class ResultsPageError(UserError):
    """The pipeline's outputs the page needs are missing or unreadable."""


def plot_specs(root: Path) -> dict[str, list[dict[str, Any]]]:
    """{plot id: [Vega-Lite spec, ...]} for every plot of the project, as DVC renders them."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ResultsPageError(f"`dvc plots show --json` failed: {proc.stderr.strip()[-500:]}")
    doc = json.loads(proc.stdout)
    specs: dict[str, list[dict[str, Any]]] = {}
    for plot_id, entries in (doc.get("data") or {}).items():
        kept = [e["content"] for e in entries if e.get("type") == "vega" and isinstance(e.get("content"), dict)]
        if kept:
            specs[plot_id] = kept
    return specs


def _cell(key: str, column: str, value: Any, interval: Mapping[str, float] | None, fraction: bool) -> str:
    """A table cell: the number as a person reads it, and `key`/exact value for machines."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "<td>–</td>"
    if fraction:
        sign = "+" if column == "delta" and value > 0 else ""
        text = f"{sign}{100 * value:.1f}%"
        if interval:
            text += f" <small>[{100 * interval['lo']:.1f}, {100 * interval['hi']:.1f}]</small>"
    elif column == "p_value":
        text = f"{value:.3g}"
    else:
        text = str(value)
    return f'<td data-key="{html.escape(key)}" data-value="{value!r}">{text}</td>'


def scores_table(section: Mapping[str, Any], baseline: str, candidate: str, prefix: str) -> str:
    """One row per test mode of a report section (the test set's, or its `dev` part)."""
    modes = [m for m in ("corrected", "official") if isinstance(section.get(m), Mapping)]
    modes += sorted(k for k, v in section.items() if isinstance(v, Mapping) and "delta" in v and k not in modes)
    if not modes:
        return "<p>No comparison (no problems).</p>"
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in _SCORE_COLUMNS)
    rows = []
    for mode in modes:
        cmp = section[mode]
        cells = []
        for pattern, _ in _SCORE_COLUMNS:
            key = pattern.format(b=baseline, c=candidate)
            ci = _INTERVALS.get(pattern)
            cells.append(_cell(f"{prefix}{mode}.{key}", pattern, cmp.get(key),
                               cmp.get(ci.format(b=baseline, c=candidate)) if ci else None, pattern in _FRACTIONS))
        rows.append(f"<tr><th>{html.escape(mode)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>tests</th>{head}</tr>{''.join(rows)}</table>"


def render(report: Mapping[str, Any], plots: Mapping[str, list[dict[str, Any]]], *, title: str,
           subtitle: str = "") -> str:
    from .web import offline_scripts, script_json

    b, c = str(report.get("baseline", "baseline")), str(report.get("candidate", "candidate"))
    n = report.get("n") or {}
    dev = report.get("dev") or {}
    samples = ", ".join(f"{html.escape(str(k))}: n = {html.escape(str(v))}" for k, v in n.items())
    sections = [
        f"<h2>HumanEval-C# (test set, {report.get('problems', '?')} problems)</h2>",
        f"<p>{html.escape(c)} against {html.escape(b)}, paired over problems ({samples}). "
        "Intervals are 95% bootstrap intervals over problems, in points; p is the exact McNemar test "
        "(n = 1) or a sign-flip permutation test (n &gt; 1).</p>",
        scores_table(report, b, c, ""),
        f"<h2>Dev set ({dev.get('problems', 0)} problems, held out by lineage: recipes are chosen here)</h2>",
        scores_table(dev, str(dev.get("baseline", b)), str(dev.get("candidate", c)), "dev.")
        if dev.get("problems") else "<p>No dev set in this run.</p>",
        "<h2>Plots</h2>",
    ]
    if not plots:
        sections.append("<p>No plots: <code>dvc plots show --json</code> gave none here (is this a DVC project with "
                        "<code>plots</code> in dvc.yaml?).</p>")
    embeds = []
    for i, (plot_id, specs) in enumerate(plots.items()):
        for j, spec in enumerate(specs):
            div = f"plot-{i}-{j}"
            sections.append(f'<figure><figcaption>{html.escape(plot_id)}</figcaption><div id="{div}"></div></figure>')
            embeds.append((div, spec))
    calls = ",\n".join(f"vegaEmbed('#{div}', {script_json(spec)}, {{actions: false, renderer: 'svg'}})"
                       for div, spec in embeds)
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
th {{ background: #f4f4f4; }}
small {{ color: #666; }}
figure {{ margin: 1.5em 0; overflow-x: auto; }}
figcaption {{ font-weight: bold; margin-bottom: 0.5em; }}
</style>
{offline_scripts()}
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
{body}
<script>
// data-rendered: how many plots Vega-Embed finished (a test waits for it)
Promise.all([
{calls}
]).then(function (r) {{ document.body.dataset.rendered = String(r.length); }},
        function (e) {{ document.body.dataset.renderError = String(e); console.error(e); }});
</script>
</body>
</html>
"""


def _commit(root: Path) -> str:
    proc = subprocess.run(["git", "log", "-1", "--format=%h %cs %s"], cwd=root, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def build(params_path: str | Path = "params.yaml", out: str | Path = "results/index.html") -> Path:
    """Writes the page for the project of `params_path` (its directory is the DVC root)."""
    from .config import load_params
    from .jsonl import write_atomic

    params = load_params(params_path)
    root = Path(params_path).resolve().parent
    report_path = root / params.report.metrics
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsPageError(f"{params.report.metrics}: no such file (run `dvc repro report` first)") from None
    except json.JSONDecodeError as e:
        raise ResultsPageError(f"{params.report.metrics}: not JSON ({e})") from None
    if not isinstance(report, dict):
        raise ResultsPageError(f"{params.report.metrics}: not a report (a JSON object, as stage report writes)")
    commit = _commit(root)
    page = render(report, plot_specs(root), title="safurai-csharp: results of the latest run",
                  subtitle=f"git {commit}" if commit else "")
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, page)
    return target


def run(args: argparse.Namespace) -> None:
    print(f"file://{build(args.params, args.out).resolve()}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results-page", help="scores, per-problem results, funnel and training loss of the "
                                            "latest run on one static HTML page that renders offline")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("-o", "--out", default="results/index.html", help="the page to write (default: %(default)s)")
    p.set_defaults(func=run)
