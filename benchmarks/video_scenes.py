"""video-scenes' shot-change detection on a 720p H.264 clip with hard cuts,
side by side in one run with two peers: decoding alone at the same downscale
(PyAV with the same threads and the same small YUV picture, no comparison),
and PySceneDetect's default detector (``ContentDetector``, its own default
downscale). Goals: detection at least 0.8x the speed of decoding alone, and
faster than PySceneDetect. Each is timed by wall clock and by the CPU time of
this process (all its threads), the best of the rounds: on a shared machine
CPU time is the steadier of the two.

    python benchmarks/video_scenes.py [--seconds 60] [--height 720] [--rounds 5]

The clip is made once with ffmpeg (lavfi patterns with motion, a hard cut every
2-5 seconds) and kept in the temp folder.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time

from _common import median, report, timed

from bytenite_nb.media import ffmpeg_exe
from bytenite_nb.scene_detection import (DEFAULT_ANALYSIS_WIDTH, analysis_size, find_cuts, open_video, scan,
                                         small_picture)

FPS = 30
#: lavfi sources that are cheap to render at 720p, each with some motion
KINDS = ["testsrc2", "smptehdbars,scroll=h=0.01", "testsrc", "rgbtestsrc,scroll=v=0.02",
         "gradients=speed=0.03:seed=4", "color=c=0x305070,noise=alls=20:allf=t:all_seed=2",
         "testsrc2,hue=h=t*90", "testsrc2,scroll=h=0.05"]


def make_clip(path: str, seconds: float, height: int) -> list[int]:
    """An H.264 clip of scenes 2-5 s long joined by hard cuts; return the cut frames."""
    rng = random.Random(7)
    lengths, total = [], 0
    while total < seconds * FPS:
        n = min(rng.randint(2 * FPS, 5 * FPS), int(seconds * FPS) - total)
        lengths.append(n)
        total += n
    width = height * 16 // 9
    args, chains = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"], []
    for i, n in enumerate(lengths):
        src, _, extra = KINDS[i % len(KINDS)].partition(",")
        args += ["-f", "lavfi", "-i", f"{src}{':' if '=' in src else '='}size={width}x{height}:rate={FPS}"]
        chains.append(f"[{i}]trim=end_frame={n},setpts=PTS-STARTPTS{',' + extra if extra else ''},"
                      f"format=yuv420p,setsar=1[v{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(lengths))) + \
        f"concat=n={len(lengths)}:v=1:a=0[v]"
    if not os.path.exists(path):
        subprocess.run(args + ["-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
                               "-crf", "23", path + ".tmp.mp4"], check=True)
        os.replace(path + ".tmp.mp4", path)
    cuts, at = [], 0
    for n in lengths[:-1]:
        at += n
        cuts.append(at)
    return cuts


def decode_only(path: str, analysis_width: int = DEFAULT_ANALYSIS_WIDTH) -> int:
    """Decode and scale every frame to the detector's small picture, comparing nothing."""
    from av.video.reformatter import VideoReformatter

    container, stream = open_video(path, os.path.basename(path))
    frames, size, reformatter = 0, None, VideoReformatter()
    with container:
        for frame in container.decode(stream):
            if size is None:
                size = analysis_size(frame.width, frame.height, analysis_width)
            small_picture(frame, size, reformatter)
            frames += 1
    return frames


def ours(path: str) -> list[int]:
    found = scan(path, os.path.basename(path))
    return find_cuts(found.diffs, min_length=15)


def pyscenedetect(path: str) -> list[int]:
    from scenedetect import ContentDetector, detect

    return [start.frame_num for start, _ in detect(path, ContentDetector())][1:]


def matched(found: list[int], truth: list[int]) -> str:
    hits = sum(1 for c in found if any(abs(c - t) <= 1 for t in truth))
    return f"{hits}/{len(truth)} cuts found, {len(found) - hits} false"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = os.path.join(tempfile.gettempdir(), f"bytenite-nb-bench-scenes-{args.height}p-{int(args.seconds)}s.mp4")
    truth = make_clip(path, args.seconds, args.height)
    frames = decode_only(path)
    contenders = {"decode": lambda: decode_only(path),
                  "ours": lambda: results.__setitem__("ours", ours(path)),
                  "pyscenedetect": lambda: results.__setitem__("pyscenedetect", pyscenedetect(path))}
    results: dict[str, list] = {}
    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):  # interleaved, so a change of load hits every contender alike
        for key, fn in contenders.items():
            started = time.process_time()  # every thread of this process: decoding threads included
            wall[key].append(timed(fn))
            cpu[key].append(time.process_time() - started)
    # the best round: on a shared machine the others measure the neighbours too
    w = {k: min(v) for k, v in wall.items()}
    c = {k: min(v) for k, v in cpu.items()}

    def line(key: str) -> str:
        return (f"{w[key]:.2f} s  {frames / w[key]:.0f} frames/s  "
                f"(CPU {c[key]:.2f} s, median wall {median(wall[key]):.2f} s)")

    report(f"video-scenes detection, {args.seconds:.0f} s {args.height}p H.264, {frames} frames, "
           f"{len(truth)} cuts, best of {args.rounds}", [
               ("decode alone (same downscale)", line("decode")),
               ("video-scenes detection", f"{line('ours')}  {matched(results['ours'], truth)}"),
               ("PySceneDetect ContentDetector",
                f"{line('pyscenedetect')}  {matched(results['pyscenedetect'], truth)}"),
               ("speed vs decoding alone", f"{w['decode'] / w['ours']:.2f}x wall, {c['decode'] / c['ours']:.2f}x CPU  "
                                           "(goal >= 0.8x)"),
               ("speed vs PySceneDetect", f"{w['pyscenedetect'] / w['ours']:.2f}x wall, "
                                          f"{c['pyscenedetect'] / c['ours']:.2f}x CPU  (goal > 1x)"),
           ])

if __name__ == "__main__":
    main()
