"""The media plan preview side by side with the ffmpeg program doing the same
work the plain way, in one run:

- waveform of a long audio file (default 60 min of AAC): the preview measures
  one short window per pixel column after a seek; the peer decodes the whole
  file to 8 kHz mono through ``ffmpeg ... -f f32le -`` and reduces it in numpy
  as it streams. Goal: at most 0.25x the peer's time; the preview's memory
  growth small (a frame at a time, never the decoded file);
- waveform of a short file (default 5 min, under the full-decode limit): both
  decode it whole. Goal: at most 1.5x the peer;
- frame strip of a video (default 5 min, 8 chunk starts): the preview seeks with
  PyAV in one process; the peer runs ``ffmpeg -ss T -i clip -frames:v 1`` per
  frame. Goal: at most 1x the peer.

    python benchmarks/media_preview.py [--long-minutes 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import median, report, timed

WIDTH = 800

PREVIEW = """
import json, sys
from bytenite_nb.media_preview.waveform import waveform_picture
from bytenite_nb.partitioners import ChunkRef
def peak_kib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
import av, numpy, PIL.Image, fsspec.implementations.local  # loaded before the baseline
path, minutes = sys.argv[1], float(sys.argv[2])
before = peak_kib()
refs = [ChunkRef(index=i, url=path, meta={"source": "long.m4a", "start": i * 60.0, "end": (i + 1) * 60.0})
        for i in range(int(minutes))]
waveform_picture(path, refs)
print(json.dumps({"before_kib": before, "after_kib": peak_kib()}))
"""


def media(path: str, source: str, *args: str) -> str:
    """``path`` made from an ffmpeg lavfi ``source`` (once; kept between runs)."""
    if not os.path.exists(path):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, path + ".tmp.mp4"],
                       check=True)
        os.replace(path + ".tmp.mp4", path)
    return path


def refs_for(path: str, seconds: float, n: int, video: bool = False):
    from bytenite_nb.partitioners import ChunkRef

    step = seconds / n
    meta = {"fps": 25.0} if video else {"sample_rate": 8000}
    return [ChunkRef(index=i, url=path, meta={"source": os.path.basename(path), "start": i * step,
                                               "end": (i + 1) * step, **meta}) for i in range(n)]


def ffmpeg_envelope(path: str, seconds: float, width: int = WIDTH) -> None:
    """The peer: decode everything to 8 kHz mono floats, min and max per column as it streams."""
    import numpy as np

    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", "8000", "-f", "f32le", "-"],
                            stdout=subprocess.PIPE)
    low, high = np.full(width, np.inf), np.full(width, -np.inf)
    done = 0
    while block := proc.stdout.read(8000 * 4 * 10):
        samples = np.frombuffer(block, dtype=np.float32)
        cols = np.minimum((np.arange(done, done + samples.size) * width / (8000 * seconds)).astype(int), width - 1)
        np.minimum.at(low, cols, samples)
        np.maximum.at(high, cols, samples)
        done += samples.size
    proc.wait()


def ffmpeg_frames(path: str, times: list[float], folder: str) -> None:
    """The peer: one ffmpeg process per frame (accurate seek), scaled like the preview's."""
    for i, t in enumerate(times):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", path, "-frames:v", "1",
                        "-vf", "scale=-2:90", os.path.join(folder, f"f{i}.png")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-minutes", type=float, default=60)
    parser.add_argument("--short-minutes", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "bytenite-nb-bench-media"))
    args = parser.parse_args()
    from bytenite_nb.media_preview.frames import strip_picture
    from bytenite_nb.media_preview.waveform import waveform_picture

    os.makedirs(args.cache, exist_ok=True)
    long_s, short_s = args.long_minutes * 60, args.short_minutes * 60
    long_audio = media(os.path.join(args.cache, f"long-{args.long_minutes:g}.m4a"),
                       f"sine=frequency=300:sample_rate=44100:duration={long_s}", "-c:a", "aac", "-ac", "2")
    short_audio = media(os.path.join(args.cache, f"short-{args.short_minutes:g}.m4a"),
                        f"sine=frequency=300:sample_rate=44100:duration={short_s}", "-c:a", "aac", "-ac", "2")
    video = media(os.path.join(args.cache, f"clip-{args.short_minutes:g}.mp4"),
                  f"testsrc2=size=1280x720:rate=25:duration={short_s}", "-c:v", "libx264", "-preset", "ultrafast",
                  "-g", "250", "-pix_fmt", "yuv420p")
    long_refs, short_refs = refs_for(long_audio, long_s, 60), refs_for(short_audio, short_s, 10)
    video_refs = refs_for(video, short_s, 8, video=True)
    times = [r.meta["start"] for r in video_refs]
    frames_dir = tempfile.mkdtemp()
    cases = {
        "long waveform": (lambda: waveform_picture(long_audio, long_refs), lambda: ffmpeg_envelope(long_audio, long_s)),
        "short waveform": (lambda: waveform_picture(short_audio, short_refs),
                           lambda: ffmpeg_envelope(short_audio, short_s)),
        "frame strip": (lambda: strip_picture(video, video_refs), lambda: ffmpeg_frames(video, times, frames_dir)),
    }
    ours: dict[str, list[float]] = {k: [] for k in cases}
    peer: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for name, (mine, theirs) in cases.items():  # alternated: the machine is shared
            ours[name].append(timed(mine))
            peer[name].append(timed(theirs))
    grown = json.loads(subprocess.run([sys.executable, "-c", PREVIEW, long_audio, str(args.long_minutes)],
                                      capture_output=True, text=True, check=True).stdout)
    growth = (grown["after_kib"] - grown["before_kib"]) / 1024
    goals = {"long waveform": 0.25, "short waveform": 1.5, "frame strip": 1.0}
    rows = []
    for name in cases:
        ratio = median(ours[name]) / median(peer[name])
        rows.append((f"{name}: preview / ffmpeg", f"{ratio:.2f}x  ({median(ours[name]):.2f}s vs "
                     f"{median(peer[name]):.2f}s; goal <= {goals[name]}x: "
                     f"{'met' if ratio <= goals[name] else 'NOT met'})"))
    decoded = long_s * 44100 * 2 * 4 / 2**20
    rows.append(("long waveform: RSS growth", f"{growth:.1f} MiB  (the decoded file would be {decoded:.0f} MiB; "
                 f"goal <= 64 MiB: {'met' if growth <= 64 else 'NOT met'})"))
    report(f"media plan preview: {args.long_minutes:g} min and {args.short_minutes:g} min AAC, "
           f"{args.short_minutes:g} min 720p H.264, {args.rounds} rounds", rows)


if __name__ == "__main__":
    main()
