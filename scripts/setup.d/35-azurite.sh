#!/usr/bin/env bash
# azurite, the Azure Blob Storage emulator the Azure tests start on loopback:
# installed with npm into build/node_tools (tests/conftest.py looks there first,
# then on the PATH). Skipped when that version is there already.
set -euo pipefail
# 3.35.0 is the newest release whose package accepts Node.js 20 (later ones ask for 21 or 22).
version="3.35.0"
prefix="build/node_tools"
bin="$prefix/node_modules/.bin/azurite-blob"
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$version" ]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js 18 or later for azurite; the Azure tests will not run" >&2
    exit 0
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save "azurite@$version"
"$bin" --version >/dev/null
