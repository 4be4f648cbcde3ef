#!/usr/bin/env bash
# The JupyterLab extension (labextension/): its npm packages, a build into
# bytenite_nb/labextension when a source changed, and Jupyter's copy of it
# pointed at that build, so a rebuild shows on the next page load.
# (pip install runs the same build through hatch-jupyter-builder; this step
# keeps a working copy current without reinstalling.)
set -euo pipefail
if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js 18 or later to build the JupyterLab extension" >&2
    exit 1
fi
cd labextension
# npm leaves node_modules/.package-lock.json behind; older than the lock file = stale
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
built=../bytenite_nb/labextension/package.json
if [ ! -f "$built" ] || [ -n "$(find src style schema package.json install.json -newer "$built" -print -quit)" ]; then
    npm run build
fi
cd ..
target="$("${PY:-python3}" -c 'import os, sys; print(os.path.join(sys.prefix, "share", "jupyter", "labextensions", "bytenite-nb"))')"
if [ "$(readlink -f "$target")" != "$(readlink -f bytenite_nb/labextension)" ]; then
    "${PY:-python3}" -m jupyter labextension develop --overwrite . >/dev/null
fi
