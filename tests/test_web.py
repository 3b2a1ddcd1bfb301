"""web/: the vendored Vega libraries and the offline page template `dvc plots show` uses."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

from _browser import render

from safurai_csharp.web import ERROR_HOOK, VENDORED, dvc_template, offline_scripts, script_json

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src/safurai_csharp/web/vendor"
DVC = [sys.executable, "-m", "dvc"]


def test_each_vendored_file_is_the_one_its_license_note_names():
    notes = (VENDOR / "LICENSES.txt").read_text()
    for name in VENDORED:
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert f"{name}: npm package" in notes and digest in notes, name


def test_scripts_are_inline_and_load_nothing():
    scripts = offline_scripts()
    assert scripts.startswith(ERROR_HOOK)
    assert scripts.count("<script>") == len(VENDORED) + 1 == scripts.count("</script>")
    assert not re.search(r"<script[^>]*\bsrc=", scripts)
    assert "sourceMappingURL" not in scripts  # no request for a map file


def test_script_json_cannot_close_the_script_element():
    text = script_json({"problem": "</script><script>alert(1)</script>"})
    assert "</" not in text and json.loads(text)["problem"].startswith("</script>")


def test_the_committed_dvc_template_is_the_generated_one_and_dvc_uses_it():
    # regenerate: python -c "from safurai_csharp.web import dvc_template; print(dvc_template(), end='')" > .dvc/plots/offline.html
    assert (ROOT / ".dvc/plots/offline.html").read_text() == dvc_template()
    configured = subprocess.run([*DVC, "config", "plots.html_template"], cwd=ROOT, capture_output=True, text=True)
    assert configured.stdout.strip() == "plots/offline.html", configured.stderr
    template = dvc_template()
    assert "{plot_divs}" in template and "{scripts}" not in template  # no CDN tags from DVC


def _dvc_page(tmp_path, template: str | None) -> Path:
    """`dvc plots show` of a one-plot project, with DVC's default page or `template`."""
    proj = tmp_path / ("offline" if template else "default")
    proj.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True)
    subprocess.run([*DVC, "init", "-q"], cwd=proj, check=True)
    (proj / "loss.json").write_text(json.dumps([{"step": i, "loss": 1 / (i + 1)} for i in range(5)]))
    (proj / "dvc.yaml").write_text("plots:\n  - loss.json:\n      x: step\n      y: loss\n")
    if template:
        (proj / ".dvc/plots").mkdir(exist_ok=True)
        (proj / ".dvc/plots/offline.html").write_text(template)
        subprocess.run([*DVC, "config", "plots.html_template", "plots/offline.html"], cwd=proj, check=True)
    subprocess.run([*DVC, "plots", "show", "-o", "out"], cwd=proj, check=True, capture_output=True)
    return proj / "out/index.html"


def test_dvc_plots_render_offline_with_the_template_and_not_without(tmp_path):
    offline = render(_dvc_page(tmp_path, dvc_template()))
    assert offline.errors == [] and offline.count(r'class="marks"') == 1, offline.errors
    # DVC's own page loads Vega from a CDN: offline it draws nothing and the console says why
    default = render(_dvc_page(tmp_path, None))
    assert default.count(r'class="marks"') == 0 and any("vegaEmbed is not defined" in e for e in default.errors)
