"""audio-silence planning on 10 minutes of audio with known silences, side by
side in one run with pydub's ``detect_silence`` on the same file. Goals: at
least 1000x real time, and at least 100x pydub.

    python benchmarks/audio_silence.py [--minutes 10] [--rate 16000] [--rounds 5]

bytenite-nb is timed as ``job.plan()`` of an audio-silence job (validation,
reading the WAV, finding silences, choosing cuts, building CHUNK_INFO); pydub
as ``AudioSegment.from_wav`` + ``detect_silence`` with the same threshold and
shortest silence, at its default 1 ms seek step and at a 5 ms step (the
resolution of audio-silence's frames). Every round is printed; ratios are of
medians (audio-silence runs five times a round). Each run also checks that
every cut lies within 10 ms of the middle of its silence. Needs pydub
(``pip install "bytenite-nb[bench]"``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import median, report, timed

THRESHOLD_DB, MIN_SILENCE = -40, 0.3


def talk_wav(path: str, minutes: float, rate: int, seed: int = 5) -> list[float]:
    """A mono 16-bit WAV of wavering tones 2 to 12 s long separated by silences of 0.35 to
    1.5 s (faint noise); returns the middle of every silence in seconds."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    parts, middles, at, total = [], [], 0, int(minutes * 60 * rate)
    while at < total:
        n = min(total - at, int(rng.uniform(2, 12) * rate))
        t = np.arange(n) / rate
        freq = rng.uniform(150, 900)
        parts.append(0.4 * np.sin(2 * np.pi * freq * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 2.5 * t)))
        at += n
        quiet = int(rng.uniform(0.35, 1.5) * rate)
        if at + quiet + rate >= total:
            continue
        parts.append(rng.normal(0, 3e-4, quiet))
        middles.append((at + quiet / 2) / rate)
        at += quiet
    sf.write(path, np.concatenate(parts)[:total], rate, subtype="PCM_16")
    return middles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        from pydub import AudioSegment
        from pydub.silence import detect_silence
    except ImportError:
        sys.exit("pydub is not installed: pip install 'bytenite-nb[bench]'")
    import bytenite_nb as bn

    folder = tempfile.mkdtemp(prefix="bench-audio-silence-")
    path = os.path.join(folder, "talk.wav")
    middles = talk_wav(path, args.minutes, args.rate)
    seconds = args.minutes * 60
    job = bn.Job(source=path, partitioner="audio-silence", app="noop", assembler="passthrough",
                 destination=os.path.join(folder, "out"),
                 params={"partitioner": {"threshold_db": THRESHOLD_DB, "min_silence": MIN_SILENCE, "min_chunk": 0.1,
                                         "max_chunk": 60}})
    refs = job.plan(scheduler="sync")  # warm: imports, page cache
    cuts = [r.meta["start"] for r in refs[1:]]
    worst = max(abs(c - m) for c, m in zip(cuts, middles))
    assert len(cuts) == len(middles) and worst <= 0.010, (len(cuts), len(middles), worst)
    print(f"{seconds / 60:g} min at {args.rate} Hz, {len(middles)} silences: {len(refs)} chunks, every cut within "
          f"{worst * 1000:.2f} ms of its silence's middle")

    def pydub_run(step: int):
        seg = AudioSegment.from_wav(path)
        return detect_silence(seg, min_silence_len=int(MIN_SILENCE * 1000), silence_thresh=THRESHOLD_DB,
                              seek_step=step)

    found = pydub_run(5)
    print(f"pydub finds {len(found)} silences (seek_step 5 ms)")
    ours, pydub1, pydub5 = [], [], []
    for i in range(args.rounds):
        # audio-silence is some 100x quicker, so it runs 5 times a round: a moment's noise weighs less
        runs = [timed(lambda: job.plan(scheduler="sync")) for _ in range(5)]
        ours += runs
        pydub5.append(timed(lambda: pydub_run(5)))
        pydub1.append(timed(lambda: pydub_run(1)))
        print(f"round {i + 1}: audio-silence plan {', '.join(f'{t:.3f}' for t in runs)} s (median "
              f"{seconds / median(runs):.0f}x real time); pydub step 1 ms {pydub1[-1]:.2f} s, step 5 ms "
              f"{pydub5[-1]:.2f} s")
    real_time, vs1, vs5 = seconds / median(ours), median(pydub1) / median(ours), median(pydub5) / median(ours)
    report("audio-silence planning, medians", [
        ("audio-silence, x real time", f"{real_time:.0f}x (goal >= 1000x)"),
        ("pydub detect_silence (1 ms step, its default) / audio-silence", f"{vs1:.0f}x (goal >= 100x)"),
        ("pydub detect_silence (5 ms step, audio-silence's resolution) / audio-silence", f"{vs5:.0f}x"),
    ])


if __name__ == "__main__":
    main()
