"""video-frames -> identity -> video-stitch in stream-copy mode on a 2-minute
720p H.264 clip (with AAC audio), side by side in one run with bare ffmpeg
doing the same: the segment muxer (-c copy) into chunks, then the concat
demuxer (-c copy) back into one file. Goal: at most 1.5x bare ffmpeg.

    python benchmarks/video_frames.py [--seconds 120] [--chunk 10] [--rounds 5]

Both sides cut at keyframes and copy packets; ours also plans from the packet
headers in a Dask task, runs one task per chunk on two worker processes and
stages the chunks' results, as every job does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

from _common import local_cluster, median, report, timed


def clip(path: str, seconds: int) -> str:
    """A ``seconds`` long 1280x720 30 fps H.264 clip with a 2-second GOP and AAC audio (made once)."""
    if os.path.exists(path):
        return path
    from bytenite_nb.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", path + ".tmp.mp4"], check=True)
    os.replace(path + ".tmp.mp4", path)
    return path


def bare_ffmpeg(src: str, folder: str, chunk: float) -> str:
    """Segment muxer, then concat demuxer, both by stream copy."""
    from bytenite_nb.media import run_ffmpeg

    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    run_ffmpeg(["-i", src, "-map", "0", "-c", "copy", "-f", "segment", "-segment_time", f"{chunk:g}",
                "-reset_timestamps", "1", os.path.join(folder, "seg_%04d.mp4")], name=src)
    segments = sorted(n for n in os.listdir(folder) if n.startswith("seg_"))
    with open(os.path.join(folder, "list.txt"), "w") as f:
        f.writelines(f"file '{os.path.join(folder, n)}'\n" for n in segments)
    out = os.path.join(folder, "out.mp4")
    run_ffmpeg(["-f", "concat", "-safe", "0", "-i", os.path.join(folder, "list.txt"), "-map", "0", "-c", "copy",
                out], name="list.txt")
    return out


def video_packets(path: str) -> int:
    import av

    with av.open(path) as c:
        return sum(1 for p in c.demux(video=0) if p.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--chunk", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = clip(os.path.join(args.data_dir, f"clip-720p-{args.seconds}s.mp4"), args.seconds)
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    out = os.path.join(home, "out")
    job = bn.Job(source=src, partitioner="video-frames", app="identity", assembler="video-stitch", destination=out,
                 params={"partitioner": {"seconds_per_chunk": args.chunk},
                         "assembler": {"output_name": "stitched.mp4"}})
    chunks = len(job.plan(client=client))
    scratch = os.path.join(home, "ffmpeg")
    ours, in_process, peer = [], [], []
    # one round first, not counted, for both: the workers import PyAV, the file is in the page cache
    job.run(client=client, force=True)
    bare_ffmpeg(src, scratch, args.chunk)
    for _ in range(args.rounds):
        shutil.rmtree(out, ignore_errors=True)
        ours.append(timed(lambda: job.run(client=client, force=True)))
        peer.append(timed(lambda: bare_ffmpeg(src, scratch, args.chunk)))
        # the same job in this process, one chunk after the other: the components' own cost
        in_process.append(timed(lambda: job.run(scheduler="sync", force=True)))
    want = video_packets(src)
    got, got_peer = video_packets(os.path.join(out, "stitched.mp4")), video_packets(os.path.join(scratch, "out.mp4"))
    ratio = median(ours) / median(peer)
    report(f"video-frames -> identity -> video-stitch, stream copy, {args.seconds}s 1280x720 H.264 + AAC "
           f"({os.path.getsize(src) / 2**20:.0f} MiB), {args.chunk:g}s chunks ({chunks} chunks), 2 worker processes", [
        ("bare ffmpeg: segment + concat (median)", f"{median(peer):.2f}s  {[round(x, 2) for x in peer]}"),
        ("bytenite-nb (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("bytenite-nb in one process, serial (median)", f"{median(in_process):.2f}s  "
                                                        f"{[round(x, 2) for x in in_process]}"),
        ("time ratio / bare ffmpeg", f"{ratio:.2f}x  (goal <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})"),
        ("time ratio in one process / bare ffmpeg", f"{median(in_process) / median(peer):.2f}x"),
        ("video frames: source / ours / ffmpeg's", f"{want} / {got} / {got_peer}"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
