"""Build hook: compile ``bytenite_nb/partitioners/rowscan.c`` into a shared
library beside it (the fast row check of the ``rows`` partitioner, loaded
with ctypes), with the C compiler this machine has.

Optional: without a compiler the package installs all the same and checks
rows with numpy (a warning says so). ``python hatch_build.py`` builds the
library in place, e.g. after editing the C file in an editable install;
``python hatch_build.py --has-compiler`` tells whether it could.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = "bytenite_nb/partitioners/rowscan.c"
LIBRARY = "bytenite_nb/partitioners/_rowscan.native"  # also the wheel artifact pattern: "/" on every system


def find_compiler() -> list[str] | None:
    """The C compiler to use: ``$CC``, the one Python was built with, or the
    usual names; the first that is installed here (a Python built elsewhere
    may name a compiler this machine lacks)."""
    for candidate in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        command = shlex.split(candidate or "")
        if command and shutil.which(command[0]):
            return command
    return None


def compile_rowscan(root: str = HERE) -> str | None:
    """Compile the row check; return None on success, else why it failed."""
    compiler = find_compiler()
    if compiler is None:
        stale = os.path.join(root, LIBRARY)
        if os.path.exists(stale):
            os.remove(stale)
        return "no C compiler found (set CC, or install gcc or clang)"
    source, library = os.path.join(root, SOURCE), os.path.join(root, LIBRARY)
    partial = f"{library}.{os.getpid()}.partial"  # builds of one tree at once do not collide
    command = [*compiler, *shlex.split(os.environ.get("CFLAGS", "")), "-O2", "-fPIC", "-shared", "-o", partial,
               source]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        failure = None if done.returncode == 0 else f"{shlex.join(command)} failed: {done.stderr.strip()[-2000:]}"
    except OSError as e:
        failure = f"{compiler[0]}: {e}"
    if failure:
        for stale in (partial, library):  # a library built from an older rowscan.c must not stay in use
            if os.path.exists(stale):
                os.remove(stale)
        return failure
    os.replace(partial, library)  # a library in use is never rewritten in place
    return None


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script, without hatchling
    BuildHookInterface = object


class RowScanBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        failure = compile_rowscan(self.root)
        if failure:
            self.app.display_warning(f"the compiled row check was not built ({failure}); "
                                     "the rows partitioner checks rows with numpy instead")
            return
        build_data["artifacts"].append(LIBRARY)
        if version != "editable":
            # A wheel holding the library is for this platform only, but any Python 3:
            # the library is plain C, loaded with ctypes.
            from packaging.tags import sys_tags

            build_data["pure_python"] = False
            build_data["tag"] = f"py3-none-{next(iter(sys_tags())).platform}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--has-compiler"]:  # for scripts: exit status 0 if a compiler is installed
        sys.exit(0 if find_compiler() else 1)
    failure = compile_rowscan()
    print(failure or f"built {LIBRARY}", file=sys.stderr if failure else sys.stdout)
    sys.exit(1 if failure else 0)
