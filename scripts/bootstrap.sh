#!/usr/bin/env bash
# Set up what `make train` and `make test` need, and only what is missing: a virtual environment, torch (the
# right build, before anything pulls the wrong one), then the project with its extras. Run again, it checks
# and calls no pip when nothing changed.
#
# Variables (environment or `make VAR=value`):
#   VENV             the virtual environment (default .venv; created with python3 -m venv if missing)
#   PYTHON           the interpreter that creates it (default python3)
#   TORCH_VERSION    the torch to install when the environment has none of that version (default 2.13.0)
#   TORCH_INDEX_URL  where torch comes from: default the PyTorch CPU index when there is no NVIDIA GPU
#                    (no nvidia-smi), else the default index (on Linux, PyPI's torch is the CUDA build);
#                    set it to another build's index (https://download.pytorch.org/whl/cu126), or empty
#                    for the default index
#   N2N_EXTRAS       the extras to install (default dev: all of them, plus pytest, ruff and pre-commit;
#                    empty: the core alone)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
N2N_EXTRAS=${N2N_EXTRAS-dev}
CPU_INDEX=https://download.pytorch.org/whl/cpu
if [ -z "${TORCH_INDEX_URL+set}" ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then TORCH_INDEX_URL=""; else TORCH_INDEX_URL=$CPU_INDEX; fi
fi
PY=$VENV/bin/python
STAMP=$VENV/.n2n-bootstrap  # written after the project's install: the pyproject.toml and extras it installed

say() { echo "bootstrap: $*" >&2; }
pip_install() {  # every pip call goes through here, and says so
    say "pip install $*"
    "$PY" -m pip install --disable-pip-version-check "$@"
}

if [ ! -x "$PY" ]; then
    say "creating the virtual environment $VENV ($PYTHON -m venv)"
    "$PYTHON" -m venv "$VENV"
fi

# What is installed, read from the packages' metadata (fast: torch itself is not imported). -I: this folder is
# not on sys.path, so n2n counts only when it is installed from here (pip's direct_url.json).
state=$("$PY" -I - "$TORCH_VERSION" "$PWD" <<'EOF'
import importlib.metadata as md, json, os, sys
from urllib.parse import unquote, urlparse
try:
    torch = md.version("torch").split("+")[0]
except md.PackageNotFoundError:
    torch = ""
try:
    url = json.loads(md.distribution("n2n").read_text("direct_url.json") or "{}").get("url", "")
except md.PackageNotFoundError:
    url = ""
here = url.startswith("file:") and os.path.realpath(unquote(urlparse(url).path)) == os.path.realpath(sys.argv[2])
print("torch-ok" if torch == sys.argv[1] else "torch-missing", "n2n-ok" if here else "n2n-missing")
EOF
)

if [[ $state == torch-missing* ]]; then
    if [ -n "$TORCH_INDEX_URL" ]; then
        # Short time-out, one retry: an unreachable index must not hang the set-up.
        if ! pip_install --timeout 15 --retries 1 --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"; then
            say "could not install torch $TORCH_VERSION from $TORCH_INDEX_URL; trying the default index" \
                "(on Linux its torch is the CUDA build, several GB, unless pip finds another wheel)"
            pip_install "torch==$TORCH_VERSION"
        fi
    else
        pip_install "torch==$TORCH_VERSION"
    fi
fi

want="$N2N_EXTRAS $(cksum < pyproject.toml)"
if [[ $state == *n2n-missing ]] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    spec="."
    [ -n "$N2N_EXTRAS" ] && spec=".[$N2N_EXTRAS]"
    say "installing n2n and its extras ($spec; the first time, a few minutes)"
    pip_install -q -e "$spec"  # torch is installed and within the project's range: pip keeps it
    echo "$want" > "$STAMP"
fi

torch_now=$("$PY" -c 'import importlib.metadata as md; print(md.version("torch"))')
if [[ $torch_now != "$TORCH_VERSION"* ]]; then
    say "warning: torch is $torch_now, not $TORCH_VERSION"
fi
say "ready: $VENV (torch $torch_now, n2n installed from $PWD)"
# make runs everything through $VENV/bin; commands typed by hand (n2n, python train.py, tensorboard) need it active
say "to run n2n, python train.py and tensorboard yourself: . $VENV/bin/activate (once per shell); make help lists shortcuts"
