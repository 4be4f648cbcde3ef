"""Client memory: the process that submits a job never holds the data.

Runs split-lines -> identity -> concat on a 256 MiB and a 1 GiB text file from
a client process connected to a separate scheduler and workers (``dask
scheduler`` and ``dask worker`` processes), and reports the client's peak
resident memory for each size. Goal: the peak does not grow with the input
(ratio 1 GiB / 256 MiB close to 1).

    python benchmarks/memory.py [--sizes-mib 256 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from _common import report, text_file

CLIENT = r"""
import json, os, resource, shutil, sys
from distributed import Client
import bytenite_nb as bn

def identity_app(chunk_path, results_dir, params):
    shutil.copyfile(chunk_path, os.path.join(results_dir, "part.txt"))

address, src, out = sys.argv[1:4]
client = Client(address)
job = bn.Job(source=src, partitioner="split-lines", app=identity_app, assembler="concat",
             destination=out, params={"partitioner": {"chunk_size": 32 * 2**20}})
result = job.run(client=client, force=True)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak_kib / 1024, "bytes": result.outputs[0]["size"]}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bnb-bench-mem-", dir=args.data_dir)
    env = dict(os.environ, BYTENITE_NB_HOME=os.path.join(work, "home"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env, stderr=subprocess.DEVNULL)]
    time.sleep(2)
    for _ in range(2):
        procs.append(subprocess.Popen(["dask", "worker", address, "--nthreads", "1", "--nworkers", "1"],
                                      env=env, stderr=subprocess.DEVNULL))
    rows = []
    peaks = {}
    try:
        for mib in args.sizes_mib:
            src = text_file(os.path.join(args.data_dir, f"text-{mib}MiB.txt"), mib * 2**20)
            done = subprocess.run([sys.executable, "-c", CLIENT, address, src, os.path.join(work, f"out-{mib}")],
                                  env=env, capture_output=True, text=True, check=True)
            data = json.loads(done.stdout.strip().splitlines()[-1])
            peaks[mib] = data["peak_mib"]
            rows.append((f"client peak RSS, {mib} MiB input", f"{data['peak_mib']:.0f} MiB "
                                                               f"(output {data['bytes'] / 2**20:.0f} MiB)"))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    sizes = sorted(peaks)
    if len(sizes) >= 2:
        ratio = peaks[sizes[-1]] / peaks[sizes[0]]
        rows.append((f"peak ratio {sizes[-1]} MiB / {sizes[0]} MiB input",
                     f"{ratio:.2f}x for {sizes[-1] / sizes[0]:.0f}x the data "
                     f"(goal: no growth with the input: {'met' if ratio < 1.15 else 'NOT met'})"))
    report("client memory", rows)


if __name__ == "__main__":
    main()
