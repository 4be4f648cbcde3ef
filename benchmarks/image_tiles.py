"""image-tiles -> identity -> image-mosaic on a large RGB PNG, side by side with
two peers in one run: Pillow opening and saving the same image, and a numpy
slicing loop that writes the same tiles as PNG, reads them back and pastes
them into the whole image. Goals: at most 1.5x the numpy loop; the planner's
peak RSS small (it reads the header only); a worker's peak RSS at most 2x the
decoded image.

    python benchmarks/image_tiles.py [--size 8000] [--tile 2000] [--rounds 3]

Each tile's worker decodes the PNG down to the tile's bottom edge (PNG has no
random access), so fewer, larger tiles cost less decoding in all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from _common import local_cluster, median, report, timed

PLANNER = """
import json, sys
from bytenite_nb.partitioners.image_tiles import ImageTiles
from bytenite_nb.partitioners.base import Source
from bytenite_nb.storage import FileInfo, parse_location
import PIL.PngImagePlugin, fsspec.implementations.local  # loaded before the baseline
path, tile = sys.argv[1], int(sys.argv[2])
def peak_kib():  # VmHWM: this process's own peak, not one inherited from its parent
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
before = peak_kib()
source = Source(parse_location(path, field="dataSource"), [FileInfo("file://" + path, "big.png", None)])
refs = list(ImageTiles().plan(source, {"tile_width": tile, "tile_height": tile}))
after = peak_kib()
print(json.dumps({"tiles": len(refs), "before_kib": before, "after_kib": after}))
"""


def big_png(path: str, size: int) -> str:
    """A ``size`` x ``size`` RGB PNG of gradients with noise (made once)."""
    if os.path.exists(path):
        return path
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(8)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack([x * 200, y * 200, (x + y) * 100], axis=-1)
    image += rng.normal(0, 12, image.shape).astype(np.float32)
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path + ".tmp.png", compress_level=1)
    os.replace(path + ".tmp.png", path)
    return path


def peak_mib() -> float:
    """This process's peak RSS (VmHWM: reset when a process starts, unlike ru_maxrss,
    which a spawned worker inherits from the process that made it)."""
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) / 1024


def pillow_open_save(src: str, dest: str) -> None:
    from PIL import Image

    with Image.open(src) as image:
        image.save(dest)  # Pillow's default PNG level, as image-mosaic writes


def numpy_tiles(src: str, folder: str, tile: int) -> None:
    """Decode once, slice every tile out, write it as PNG, read them all back into one image."""
    import numpy as np
    from PIL import Image

    with Image.open(src) as image:
        pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    names = []
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            name = os.path.join(folder, f"t{top}_{left}.png")
            Image.fromarray(pixels[top:top + tile, left:left + tile]).save(name, compress_level=1)
            names.append((top, left, name))
    out = np.empty_like(pixels)
    for top, left, name in names:
        with Image.open(name) as t:
            part = np.asarray(t)
        out[top:top + part.shape[0], left:left + part.shape[1]] = part
    Image.fromarray(out).save(os.path.join(folder, "whole.png"))  # the default level, as image-mosaic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = big_png(os.path.join(args.data_dir, f"image-{args.size}.png"), args.size)
    decoded_mib = args.size * args.size * 3 / 2**20
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    planner = subprocess.run([sys.executable, "-c", PLANNER, src, str(args.tile)], capture_output=True, text=True,
                             check=True)
    import json

    plan = json.loads(planner.stdout)
    planner_growth = (plan["after_kib"] - plan["before_kib"]) / 1024

    cluster, client = local_cluster(2)
    out = os.path.join(home, "out")
    job = bn.Job(source=src, partitioner="image-tiles", app="identity", assembler="image-mosaic", destination=out,
                 params={"partitioner": {"tile_width": args.tile, "tile_height": args.tile},
                         "assembler": {"output_name": "mosaic.png"}})
    worker_base = max(client.run(peak_mib).values())
    scratch = os.path.join(home, "scratch")
    ours, pillow, loop = [], [], []
    for _ in range(args.rounds):
        shutil.rmtree(out, ignore_errors=True)
        ours.append(timed(lambda: job.run(client=client, force=True)))
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        pillow.append(timed(lambda: pillow_open_save(src, os.path.join(scratch, "copy.png"))))
        loop.append(timed(lambda: numpy_tiles(src, scratch, args.tile)))
    import numpy as np
    from PIL import Image

    with Image.open(src) as a, Image.open(os.path.join(out, "mosaic.png")) as b:
        same = np.array_equal(np.asarray(a), np.asarray(b))
    worker_peak = max(client.run(peak_mib).values())
    vs_loop = median(ours) / median(loop)
    report(f"image-tiles -> identity -> image-mosaic, {args.size}x{args.size} RGB PNG, {args.tile}px tiles "
           f"({plan['tiles']} chunks), 2 worker processes", [
        ("Pillow open + save (median)", f"{median(pillow):.2f}s  {[round(x, 2) for x in pillow]}"),
        ("numpy slicing loop (median)", f"{median(loop):.2f}s  {[round(x, 2) for x in loop]}"),
        ("bytenite-nb (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("time ratio / Pillow open + save", f"{median(ours) / median(pillow):.2f}x"),
        ("time ratio / numpy loop", f"{vs_loop:.2f}x  (goal <= 1.5x: {'met' if vs_loop <= 1.5 else 'NOT met'})"),
        ("output pixel-identical to the input", str(same)),
        ("decoded image", f"{decoded_mib:.0f} MiB"),
        ("planner RSS growth while planning", f"{planner_growth:.1f} MiB  (goal: small, header only: "
                                              f"{'met' if planner_growth < 16 else 'NOT met'})"),
        ("worker peak RSS (the larger; tiles and the assembler)",
         f"{worker_peak:.0f} MiB = {worker_peak / decoded_mib:.2f}x the decoded image  (goal <= 2x: "
         f"{'met' if worker_peak <= 2 * decoded_mib else 'NOT met'})"),
        ("  of which above the idle worker", f"{worker_peak - worker_base:.0f} MiB = "
                                            f"{(worker_peak - worker_base) / decoded_mib:.2f}x the decoded image"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
