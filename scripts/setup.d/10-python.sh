#!/usr/bin/env bash
# The package itself, editable, with its test extras (skipped when neither
# pyproject.toml nor what the build hook compiles has changed since the last
# install, and the compiled row check is there).
set -euo pipefail
stamp="build/.pip-stamp"
want="$(cat pyproject.toml hatch_build.py bytenite_nb/partitioners/rowscan.c | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "${PY:-python3}" -c "import bytenite_nb" 2>/dev/null \
        && { [ -f bytenite_nb/partitioners/_rowscan.native ] || ! "${PY:-python3}" hatch_build.py --has-compiler; }; then
    exit 0
fi
. scripts/lib/python.sh
pip_install_editable ".[test]"
mkdir -p build && echo "$want" > "$stamp"
