"""Uppercase every line of a chunk: a ByteNite-style app (runtime contract)."""

import json
import os

task_dir = os.environ["TASK_DIR"]
results_dir = os.environ["TASK_RESULTS_DIR"]
params = json.loads(os.environ.get("APP_PARAMS") or "{}")

with open(os.path.join(task_dir, "data.bin"), "rb") as src:
    text = src.read().decode("utf-8")
if params.get("reverse_words"):
    text = "\n".join(" ".join(reversed(line.split(" "))) for line in text.split("\n"))
with open(os.path.join(results_dir, "upper.txt"), "wb") as out:
    out.write(text.upper().encode("utf-8"))
