# Sourced by the scripts: PY is the Python to install into and run with.
# The active virtual environment if there is one; else python3, unless it is a
# distribution's externally managed Python (PEP 668), in which case a .venv in
# the checkout (made on first use, and put first on PATH for the tests).
if [ -n "${VIRTUAL_ENV:-}" ]; then
    PY=python
elif python3 -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    PY="$PWD/.venv/bin/python"
    export PATH="$PWD/.venv/bin:$PATH"
else
    PY=python3
fi
export PY

# pip install -e "$@" into $PY. 40-labextension.sh may have pointed Jupyter's
# copy of the extension at the working build with a symlink; pip, replacing
# an earlier install, would try to remove that copy's files through it, so the
# symlink goes first (40-labextension.sh puts it back).
pip_install_editable() {
    local target
    target="$("$PY" -c 'import os, sys; print(os.path.join(sys.prefix, "share", "jupyter", "labextensions", "bytenite-nb"))')"
    if [ -L "$target" ]; then
        rm "$target"
    fi
    "$PY" -m pip install -q -e "$@"
}
