"""video-scenes: shot changes found on videos with hard cuts at known frames
(lavfi patterns with motion inside each scene, made here with ffmpeg),
compared with PySceneDetect's default detector on the same videos; scenes cut
and joined back frame for frame; highlight reels; bad videos name the file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult
from bytenite_nb.assemblers.video_scenes import VideoScenes as ScenesAssembler
from bytenite_nb.exceptions import AssemblyError, BadRecordError, ResultFormatError
from bytenite_nb.partitioners.video_scenes import VideoScenes
from bytenite_nb.scene_detection import find_cuts
from bytenite_nb.source_cache import SOURCES

from .conftest import missing, require
from .test_log_merge import results as chunk_results

FPS = 25
#: scene kinds: a lavfi source and a filter that adds motion where the source has little (random
#: sources seeded, so every run makes the same videos)
KINDS = {
    "bars": ("smptehdbars", "scroll=h=0.02"),
    "pattern": ("testsrc2", None),
    "counter": ("testsrc", None),
    "fractal": ("mandelbrot", None),
    "life": ("life=mold=10:ratio=0.5:seed=5:death_color=#C83232:life_color=#00ff00", None),
    "automaton": ("cellauto=rule=110:random_seed=3", None),
    "gradients": ("gradients=speed=0.05:seed=7", None),
    "noise": ("color=c=0x204060", "noise=alls=25:allf=t:all_seed=9"),
    "rgb": ("rgbtestsrc", "scroll=v=0.03"),
    "fast": ("testsrc2", "scroll=h=0.06"),  # fast motion: large differences inside the scene
    "hue": ("testsrc2", "hue=h=t*120"),
}
#: videos for detection: (kind, frames) per scene; the cuts are where one ends
DETECTION_SET = [
    [("pattern", 40), ("fractal", 30), ("life", 25), ("bars", 50), ("noise", 30), ("automaton", 20),
     ("gradients", 45), ("fast", 35)],
    [("fast", 30), ("pattern", 22), ("hue", 40), ("counter", 30), ("rgb", 25), ("bars", 35), ("fractal", 18),
     ("noise", 40)],
    [("automaton", 30), ("gradients", 25), ("life", 40), ("counter", 20), ("hue", 30), ("fast", 26), ("rgb", 30),
     ("pattern", 30), ("noise", 24)],
    [("noise", 20), ("hue", 35), ("bars", 25), ("life", 30), ("fast", 40), ("gradients", 20), ("counter", 45),
     ("automaton", 25), ("fractal", 30)],
]
ROUND_TRIP = [("pattern", 40), ("fractal", 30), ("fast", 35), ("bars", 28), ("noise", 30)]


def make_video(path, scenes, *, gop: int | None = None, keyframes_at_cuts: bool = False, audio: bool = False,
               size: str = "320x240") -> list[int]:
    """Write an H.264 MP4 of ``scenes`` joined by hard cuts; return the cut frames.
    ``gop`` fixes the keyframe interval (no keyframe at the cuts unless ``keyframes_at_cuts``)."""
    args = [require("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y"]
    chains, cuts, at = [], [], 0
    for i, (kind, frames) in enumerate(scenes):
        src, extra = KINDS[kind]
        args += ["-f", "lavfi", "-i", f"{src}{':' if '=' in src else '='}size={size}:rate={FPS}"]
        chains.append(f"[{i}]trim=end_frame={frames},setpts=PTS-STARTPTS{',' + extra if extra else ''},"
                      f"scale={size.replace('x', ':')},format=yuv420p,setsar=1[v{i}]")
        cuts.append(at)
        at += frames
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(scenes))) + \
        f"concat=n={len(scenes)}:v=1:a=0[v]"
    if audio:
        args += ["-f", "lavfi", "-t", f"{at / FPS}", "-i", "sine=frequency=330"]
    args += ["-filter_complex", graph, "-map", "[v]"]
    if audio:
        args += ["-map", f"{len(scenes)}:a", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "veryfast"]
    if gop:
        args += ["-g", str(gop), "-x264-params", "scenecut=0"]
    if keyframes_at_cuts:
        args += ["-force_key_frames", ",".join(f"{c / FPS:.6f}" for c in cuts[1:])]
    subprocess.run(args + [str(path)], check=True)
    return cuts[1:]


def frame_hashes(path) -> list[str]:
    """A checksum of every decoded frame of the first video stream."""
    import av

    with av.open(str(path)) as container:
        return [hashlib.sha1(f.to_ndarray(format="yuv420p").tobytes()).hexdigest()
                for f in container.decode(video=0)]


def frames_of(path):
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(int) for f in container.decode(video=0)]


def scores(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives): a found cut matches one
    true cut within ``tolerance`` frames, each true cut matched once."""
    left = list(truth)
    hits = 0
    for cut in found:
        match = next((t for t in left if abs(t - cut) <= tolerance), None)
        if match is not None:
            left.remove(match)
            hits += 1
    return hits, len(found) - hits, len(left)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def scenes_job(tmp_path, source, partitioning: dict | None = None, assembling: dict | None = None,
               app="identity") -> bn.Job:
    return bn.Job(source=str(source), partitioner="video-scenes", app=app, assembler="video-scenes",
                  destination=str(tmp_path / "out"),
                  params={"partitioner": partitioning or {}, "assembler": assembling or {}})


@pytest.fixture(scope="module")
def detection_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detection")
    return [(folder / f"v{i}.mp4", make_video(folder / f"v{i}.mp4", scenes)) for i, scenes in
            enumerate(DETECTION_SET)]


# -- detection ------------------------------------------------------------------------------


def test_cuts_are_found_with_precision_and_recall_of_95_percent(tmp_path, detection_videos):
    tp = fp = fn = 0
    for path, truth in detection_videos:
        refs = scenes_job(tmp_path, path, {"exact": True}).plan(scheduler="sync")
        found = [r.meta["start_frame"] for r in refs[1:]]
        a, b, c = scores(found, truth)
        tp, fp, fn = tp + a, fp + b, fn + c
    assert tp + fn == sum(len(t) for _, t in detection_videos) == 30
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall, tp, fp, fn)


def test_f1_is_no_worse_than_pyscenedetects_default_detector(tmp_path, detection_videos):
    try:
        from scenedetect import ContentDetector, detect
    except ImportError:
        missing("scenedetect is not installed (pip install 'bytenite-nb[test]')")
    ours, theirs = [0, 0, 0], [0, 0, 0]
    for path, truth in detection_videos:
        refs = scenes_job(tmp_path, path, {"exact": True}).plan(scheduler="sync")
        found = [r.meta["start_frame"] for r in refs[1:]]
        peer = [start.frame_num for start, _ in detect(str(path), ContentDetector())][1:]
        ours = [x + y for x, y in zip(ours, scores(found, truth))]
        theirs = [x + y for x, y in zip(theirs, scores(peer, truth))]
    assert f1(*ours) >= f1(*theirs), {"ours (tp, fp, fn)": ours, "PySceneDetect": theirs}
    assert f1(*ours) >= 0.95


@pytest.mark.parametrize("fast_first", [True, False])
def test_a_fast_scene_next_to_a_calm_one_gives_one_cut_at_the_cut(fast_first):
    rng = np.random.default_rng(3)
    fast, calm = list(rng.uniform(35, 45, 40)), list(rng.uniform(0.5, 2, 40))
    # a cut beside a fast scene must clear its differences by PEAK (1.25x): less is also what a pan
    # that speeds up or slows down looks like
    for cut_diff in (60.0, 90.0):
        diffs = [0.0] + (fast + [cut_diff] + calm if fast_first else calm + [cut_diff] + fast)
        assert find_cuts(diffs, min_length=1) == [41], cut_diff


def test_min_scene_length_in_frames_or_seconds_merges_short_scenes(tmp_path):
    path = tmp_path / "short.mp4"
    truth = make_video(path, [("pattern", 30), ("bars", 10), ("fractal", 30), ("noise", 30)])
    assert truth == [30, 40, 70]
    starts = {}
    for params in ({"min_scene_length": 5}, {"min_scene_length": 15}, {"min_scene_length": 0.5,
                                                                       "min_scene_unit": "seconds"}):
        refs = scenes_job(tmp_path, path, {"exact": True, **params}).plan(scheduler="sync")
        starts[str(params)] = [r.meta["start_frame"] for r in refs]
    assert list(starts.values()) == [[0, 30, 40, 70], [0, 30, 70], [0, 30, 70]]  # 0.5 s = 12.5 frames


def test_chunk_info_gives_times_frames_and_scene(tmp_path):
    path = tmp_path / "clip.mp4"
    make_video(path, ROUND_TRIP, gop=24)
    refs = scenes_job(tmp_path, path).plan(scheduler="sync")
    infos = [r.info() for r in refs]
    assert [i["scene"] for i in infos] == [i["position"] for i in infos] == [i["index"] for i in infos] \
        == list(range(len(refs)))
    assert infos[0]["start_frame"] == 0 and infos[-1]["end_frame"] == sum(n for _, n in ROUND_TRIP)
    for a, b in zip(infos, infos[1:]):
        assert a["end_frame"] == b["start_frame"] and a["end"] == pytest.approx(b["start"])
        assert b["start_frame"] % 24 == 0  # stream copy: every clip starts at a keyframe
    for info in infos:
        assert info["source"] == "clip.mp4" and info["fps"] == FPS and info["exact"] is False
        assert info["start"] == pytest.approx(info["start_frame"] / FPS)
        assert info["end"] == pytest.approx(info["end_frame"] / FPS)
        assert abs(info["cut_frame"] - info["start_frame"]) <= 12  # moved to the nearest keyframe


# -- round trips and highlight reels --------------------------------------------------------


def test_scenes_then_identity_then_scenes_gives_every_frame_back_by_stream_copy(tmp_path):
    path = tmp_path / "clip.mp4"
    make_video(path, ROUND_TRIP, gop=24, audio=True)  # keyframes every 24 frames, not at the cuts; B-frames
    job = scenes_job(tmp_path, path)
    assert len(job.plan(scheduler="sync")) == len(ROUND_TRIP)
    job.run(scheduler="sync")
    out = tmp_path / "out" / "clip.mp4"
    assert frame_hashes(out) == frame_hashes(path)
    import av

    with av.open(str(out)) as container:
        assert container.streams.audio, "the audio stream is kept"


def test_exact_scenes_start_at_their_first_frame_and_keep_the_frame_count(tmp_path):
    path = tmp_path / "clip.mp4"
    truth = make_video(path, ROUND_TRIP, gop=50)
    job = scenes_job(tmp_path, path, {"exact": True})
    refs = job.plan(scheduler="sync")
    assert [r.meta["start_frame"] for r in refs[1:]] == truth
    source = frames_of(path)
    for ref in refs:  # each re-encoded clip holds its scene's frames (lossy: nearest by far)
        clip = tmp_path / f"scene{ref.index}.mp4"
        VideoScenes().materialise(ref, str(clip))
        frames = frames_of(clip)
        assert len(frames) == ref.meta["end_frame"] - ref.meta["start_frame"]
        first = ref.meta["start_frame"]
        assert abs(frames[0] - source[first]).mean() < 3
        if first:
            assert abs(frames[0] - source[first - 1]).mean() > 10
    job.run(scheduler="sync")
    assert len(frames_of(tmp_path / "out" / "clip.mp4")) == len(source)


def keep_even_scenes(chunk_path, results_dir, params, chunk_info):
    """A toy highlight picker: keeps scenes 0, 2, 4 ..., drops the others with a JSON sidecar."""
    keep = chunk_info["scene"] % 2 == 0
    with open(os.path.join(results_dir, "scene.json"), "w") as out:
        json.dump({"keep": keep, "score": chunk_info["scene"]}, out)
    if keep:
        shutil.copyfile(chunk_path, os.path.join(results_dir, "clip.mp4"))


def test_a_highlight_reel_has_exactly_the_kept_scenes_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    truth = make_video(path, ROUND_TRIP, gop=250, keyframes_at_cuts=True)
    bounds = list(zip([0] + truth, truth + [sum(n for _, n in ROUND_TRIP)]))
    job = scenes_job(tmp_path, path, {}, {"output_name": "reel.mp4", "index_name": "reel.json"},
                     app=keep_even_scenes)
    job.run(scheduler="sync")
    source = frame_hashes(path)
    want = [h for s, e in bounds[::2] for h in source[s:e]]
    assert frame_hashes(tmp_path / "out" / "reel.mp4") == want
    index = json.loads((tmp_path / "out" / "reel.json").read_text())
    assert [(i["scene"], i["start_frame"], i["end_frame"]) for i in index] == \
        [(k, s, e) for k, (s, e) in enumerate(bounds) if k % 2 == 0]
    assert index[1]["output_start"] == pytest.approx(bounds[0][1] / FPS)


def test_select_keeps_the_listed_scenes_in_scene_order(tmp_path, client):
    path = tmp_path / "clip.mp4"
    truth = make_video(path, ROUND_TRIP, gop=250, keyframes_at_cuts=True)
    bounds = list(zip([0] + truth, truth + [sum(n for _, n in ROUND_TRIP)]))
    job = scenes_job(tmp_path, path, {}, {"select": [3, 1], "output_name": "{stem}.reel.mp4"})
    job.run(client=client)  # planning (the detection) and the cuts run on a real cluster's workers
    source = frame_hashes(path)
    assert frame_hashes(tmp_path / "out" / "clip.reel.mp4") == source[slice(*bounds[1])] + source[slice(*bounds[3])]


def test_a_video_on_s3_is_scanned_in_place_and_cut_from_a_download(tmp_path, s3):
    fs, bucket = s3
    path = tmp_path / "clip.mp4"
    make_video(path, ROUND_TRIP[:3], gop=24)
    fs.put(str(path), f"{bucket}/videos/clip.mp4")
    job = bn.Job(source=f"s3://{bucket}/videos/clip.mp4", partitioner="video-scenes", app="identity",
                 assembler="video-scenes", destination=str(tmp_path / "out"))
    before = SOURCES.downloads
    assert len(job.plan(scheduler="sync")) == 3
    job.run(scheduler="sync")  # one process (sync): its three scenes are cut from one download
    assert frame_hashes(tmp_path / "out" / "clip.mp4") == frame_hashes(path)
    assert SOURCES.downloads - before == 1
    job.run(scheduler="sync", force=True)  # the same version of the source: no download at all
    assert SOURCES.downloads - before == 1
    other = tmp_path / "other.mp4"
    make_video(other, ROUND_TRIP[2:], gop=24)
    fs.put(str(other), f"{bucket}/videos/clip.mp4")  # a new version under the same name: downloaded again
    job.run(scheduler="sync", force=True)
    assert frame_hashes(tmp_path / "out" / "clip.mp4") == frame_hashes(other)
    assert SOURCES.downloads - before == 2


def test_a_folder_of_videos_gives_one_video_and_index_per_source(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_video(folder / "a.mp4", ROUND_TRIP[:2], gop=250, keyframes_at_cuts=True)
    make_video(folder / "b.mp4", ROUND_TRIP[2:], gop=250, keyframes_at_cuts=True)
    job = scenes_job(tmp_path, str(folder) + "/", {}, {"output_name": "{stem}.scenes.mp4",
                                                      "index_name": "{stem}.json"})
    # scene and position count within each video; index is the chunk's number in the job
    infos = [r.info() for r in job.plan(scheduler="sync")]
    assert [(i["source"], i["scene"], i["position"], i["index"]) for i in infos] == \
        [("a.mp4", 0, 0, 0), ("a.mp4", 1, 1, 1), ("b.mp4", 0, 0, 2), ("b.mp4", 1, 1, 3), ("b.mp4", 2, 2, 4)]
    job.run(scheduler="sync")
    for stem in "ab":
        assert frame_hashes(tmp_path / "out" / f"{stem}.scenes.mp4") == frame_hashes(folder / f"{stem}.mp4")
    assert [(s["scene"], s["chunk"]) for s in json.loads((tmp_path / "out" / "b.json").read_text())] == \
        [(0, 2), (1, 3), (2, 4)]
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "out").iterdir())
    one_name = scenes_job(tmp_path, str(folder) + "/", {}, {"output_name": "all.mp4"})
    with pytest.raises(bn.JobFailed, match=r"a.mp4 and b.mp4 would both write all.mp4"):
        one_name.run(scheduler="sync")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "out").iterdir()) == before


def test_two_sources_of_one_name_in_different_folders_are_refused_before_writing(tmp_path):
    clip = tmp_path / "clip.mp4"
    make_video(clip, ROUND_TRIP[:1])
    infos = [{"source": f"{folder}/a.mp4", "scene": 0, "start": 0, "end": 1, "start_frame": 0, "end_frame": 25}
             for folder in ("talks", "other")]
    results = chunk_results(tmp_path, [{"c.mp4": clip.read_bytes()}] * 2, infos)
    out = tmp_path / "o"
    with pytest.raises(AssemblyError, match=r"talks/a.mp4 and other/a.mp4 would both write a.mp4"):
        ScenesAssembler().assemble(results, str(out), {})
    assert not out.exists() or not list(out.iterdir())  # checked before the first output is written
    with pytest.raises(AssemblyError, match=r"talks/a.mp4 and talks/a.mp4 would both write a.mp4"):
        ScenesAssembler().assemble(results[:1], str(out), {"output_name": "{stem}.mp4", "index_name": "{name}"})
    assert not out.exists() or not list(out.iterdir())


def test_select_names_a_scene_that_does_not_exist(tmp_path):
    path = tmp_path / "clip.mp4"
    make_video(path, ROUND_TRIP[:2])
    with pytest.raises(bn.JobFailed, match=r"select names scene 7, but the scenes are 0..1"):
        scenes_job(tmp_path, path, {}, {"select": [0, 7]}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def clip_results(tmp_path, files_per_chunk: list[dict]) -> list[ChunkResult]:
    infos = [{"source": "v.mp4", "scene": i, "start": i, "end": i + 1, "start_frame": i, "end_frame": i + 1}
             for i in range(len(files_per_chunk))]
    return chunk_results(tmp_path, files_per_chunk, infos)


def test_bad_results_name_their_chunk(tmp_path):
    bad_keep = clip_results(tmp_path, [{"c.mp4": b"x", "s.json": b'{"keep": "no"}'}])
    with pytest.raises(ResultFormatError, match=r"chunk 0: s.json: keep must be true or false, got 'no'"):
        ScenesAssembler().assemble(bad_keep, str(tmp_path / "o"), {})
    two = clip_results(tmp_path, [{"a.mp4": b"x", "b.mp4": b"y"}])
    with pytest.raises(ResultFormatError, match=r"chunk 0: 2 results could be its clip \(a.mp4, b.mp4\)"):
        ScenesAssembler().assemble(two, str(tmp_path / "o"), {})
    not_video = clip_results(tmp_path, [{"a.mp4": b"this is no video"}])
    with pytest.raises(ResultFormatError, match=r"chunk 0: a.mp4: not a media file FFmpeg can read"):
        ScenesAssembler().assemble(not_video, str(tmp_path / "o"), {})
    selected_missing = clip_results(tmp_path, [{"s.json": b"{}"}])
    with pytest.raises(ResultFormatError, match=r"chunk 0: scene 0 is selected but its app wrote no clip"):
        ScenesAssembler().assemble(selected_missing, str(tmp_path / "o"), {"select": [0]})


# -- bad videos -----------------------------------------------------------------------------


def test_a_truncated_video_fails_naming_it_and_leaves_the_destination_untouched(tmp_path):
    whole = tmp_path / "whole.mp4"
    make_video(whole, ROUND_TRIP[:2])
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier output")
    with pytest.raises(bn.JobFailed, match=r"cut.mp4: not a media file FFmpeg can read"):
        scenes_job(tmp_path, tmp_path / "cut.mp4").run(scheduler="sync")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_video_cut_short_with_its_index_first_fails_naming_it(tmp_path):
    whole = tmp_path / "whole.mp4"
    make_video(whole, ROUND_TRIP[:3])
    fast = tmp_path / "faststart.mp4"
    subprocess.run([require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(whole), "-c", "copy", "-movflags",
                    "+faststart", str(fast)], check=True)
    data = fast.read_bytes()
    (tmp_path / "short.mp4").write_bytes(data[: len(data) * 2 // 3])  # the index says more frames than remain
    with pytest.raises(bn.JobFailed, match=r"short.mp4: its video ends after frame \d+ of the 105 its header lists"):
        scenes_job(tmp_path, tmp_path / "short.mp4").run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_matroska_video_cut_short_fails_naming_it(tmp_path):
    whole = tmp_path / "whole.mp4"
    make_video(whole, ROUND_TRIP[:3])
    mkv = tmp_path / "whole.mkv"
    subprocess.run([require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(whole), "-c", "copy", str(mkv)],
                   check=True)
    data = mkv.read_bytes()
    (tmp_path / "short.mkv").write_bytes(data[: len(data) // 2])  # no frame count here: the duration tells
    with pytest.raises(bn.JobFailed, match=r"short.mkv: its video ends after [\d.]+ s of the 4.200 s its header"):
        scenes_job(tmp_path, tmp_path / "short.mkv").run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_clip_ffmpeg_fails_to_write_leaves_no_file_behind(tmp_path):
    path = tmp_path / "clip.webm"  # H.264 in a file named .webm: the clip's WebM muxer refuses it
    make_video(tmp_path / "clip.mp4", ROUND_TRIP[:2], gop=250, keyframes_at_cuts=True)
    os.rename(tmp_path / "clip.mp4", path)
    ref = scenes_job(tmp_path, path).plan(scheduler="sync")[1]
    chunk = tmp_path / "chunk"
    chunk.mkdir()
    with pytest.raises(BadRecordError, match=r"clip.webm.*scene 1: ffmpeg failed.*WebM"):
        VideoScenes().materialise(ref, str(chunk / "data"))
    assert list(chunk.iterdir()) == []  # no half-written clip, no temporary file


def test_a_file_that_is_not_a_video_fails_naming_it(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 100)
    with pytest.raises(bn.JobFailed, match=r"notes.mp4: not a media file FFmpeg can read"):
        scenes_job(tmp_path, tmp_path / "notes.mp4").run(scheduler="sync")
    require("ffmpeg")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1",
                    str(tmp_path / "tone.m4a")], check=True)
    with pytest.raises(bn.JobFailed, match=r"tone.m4a: no video stream in it"):
        scenes_job(tmp_path, tmp_path / "tone.m4a").run(scheduler="sync")
    assert not (tmp_path / "out").exists()
