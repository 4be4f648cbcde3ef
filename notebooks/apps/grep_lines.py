"""Keep the lines of one chunk that match a regular expression.

A command app following ByteNite's runtime contract: it reads TASK_DIR/data.bin,
takes ``{"pattern": "..."}`` from APP_PARAMS and writes the matching lines to
TASK_RESULTS_DIR/matches.log.
"""

import json
import os
import re

params = json.loads(os.environ.get("APP_PARAMS") or "{}")
if "pattern" not in params:
    raise SystemExit("params.app.pattern is required (a regular expression)")
matcher = re.compile(params["pattern"])
with open(os.path.join(os.environ["TASK_DIR"], "data.bin"), encoding="utf-8", errors="replace") as src, \
        open(os.path.join(os.environ["TASK_RESULTS_DIR"], "matches.log"), "w", encoding="utf-8") as out:
    for line in src:
        if matcher.search(line):
            out.write(line)
