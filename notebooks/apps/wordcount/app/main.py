"""Count the words of one chunk, following ByteNite's runtime contract.

Reads TASK_DIR/data.bin, writes TASK_RESULTS_DIR/counts.tsv with one
"word<TAB>count" line per word, most frequent first.
"""

import collections
import json
import os
import re

params = json.loads(os.environ.get("APP_PARAMS") or "{}")
text = open(os.path.join(os.environ["TASK_DIR"], "data.bin"), encoding="utf-8").read()
if params.get("lowercase", True):
    text = text.lower()
words = [w for w in re.findall(r"[A-Za-z']+", text) if len(w) >= params.get("min_length", 1)]
counts = collections.Counter(words)
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "counts.tsv"), "w", encoding="utf-8") as out:
    for word, n in counts.most_common():
        out.write(f"{word}\t{n}\n")
