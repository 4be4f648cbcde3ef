#!/usr/bin/env bash
# The package itself, editable, with its test extras (skipped when pyproject.toml
# has not changed since the last install).
set -euo pipefail
stamp="build/.pip-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "${PY:-python3}" -c "import bytenite_nb" 2>/dev/null; then
    exit 0
fi
# 40-labextension.sh points Jupyter's copy of the extension at the working
# build with a symlink; pip, replacing an earlier install, would try to remove
# that copy's files through it. The symlink goes first and 40 puts it back.
target="$("${PY:-python3}" -c 'import os, sys; print(os.path.join(sys.prefix, "share", "jupyter", "labextensions", "bytenite-nb"))')"
if [ -L "$target" ]; then
    rm "$target"
fi
"${PY:-python3}" -m pip install -q -e ".[test]"
mkdir -p build && echo "$want" > "$stamp"
