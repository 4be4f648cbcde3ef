#!/usr/bin/env bash
# The package itself, editable, with its test extras (skipped when pyproject.toml
# has not changed since the last install).
set -euo pipefail
stamp="build/.pip-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "${PY:-python3}" -c "import bytenite_nb" 2>/dev/null; then
    exit 0
fi
. scripts/lib/python.sh
pip_install_editable ".[test]"
mkdir -p build && echo "$want" > "$stamp"
