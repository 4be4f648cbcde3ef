"""Video: video-frames -> identity -> video-stitch gives the frames back (stream
copy: every decoded frame equal; exact: every chunk exactly N frames), and
video-ladder -> an ffmpeg transcode app -> video-ladder makes HLS that FFmpeg
reads back. Every clip is made here by ffmpeg from lavfi test patterns
(testsrc2, sine) with a fixed GOP."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap

import av  # a dependency of bytenite-nb (FFmpeg's libraries in a wheel)
import pytest

import bytenite_nb as bn
from bytenite_nb.partitioners.video_frames import VideoFrames

from .conftest import require

FPS = 25


@pytest.fixture(scope="module")
def ffmpeg():
    return require("ffmpeg", "ffmpeg is not installed (apt-get install ffmpeg)")


def make_clip(ffmpeg, path, seconds=8, size="320x240", gop=25, audio=False, codec="libx264", bframes=True):
    """A test-pattern clip: ``gop`` frames between keyframes, closed GOPs, B-frames by default."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    args += ["-c:v", codec, "-g", str(gop), "-pix_fmt", "yuv420p"]
    if codec == "libx264":
        args += ["-keyint_min", str(gop), "-sc_threshold", "0", "-preset", "veryfast"]
        args += [] if bframes else ["-bf", "0"]
    subprocess.run(args + [str(path)], check=True)
    return path


def frame_sums(path) -> list[str]:
    """The checksum of every decoded frame, in show order."""
    with av.open(str(path)) as c:
        return [hashlib.md5(f.to_ndarray().tobytes()).hexdigest() for f in c.decode(video=0)]


def audio_packets(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(audio=0) if p.size)


def video_seconds(path) -> float:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return float(v.duration * v.time_base)


def frames_job(tmp_path, src, params: dict, app="identity", assembler_params=None) -> bn.Job:
    return bn.Job(source=str(src), partitioner="video-frames", app=app, assembler="video-stitch",
                  destination=str(tmp_path / "out"),
                  params={"partitioner": params, "assembler": assembler_params or {}})


# -- stream copy -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec,audio,bframes,ext", [("libx264", False, True, "mp4"), ("libx264", True, True, "mp4"),
                                                     ("libx264", False, False, "mp4"), ("mpeg4", False, False, "mp4"),
                                                     ("libx264", True, True, "ts")])
def test_frames_then_stitch_give_every_frame_back(tmp_path, ffmpeg, codec, audio, bframes, ext):
    src = make_clip(ffmpeg, tmp_path / f"clip.{ext}", codec=codec, audio=audio, bframes=bframes)
    job = frames_job(tmp_path, src, {"frames_per_chunk": 40})
    refs = job.plan(scheduler="sync")
    # 40 frames reach to the next keyframe (every 25): chunks of 50 frames, cut at keyframes
    assert [(r.meta["start_frame"], r.meta["end_frame"]) for r in refs] == [(0, 50), (50, 100), (100, 150),
                                                                             (150, 200)]
    job.run(scheduler="sync")
    out = tmp_path / "out" / "clip.mp4"
    got, want = frame_sums(out), frame_sums(src)
    assert len(got) == len(want) == 8 * FPS
    assert got == want
    assert abs(video_seconds(out) - video_seconds(src)) <= 1 / FPS
    if audio:  # every audio packet, once (ADTS headers of MPEG-TS audio are dropped in MP4)
        assert audio_packets(out) == audio_packets(src)


def test_seconds_per_chunk_and_chunk_info(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=5, gop=10)
    refs = frames_job(tmp_path, src, {"seconds_per_chunk": 1.5}).plan(scheduler="sync")
    infos = [r.info() for r in refs]
    assert [(i["start_frame"], i["end_frame"]) for i in infos] == [(0, 40), (40, 80), (80, 120), (120, 125)]
    assert [(i["start"], i["end"]) for i in infos] == [(0.0, 1.6), (1.6, 3.2), (3.2, 4.8), (4.8, 5.0)]
    assert all(i["source"] == "clip.mp4" and i["fps"] == FPS and i["exact"] is False and i["height"] == 240
               for i in infos)
    assert [i["index"] for i in infos] == [i["position"] for i in infos] == [0, 1, 2, 3]
    # the chunk a worker writes holds exactly its frames
    dest = tmp_path / "chunk.mp4"
    VideoFrames().materialise(refs[2], str(dest))
    assert frame_sums(dest) == frame_sums(src)[80:120]


def count_frames(chunk_path, results_dir, params, chunk_info):
    """An app that checks its chunk against its CHUNK_INFO: as many frames as it says."""
    import av

    with av.open(chunk_path) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with open(os.path.join(results_dir, "info.json"), "w") as out:
        json.dump({"frames": frames, **chunk_info}, out)


@pytest.mark.parametrize("exact", [False, True])
def test_apps_see_their_frames_in_chunk_info(tmp_path, ffmpeg, exact):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4, gop=20, audio=True)
    job = bn.Job(source=str(src), partitioner="video-frames", app=count_frames, assembler="passthrough",
                 destination=str(tmp_path / "out"), params={"partitioner": {"frames_per_chunk": 30, "exact": exact}})
    result = job.run(scheduler="sync")
    infos = [json.loads((tmp_path / "out" / f"chunk_{i:04d}" / "info.json").read_text())
             for i in range(result.n_chunks)]
    assert all(i["frames"] == i["end_frame"] - i["start_frame"] for i in infos)
    assert [i["end_frame"] - i["start_frame"] for i in infos] == ([30, 30, 30, 10] if exact else [40, 40, 20])
    assert [i["start"] for i in infos] == [i["start_frame"] / FPS for i in infos]
    assert all(i["exact"] is exact and i["fps"] == FPS and i["source"] == "clip.mp4" for i in infos)


def test_a_plan_preview_copies_only_the_beginning_of_a_chunk(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=8, size="640x360", gop=50)
    job = frames_job(tmp_path, src, {"frames_per_chunk": 100})
    plan = job.plan(scheduler="sync")
    # the plan preview of a video is a strip of frames at the chunk starts (media_preview)...
    assert plan.sample["kind"] == "media" and plan.sample["media"] == "video", plan.sample
    assert [f["chunk"] for f in plan.sample["pictures"][0]["frames"]] == [ref.index for ref in plan]
    ref = dataclasses.replace(plan[0], end=64 * 1024)  # ...and a byte range of a chunk copies only its beginning
    dest = tmp_path / "head.mp4"
    VideoFrames().materialise(ref, str(dest))
    frames = frame_sums(dest)  # cut inside a GOP: its last frames may lack what they refer to
    assert 0 < len(frames) < 100 and frames[:5] == frame_sums(src)[:5]
    assert dest.stat().st_size < plan[0].size / 2


def test_a_real_job_on_the_cluster_with_two_videos(tmp_path, ffmpeg, client):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(ffmpeg, folder / "a.mp4", seconds=4, gop=20)
    make_clip(ffmpeg, folder / "b.mkv", seconds=3, gop=15, audio=True)
    job = frames_job(tmp_path, str(folder) + "/", {"frames_per_chunk": 30}, assembler_params={
        "output_name": "{stem}.stitched.mkv"})
    # CHUNK_INFO: the position within its video, and the chunk's number in the whole job
    assert [(i["source"], i["position"], i["index"]) for i in (r.info() for r in job.plan(scheduler="sync"))] == \
        [("a.mp4", 0, 0), ("a.mp4", 1, 1), ("a.mp4", 2, 2), ("b.mkv", 0, 3), ("b.mkv", 1, 4), ("b.mkv", 2, 5)]
    result = job.run(client=client)
    assert result.n_chunks == 3 + 3
    for name, stem in (("a.mp4", "a"), ("b.mkv", "b")):
        assert frame_sums(tmp_path / "out" / f"{stem}.stitched.mkv") == frame_sums(folder / name)


def test_a_video_on_s3_is_cut_and_stitched_by_ranged_reads(tmp_path, ffmpeg, client, s3):
    fs, bucket = s3
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4, gop=20, audio=True)
    fs.put(str(src), f"{bucket}/videos/clip.mp4")
    job = bn.Job(source=f"s3://{bucket}/videos/clip.mp4", partitioner="video-frames", app="identity",
                 assembler="video-stitch", destination=f"s3://{bucket}/out/",
                 params={"partitioner": {"frames_per_chunk": 30, "exact": False}})
    result = job.run(client=client)
    assert result.n_chunks == 3
    fs.get(f"{bucket}/out/clip.mp4", str(tmp_path / "back.mp4"))
    assert frame_sums(tmp_path / "back.mp4") == frame_sums(src)


# -- exact ----------------------------------------------------------------------------------


def frame_arrays(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]


@pytest.mark.parametrize("audio,per_chunk", [(False, 60), (True, 37)])
def test_exact_chunks_have_exactly_n_frames_and_the_stitch_every_frame(tmp_path, ffmpeg, audio, per_chunk):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=10, gop=25, audio=audio)
    job = frames_job(tmp_path, src, {"frames_per_chunk": per_chunk, "exact": True})
    refs = job.plan(scheduler="sync")
    bounds = [(r.meta["start_frame"], r.meta["end_frame"]) for r in refs]
    assert bounds == [(s, min(250, s + per_chunk)) for s in range(0, 250, per_chunk)]
    assert all(r.meta["exact"] is True for r in refs)
    want = frame_arrays(src)
    want_sums = frame_sums(src)
    copied = 0
    for ref, (start, end) in zip(refs, bounds):
        dest = tmp_path / f"chunk{ref.index}.ts"
        VideoFrames().materialise(ref, str(dest))
        got = frame_arrays(dest)
        assert len(got) == end - start, f"chunk {ref.index}"
        # whole GOPs are copied bit for bit; the frames re-encoded at the cuts stay close
        copied += sum(a == b for a, b in zip(frame_sums(dest), want_sums[start:end]))
        assert max(abs(g - w).mean() for g, w in zip(got, want[start:end])) < 2.0
    assert copied >= 250 - 2 * 25 * len(refs) and copied > 0
    job.run(scheduler="sync")
    out = tmp_path / "out" / "clip.mp4"
    assert len(frame_sums(out)) == 250
    assert abs(video_seconds(out) - video_seconds(src)) <= 1 / FPS


def test_exact_by_seconds_makes_whole_frames(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=3, gop=30)
    refs = frames_job(tmp_path, src, {"seconds_per_chunk": 0.5, "exact": True}).plan(scheduler="sync")
    assert [(r.meta["start_frame"], r.meta["end_frame"]) for r in refs] == [(s, s + 12) for s in range(0, 72, 12)] + \
        [(72, 75)]


def test_exact_refuses_codecs_it_cannot_re_encode(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1, codec="mpeg4")
    with pytest.raises(bn.JobFailed, match=r"clip\.mp4: exact: true re-encodes the cuts of H.264 video only; this "
                                           r"video is mpeg4"):
        frames_job(tmp_path, src, {"frames_per_chunk": 10, "exact": True}).run(scheduler="sync")


# -- the source container each worker thread keeps open (media.reused_container) ------------


def cut_chunk(src, start: int, end: int, dest) -> list[str]:
    """Frames ``[start, end)`` of ``src`` cut by stream copy as video-frames does; their checksums."""
    from bytenite_nb.video_packets import copy_packets, scan, span_of

    copy_packets(str(src), str(dest), src.name, span_of(scan(str(src), src.name), start, end))
    return frame_sums(dest)


def fds_on(path) -> list[str]:
    """This process's open file descriptors on ``path``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                found.append(fd)
        except OSError:  # closed since the listing
            pass
    return found


def test_two_files_used_in_turn_by_one_thread_give_their_own_chunks(tmp_path, ffmpeg):
    a = make_clip(ffmpeg, tmp_path / "a.mp4", seconds=4)
    b = make_clip(ffmpeg, tmp_path / "b.mp4", seconds=4, size="160x120")
    frames = {a: frame_sums(a), b: frame_sums(b)}
    for i, (src, start) in enumerate([(a, 0), (b, 25), (a, 50), (b, 0), (a, 75), (b, 50)]):
        assert cut_chunk(src, start, start + 25, tmp_path / f"chunk{i}.mp4") == frames[src][start:start + 25], (src, start)


def test_a_file_replaced_between_two_uses_is_opened_again(tmp_path, ffmpeg):
    from bytenite_nb.media import reused_container

    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4)
    assert cut_chunk(src, 25, 50, tmp_path / "first.mp4") == frame_sums(src)[25:50]
    with reused_container(str(src)) as held:
        pass
    with reused_container(str(src)) as again:
        assert again is held  # the same file: the container is kept
        with reused_container(str(src)) as inner:  # a use inside a use: a container of its own
            assert inner is not held
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes, a new modification time
    with reused_container(str(src)) as after_touch:
        assert after_touch is not held
    # written over in place (same inode, new size): the old container would read the new bytes by the old index
    other = make_clip(ffmpeg, tmp_path / "other.mp4", seconds=6, size="160x120", gop=30)
    src.write_bytes(other.read_bytes())
    assert cut_chunk(src, 30, 60, tmp_path / "second.mp4") == frame_sums(other)[30:60]


def test_two_threads_cutting_one_file_at_once_get_their_own_chunks(tmp_path, ffmpeg):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4)
    frames = frame_sums(src)
    together = threading.Barrier(2)

    def cut_all(thread: int, starts: list[int]) -> list[bool]:
        together.wait(timeout=60)  # both threads cut at the same time
        return [cut_chunk(src, s, s + 25, tmp_path / f"t{thread}-{s}.mp4") == frames[s:s + 25] for s in starts]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(cut_all, [0, 1], [[0, 25, 50, 75] * 2, [75, 50, 25, 0] * 2]))
    assert results == [[True] * 8, [True] * 8]


def test_a_held_container_is_closed_once_idle_and_never_while_in_use(tmp_path, ffmpeg, monkeypatch):
    import threading
    import time

    from bytenite_nb import media

    monkeypatch.setattr(media, "HELD_IDLE_SECONDS", 0.2)
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=2)
    used, done = threading.Event(), threading.Event()
    seen = {}

    def worker():  # a thread that uses the file, then stays alive doing nothing with it
        try:
            with media.reused_container(str(src)) as container:
                time.sleep(1.0)  # five idle times in one use
                seen["open during the use"] = bool(fds_on(src))
                seen["packets after the wait"] = sum(1 for p in container.demux(video=0) if p.size)
        finally:
            used.set()
        done.wait(timeout=60)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert used.wait(timeout=60)
        assert seen == {"open during the use": True, "packets after the wait": 2 * FPS}
        deadline = time.monotonic() + 30  # a bound on the wait, not a timing claim
        while fds_on(src) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fds_on(src) == [], "the idle thread still holds the file open"
    finally:
        done.set()
        thread.join()


def test_a_use_that_raises_closes_its_container_at_once(tmp_path, ffmpeg):
    from bytenite_nb.exceptions import BadRecordError
    from bytenite_nb.media import reused_container

    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1)
    with pytest.raises(RuntimeError, match="stopped"):
        with reused_container(str(src)):
            assert fds_on(src)
            raise RuntimeError("stopped")
    assert fds_on(src) == []
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(BadRecordError, match=r"notes\.mp4: not a media file FFmpeg can read"):
        with reused_container(str(text), "notes.mp4"):
            pass
    with reused_container(str(src)) as container:  # the next use opens the file again, and keeps it
        assert sum(1 for p in container.demux(video=0) if p.size) == FPS
    with reused_container(str(src)) as again:
        assert again is container


# -- bad input -------------------------------------------------------------------------------


def test_a_truncated_mp4_fails_naming_the_file_and_leaves_no_output(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4)
    cut = tmp_path / "cut.mp4"
    data = src.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    job = frames_job(tmp_path, cut, {"frames_per_chunk": 25})
    with pytest.raises(bn.JobFailed, match=r"cut\.mp4: not a media file FFmpeg can read"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_two_sources_of_one_name_in_different_folders_are_refused_before_writing(tmp_path, ffmpeg):
    from bytenite_nb.assemblers import ChunkResult, ResultFile
    from bytenite_nb.assemblers.video_stitch import VideoStitch
    from bytenite_nb.exceptions import AssemblyError

    clip = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1)
    results = [ChunkResult(i, (ResultFile("clip.mp4", clip.stat().st_size, "file://" + str(clip), str(clip)),),
                           {"source": f"{folder}/a.mov"}) for i, folder in enumerate(("talks", "other"))]
    out = tmp_path / "o"
    with pytest.raises(AssemblyError, match=r"video-stitch: talks/a.mov and other/a.mov would both write a.mp4"):
        VideoStitch().assemble(results, str(out), {})
    assert not out.exists() or not list(out.iterdir())


def test_an_ffmpeg_run_past_its_time_limit_is_stopped_naming_the_file(ffmpeg, monkeypatch):
    from bytenite_nb.exceptions import BadRecordError, FieldError
    from bytenite_nb.media import run_ffmpeg

    slow = ["-re", "-f", "lavfi", "-i", "testsrc=duration=60", "-f", "null", "-"]  # -re: a minute, at its own pace
    monkeypatch.setenv("BYTENITE_NB_FFMPEG_TIMEOUT", "0.5")
    with pytest.raises(BadRecordError, match=r"slow\.mp4: ffmpeg ran longer than 0.5 s and was stopped"):
        run_ffmpeg(slow, name="slow.mp4")
    monkeypatch.setenv("BYTENITE_NB_FFMPEG_TIMEOUT", "soon")
    with pytest.raises(FieldError, match=r"TIMEOUT: expected a positive number of seconds, got 'soon'"):
        run_ffmpeg(slow, name="slow.mp4")


def test_a_result_that_is_not_a_video_is_named_by_its_chunk_and_name(tmp_path, ffmpeg):
    from bytenite_nb.assemblers import ChunkResult, ResultFile
    from bytenite_nb.assemblers.video_stitch import VideoStitch
    from bytenite_nb.exceptions import BadRecordError

    clip = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"no video here")
    # no local path: each is downloaded under a name of its own, which the error must not give
    results = [ChunkResult(i, (ResultFile("out.mp4", path.stat().st_size, "file://" + str(path)),),
                           {"source": "a.mp4"}) for i, path in enumerate((clip, bad))]
    with pytest.raises(BadRecordError, match=r"^chunk 1: out\.mp4: not a media file FFmpeg can read"):
        VideoStitch().assemble(results, str(tmp_path / "o"), {})


def test_a_truncated_mp4_with_its_index_first_names_the_missing_frames(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=4)
    fast = tmp_path / "fast.mp4"  # the index (moov) first: the file opens, its frames stop half-way
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(src), "-c", "copy", "-movflags", "+faststart",
                    str(fast)], check=True)
    data = fast.read_bytes()
    fast.write_bytes(data[:len(data) // 2])
    job = frames_job(tmp_path, fast, {"frames_per_chunk": 25})
    with pytest.raises(bn.JobFailed, match=r"fast\.mp4: the file is truncated: its header promises 100 video "
                                           r"frames, only \d+ are there"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_file_without_video_is_named(tmp_path, ffmpeg):
    wav = tmp_path / "tone.wav"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(wav)], check=True)
    with pytest.raises(bn.JobFailed, match=r"tone\.wav: no video stream in the file"):
        frames_job(tmp_path, wav, {"frames_per_chunk": 25}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_frames_and_seconds_together_are_refused(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1)
    with pytest.raises(bn.JobFailed, match=r"params.partitioner.seconds_per_chunk: give frames_per_chunk or "
                                           "seconds_per_chunk, not both"):
        frames_job(tmp_path, src, {"frames_per_chunk": 25, "seconds_per_chunk": 1}).run(scheduler="sync")


# -- the ladder ------------------------------------------------------------------------------

TRANSCODE_APP = textwrap.dedent("""
    # Transcode this chunk as its rendition says (CHUNK_INFO), with a GOP of one second.
    import json, os, subprocess, sys
    info = json.loads(os.environ["CHUNK_INFO"])
    r = info["rendition"]
    gop = str(round(info["fps"]))
    rate = ["-b:v", str(r["bitrate"])] if "bitrate" in r else ["-crf", str(r["crf"])]
    encoder = {"h264": "libx264", "hevc": "libx265"}[r["codec"]]
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                    os.path.join(os.environ["TASK_DIR"], "data.bin"), "-vf", f"scale=-2:{r['height']}",
                    "-c:v", encoder, *rate, "-preset", "veryfast", "-g", gop, "-keyint_min", gop,
                    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    os.path.join(os.environ["TASK_RESULTS_DIR"], r["name"] + ".mp4")], check=True)
""")


def ladder_job(tmp_path, src, params: dict, assembler_params=None) -> bn.Job:
    app = tmp_path / "transcode.py"
    app.write_text(TRANSCODE_APP)
    return bn.Job(source=str(src), partitioner="video-ladder", app={"command": [sys.executable, str(app)]},
                  assembler="video-ladder", destination=str(tmp_path / "out"),
                  params={"partitioner": params, "assembler": assembler_params or {"hls_time": 2}})


def read_master(path) -> list[tuple[dict, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    out = []
    for tag, uri in zip(lines, lines[1:]):
        if tag.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', tag.split(":", 1)[1]))
            out.append(({k: v.strip('"') for k, v in attrs.items()}, uri))
    return out


@pytest.mark.parametrize("segment_seconds,segment_type", [(None, "mpegts"), (2, "mpegts"), (3, "fmp4")])
def test_ladder_makes_hls_that_ffmpeg_reads_back(tmp_path, ffmpeg, client, segment_seconds, segment_type):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=6, size="640x360", audio=True)
    params = {"renditions": [{"name": "low", "height": 180, "bitrate": "300k"}, {"height": 360, "crf": 30}]}
    if segment_seconds:
        params["segment_seconds"] = segment_seconds
    job = ladder_job(tmp_path, src, params, {"hls_time": 2, "segment_type": segment_type})
    refs = job.plan(scheduler="sync")
    segments = 6 // segment_seconds if segment_seconds else 1
    assert len(refs) == 2 * segments
    assert [r.meta["rendition"]["name"] for r in refs] == ["low"] * segments + ["360p"] * segments
    assert all(("segment" in r.meta) == bool(segment_seconds) for r in refs)
    job.run(client=client)
    out = tmp_path / "out"
    variants = read_master(out / "master.m3u8")
    assert [uri for _, uri in variants] == ["low/index.m3u8", "360p/index.m3u8"]
    assert [attrs["RESOLUTION"] for attrs, _ in variants] == ["320x180", "640x360"]
    for attrs, uri in variants:
        assert re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", attrs["CODECS"])
        assert int(attrs["BANDWIDTH"]) >= int(attrs["AVERAGE-BANDWIDTH"]) > 0
        media = (out / uri).read_text()
        assert "#EXT-X-ENDLIST" in media
        listed = sum(float(d) for d in re.findall(r"#EXTINF:([0-9.]+),", media))
        assert abs(listed - 6) <= 0.1
        assert len(re.findall(r"#EXTINF", media)) == 3  # hls_time 2 on a GOP of one second
        # FFmpeg (PyAV) reads the rendition back: every frame, at its size
        with av.open(str(out / uri)) as c:
            frames = [f for f in c.decode(video=0)]
        assert len(frames) == 6 * FPS
        assert (frames[0].width, frames[0].height) == tuple(int(x) for x in attrs["RESOLUTION"].split("x"))
    # the master playlist itself opens, with one video stream per rendition
    with av.open(str(out / "master.m3u8")) as c:
        assert sorted(s.codec_context.height for s in c.streams.video) == [180, 360]


def test_a_rendition_larger_than_the_source_is_refused(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1, size="320x240")
    job = ladder_job(tmp_path, src, {"renditions": [{"height": 240, "crf": 30},
                                                    {"name": "hd", "height": 720, "bitrate": "2M"}]})
    with pytest.raises(bn.JobFailed, match=r"params.partitioner.renditions\[1\].height: rendition 'hd' is 720 "
                                           r"pixels high, larger than the source clip.mp4, which is 320x240"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_ladder_of_several_videos_packages_each_in_its_own_folder(tmp_path, ffmpeg, client):
    folder = tmp_path / "videos"
    (folder / "talks").mkdir(parents=True)
    make_clip(ffmpeg, folder / "a.mp4", seconds=1, size="320x240")
    make_clip(ffmpeg, folder / "talks" / "b.mp4", seconds=2, size="640x360")
    job = ladder_job(tmp_path, str(folder) + "/", {"renditions": [{"height": 120, "crf": 30},
                                                                  {"name": "mid", "height": 240, "crf": 30}],
                                                   "segment_seconds": 1})
    refs = job.plan(scheduler="sync")
    assert [(r.meta["source"], r.meta["rendition"]["name"], r.meta["segment"]) for r in refs] == [
        ("a.mp4", "120p", 0), ("a.mp4", "mid", 0),
        ("talks/b.mp4", "120p", 0), ("talks/b.mp4", "120p", 1), ("talks/b.mp4", "mid", 0), ("talks/b.mp4", "mid", 1)]
    job.run(client=client)
    out = tmp_path / "out"
    assert not (out / "master.m3u8").exists()
    for package, seconds, sizes in (("a", 1, ["160x120", "320x240"]), ("talks/b", 2, ["214x120", "426x240"])):
        variants = read_master(out / package / "master.m3u8")
        assert [uri for _, uri in variants] == ["120p/index.m3u8", "mid/index.m3u8"]
        assert [attrs["RESOLUTION"] for attrs, _ in variants] == sizes  # each video's own aspect
        for _, uri in variants:  # each rendition holds its own video's frames, no other's
            with av.open(str(out / package / uri)) as c:
                assert sum(1 for _ in c.decode(video=0)) == seconds * FPS

    # The layout comes from the plan: with every chunk of talks/b.mp4 failed (within the
    # job's minSuccessRatio), a.mp4's package is still in a/, not at the top.
    failing = tmp_path / "transcode_but_talks.py"
    failing.write_text("import json, os, sys\n"
                       "if json.loads(os.environ['CHUNK_INFO'])['source'].startswith('talks/'):\n"
                       "    sys.exit('no talks today')\n" + TRANSCODE_APP)
    partial = job.copy(app={"command": [sys.executable, str(failing)]}, destination=str(tmp_path / "partial"),
                       config={"minSuccessRatio": 0.3, "maxTaskRetries": 0}).run(client=client)
    assert partial.state == "COMPLETE" and len(partial.warnings) == 1
    assert (tmp_path / "partial" / "a" / "master.m3u8").exists()
    assert not (tmp_path / "partial" / "master.m3u8").exists() and not (tmp_path / "partial" / "talks").exists()


def test_videos_whose_packages_would_share_a_folder_are_refused(tmp_path, ffmpeg):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(ffmpeg, folder / "a.mp4", seconds=1)
    make_clip(ffmpeg, folder / "a.mkv", seconds=1)
    job = ladder_job(tmp_path, str(folder) + "/", {"renditions": [{"height": 120, "crf": 30}]})
    with pytest.raises(bn.JobFailed, match=r"dataSource: a.mkv and a.mp4 would both be packaged in a/: rename one"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_rendition_needs_a_bitrate_or_a_crf(tmp_path, ffmpeg):
    src = make_clip(ffmpeg, tmp_path / "clip.mp4", seconds=1)
    job = ladder_job(tmp_path, src, {"renditions": [{"height": 120}]})
    with pytest.raises(bn.JobFailed, match=r"renditions\[0\]: rendition '120p' needs a bitrate or a crf"):
        job.run(scheduler="sync")
