#!/usr/bin/env bash
# Build the container images the tests use, from files already on this machine
# (no registry is needed): a busybox image from the busybox-static binary, and a
# Python image from the installed Debian python3 and the packages it
# depends on, with busybox for a shell. Images that exist already are kept;
# --force builds them again.
#
#   localhost/bytenite-nb-test/busybox:1
#   localhost/bytenite-nb-test/python:3
set -euo pipefail
ENGINE="${BYTENITE_NB_CONTAINER_ENGINE:-podman}"
BUSYBOX_IMAGE=localhost/bytenite-nb-test/busybox:1
PYTHON_IMAGE=localhost/bytenite-nb-test/python:3
force=0
[ "${1:-}" = "--force" ] && force=1

# A static busybox runs in an image that has no C library of its own.
busybox="$(command -v busybox || true)"
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "build-test-images: a static busybox is missing (install busybox-static)" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

have() { "$ENGINE" image exists "$1" 2>/dev/null; }

installed_pkg() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }

# The installed packages that "$@" need, following Pre-Depends and Depends
# (the first installed choice of each alternative; virtual names are skipped).
deps_closure() {
    local -A seen=()
    local queue=("$@") pkg group alt name
    while [ ${#queue[@]} -gt 0 ]; do
        pkg="${queue[0]}"
        queue=("${queue[@]:1}")
        [ -n "${seen[$pkg]:-}" ] && continue
        seen[$pkg]=1
        local groups=()
        IFS=',' read -ra groups <<< "$(dpkg-query -W -f '${Pre-Depends}, ${Depends}' "$pkg")"
        for group in "${groups[@]}"; do
            name=""
            local alts=()
            IFS='|' read -ra alts <<< "$group"
            for alt in "${alts[@]}"; do
                alt="$(sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' <<< "$alt")"
                if [ -n "$alt" ] && installed_pkg "$alt"; then
                    name="$alt"
                    break
                fi
            done
            [ -n "$name" ] && queue+=("$name")
        done
    done
    printf '%s\n' "${!seen[@]}" | sort
}

# Shell tools in /usr/local/bin, without replacing anything the image has already.
add_busybox() {
    local root="$1"
    mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
    chmod 1777 "$root/tmp"
    chmod 755 "$root"
    cp "$busybox" "$root/usr/local/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] && continue
        for dir in usr/local/bin usr/bin bin; do
            [ -e "$root/$dir/$applet" ] && continue 2
        done
        ln -s busybox "$root/usr/local/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
}

import_root() {
    local root="$1" image="$2"
    tar -C "$root" -cf "$work/rootfs.tar" .
    "$ENGINE" import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["sh"]' \
        "$work/rootfs.tar" "$image" >/dev/null
    rm -f "$work/rootfs.tar"
    echo "built $image" >&2
}

if [ $force = 1 ] || ! have "$BUSYBOX_IMAGE"; then
    root="$work/busybox"
    mkdir -p "$root"
    add_busybox "$root"
    import_root "$root" "$BUSYBOX_IMAGE"
fi

if [ $force = 1 ] || ! have "$PYTHON_IMAGE"; then
    root="$work/python"
    mkdir -p "$root"
    # Debian's own Python (not whichever python3 comes first on PATH): its files are what goes in.
    if [ ! -x /usr/bin/python3 ]; then
        echo "the Python test image needs Debian's python3-minimal (scripts/setup.d/apt-packages.txt)" >&2
        exit 1
    fi
    python_version="$(/usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    # The interpreter's packages and everything they depend on, as installed
    # here: a Debian release's library names (libmpdec3, libssl3...) are its own.
    roots="python3-minimal python${python_version}-minimal libpython${python_version}-stdlib"
    for pkg in $roots; do
        if ! installed_pkg "$pkg"; then
            # An image without its interpreter or libraries would only fail later, obscurely.
            echo "missing Debian package $pkg for the Python test image" >&2
            exit 1
        fi
    done
    mapfile -t installed < <(deps_closure $roots)
    # The files of those packages as installed here (merged /usr symlinks kept as they are).
    dpkg -L "${installed[@]}" | sed -n 's|^/||p' | sort -u | while read -r path; do
        [ -e "/$path" ] || [ -L "/$path" ] && printf '%s\n' "$path"
    done > "$work/files"
    # Merged /usr: the targets of /bin, /lib... must exist before their symlinks are unpacked.
    mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64"
    tar -C / --no-recursion -cf - -T "$work/files" | tar -C "$root" -xf -
    add_busybox "$root"
    import_root "$root" "$PYTHON_IMAGE"
fi
