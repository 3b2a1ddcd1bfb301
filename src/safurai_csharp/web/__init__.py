"""Pages that render without a network (issue #14).

`dvc plots show` writes a page that loads Vega, Vega-Lite and Vega-Embed from a CDN, so on a
machine without internet every plot stays blank. The same three libraries, at the versions
dvc-render asks for, are vendored under `vendor/` (LICENSES.txt says where each file comes
from) and inlined into every page written here: the DVC page template that `.dvc/config`
points `dvc plots show` at, and the results page (results_page.py).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

# dvc-render's order: Vega-Lite and Vega-Embed look up the globals the previous ones define.
VENDORED = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

# DVC fills {plot_divs}; its {scripts} placeholder (the CDN <script> tags) is left out on
# purpose, and so is {refresh_tag} (`dvc plots show` never refreshes a page it writes once).
_DVC_PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


# First on every page: uncaught errors and console.error calls are kept on <html
# data-errors="...">, so a headless browser's DOM dump shows whether the page broke.
ERROR_HOOK = """<script>(function () {
  var root = document.documentElement, keep = function (m) {
    root.dataset.errors = (root.dataset.errors ? root.dataset.errors + " | " : "") + String(m); };
  window.addEventListener("error", function (e) { keep(e.message || (e.target && e.target.src) || e); }, true);
  window.addEventListener("unhandledrejection", function (e) { keep(e.reason); });
  var error = console.error; console.error = function () {
    keep(Array.prototype.join.call(arguments, " ")); return error.apply(console, arguments); };
})();</script>"""


@cache
def offline_scripts() -> str:
    """The error hook, then the vendored libraries as inline <script> elements, in load order."""
    parts = [ERROR_HOOK]
    for name in VENDORED:
        code = files(__package__).joinpath("vendor", name).read_text(encoding="utf-8")
        # No "</script" can end an inline script early (none is there today; a newer build may).
        code = code.replace("</script", "<\\/script")
        parts.append(f"<script>/* {name} (vendor/LICENSES.txt) */\n{code}\n</script>")
    return "\n".join(parts)


def dvc_template() -> str:
    """The HTML template for `dvc plots show` / `dvc plots diff` (`plots.html_template` in
    .dvc/config): DVC's own page, with the libraries inline instead of from a CDN."""
    return _DVC_PAGE.format(scripts=offline_scripts())


def script_json(value: object) -> str:
    """JSON to put inside an inline <script>: '</' cannot close the element early."""
    import json

    return json.dumps(value).replace("</", "<\\/")
