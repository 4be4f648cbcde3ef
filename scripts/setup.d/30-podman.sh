#!/usr/bin/env bash
# Podman for the container tests: configured for this kind of machine, and the
# test images built locally (no registry is reachable from CI).
#
# - runc as the OCI runtime (crun fails on this machine's cgroups);
# - lower default rlimits: podman's defaults (the host's hard limits) are more
#   than an unprivileged container may set here;
# - the test images, from busybox-static and the installed Python packages.
set -euo pipefail
if ! command -v podman >/dev/null; then
    echo "podman is not installed (scripts/setup.d/apt-packages.txt lists it); container tests will not run" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    conf_dir=/etc/containers/containers.conf.d
else
    conf_dir="${XDG_CONFIG_HOME:-$HOME/.config}/containers/containers.conf.d"
fi
conf="$conf_dir/50-bytenite-nb.conf"
want='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"'
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
    mkdir -p "$conf_dir"
    printf '%s\n' "$want" > "$conf"
    echo "wrote $conf" >&2
fi
bash scripts/build-test-images.sh
