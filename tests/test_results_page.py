"""results_page: the latest run on one static page, checked in a real headless browser."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _browser import render as browse

from safurai_csharp.results_page import ResultsPageError, build, render

ROOT = Path(__file__).resolve().parents[1]


def _cmp(base, cand, delta, p):
    return {"base_pass@1": base, "base_pass@1_ci95": {"lo": base - 0.05, "hi": base + 0.05},
            "merged_pass@1": cand, "merged_pass@1_ci95": {"lo": cand - 0.05, "hi": cand + 0.05},
            "delta": delta, "delta_ci95": {"lo": delta - 0.02, "hi": delta + 0.02}, "p_value": p,
            "improved": 7, "regressed": 2, "unchanged": 149, "test": "sign_flip",
            "base_compile_rate": 0.81, "merged_compile_rate": 0.84}


REPORT = {"baseline": "base", "candidate": "merged", "n": {"base": 10, "merged": 10}, "problems": 158,
          "corrected": _cmp(0.462, 0.5, 0.038, 0.0123), "official": _cmp(0.316, 0.33, 0.014, 0.41),
          "dev": {"baseline": "base", "candidate": "merged", "problems": 120, "n": {"base": 10, "merged": 10},
                  "official": _cmp(0.4, 0.45, 0.05, 0.002)}}
SPEC = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": [
    {"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}]}, "mark": "line",
    "encoding": {"x": {"field": "step", "type": "quantitative"}, "y": {"field": "loss", "type": "quantitative"}}}


def _cells(dom: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', dom)}


def _expected(report) -> dict[str, float]:
    """Every number of the scores table, from the report as the page must show it."""
    out = {}
    for prefix, section in (("", report), ("dev.", report.get("dev") or {})):
        b, c = section.get("baseline", "base"), section.get("candidate", "merged")
        for mode, cmp in section.items():
            if isinstance(cmp, dict) and "delta" in cmp:
                for key in (f"{b}_pass@1", f"{c}_pass@1", "delta", "p_value", "improved", "regressed",
                            f"{b}_compile_rate", f"{c}_compile_rate"):
                    out[f"{prefix}{mode}.{key}"] = cmp[key]
    return out


def test_every_score_of_the_report_is_on_the_page_exactly():
    page = render(REPORT, {}, title="t")
    assert _cells(page) == _expected(REPORT)
    assert "+3.8%" in page and "0.0123" in page  # as a person reads them


def test_a_run_without_a_dev_set_says_so():
    page = render({**REPORT, "dev": {"problems": 0}}, {}, title="t")
    assert "No dev set in this run" in page and not any(k.startswith("dev.") for k in _cells(page))


def test_text_from_the_data_cannot_inject_markup():
    evil = "</script><script>document.title='pwned'</script>"
    spec = {**SPEC, "data": {"values": [{"step": 1, "loss": 0.5, "name": evil}]}}
    page = render(REPORT, {evil: [spec]}, title=evil)
    assert evil not in page


def test_the_page_renders_offline_with_every_plot_and_the_reports_numbers(tmp_path):
    path = tmp_path / "index.html"
    path.write_text(render(REPORT, {"loss": [SPEC], "loss again": [SPEC, SPEC]}, title="t"))
    shown = browse(path)
    assert shown.errors == []
    assert 'data-rendered="3"' in shown.dom and shown.count(r'<svg[^>]*class="marks"') == 3
    assert _cells(shown.dom) == _expected(REPORT)


def test_a_broken_spec_shows_as_an_error_in_the_browser(tmp_path):
    # the check above can fail: a spec Vega-Lite rejects leaves a render error on the page
    path = tmp_path / "index.html"
    path.write_text(render(REPORT, {"bad": [{"mark": {"type": "no-such-mark"}, "data": {"values": []}}]},
                           title="t"))
    shown = browse(path)
    assert shown.errors and 'data-rendered="' not in shown.dom


def test_build_reads_the_report_of_params_and_the_projects_dvc_plots(tmp_path):
    proj = tmp_path
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=proj, check=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["report"]["metrics"] = "m/report.json"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (proj / "loss.json").write_text(json.dumps(SPEC["data"]["values"]))
    (proj / "dvc.yaml").write_text("plots:\n  - loss.json:\n      x: step\n      y: loss\n")
    with pytest.raises(ResultsPageError, match="m/report.json"):
        build(proj / "params.yaml", proj / "out/index.html")
    (proj / "m").mkdir()
    (proj / "m/report.json").write_text(json.dumps(REPORT))
    page = build(proj / "params.yaml", proj / "out/index.html").read_text()
    assert _cells(page) == _expected(REPORT) and '<figcaption>loss.json</figcaption>' in page
