#!/usr/bin/env bash
# System packages the tests use. Installed when missing and we may (root or sudo).
set -euo pipefail
packages=()
for pkg in $(cat scripts/setup.d/apt-packages.txt | sed 's/#.*//'); do
    dpkg -s "$pkg" >/dev/null 2>&1 || packages+=("$pkg")
done
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "missing system packages (install them, or run as root): ${packages[*]}" >&2
    exit 0
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
