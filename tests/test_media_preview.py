"""The plan preview of media: tile thumbnails cut from the source image, a
waveform of each audio source with its cuts, a strip of video frames at the
chunk starts with the scene cuts; in a plan, the builder and the server.

Media is generated here (numpy, Pillow, ffmpeg's lavfi sources). Image plans
come from the real ``image-tiles`` partitioner; audio and video plans from
small partitioners below that make ChunkRefs with the metadata the media
partitioners document (docs: media conventions), so the preview is checked
against the contract rather than one partitioner's choices.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403  (fixtures: jp_fetch, jp_serverapp, ...)
from traitlets.config import Config

import bytenite_nb as bn
from bytenite_nb.exceptions import BadRecordError
from bytenite_nb.media_preview import media_kind, media_sample
from bytenite_nb.media_preview.frames import CHUNK, SCENE
from bytenite_nb.media_preview.pictures import image_of_data_url, shrink
from bytenite_nb.media_preview.tiles import SIDE, decoded_for
from bytenite_nb.media_preview.timeline import column
from bytenite_nb.media_preview.waveform import CUT, UNCOVERED, WAVE, waveform_picture
from bytenite_nb.partitioners import ChunkRef
from bytenite_nb.plan import plan_html
from tests.conftest import require
from tests.media_plans import TimeWindows, audio_ref, tone_wav, video_ref

# -- media made here ---------------------------------------------------------------------------

def lavfi(path: Path, source: str, *args: str) -> Path:
    ffmpeg = require("ffmpeg")
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, str(path)], check=True)
    return path


def clip(folder: Path) -> Path:
    """Six seconds of testsrc2 at 25 fps, a keyframe every two seconds (frames between
    keyframes must be decoded to be found)."""
    return lavfi(folder / "clip.mp4", "testsrc2=size=320x180:rate=25:duration=6",
                 "-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p")


def ffmpeg_frame(video: Path, t: float, size: tuple[int, int]):
    """The frame at ``t`` as the ffmpeg program extracts it (accurate seek), scaled to ``size``."""
    out = video.parent / f"frame-{t:.3f}.png"
    subprocess.run([require("ffmpeg"), "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", str(video),
                    "-frames:v", "1", str(out)], check=True)
    return Image.open(out).convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def difference(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


# -- plans with the documented chunk metadata ---------------------------------------------------

def red(pixels) -> np.ndarray:
    """Which pixels are the cut colour."""
    return np.all(np.asarray(pixels) == CUT, axis=-1)


# -- audio ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("full_seconds", [600.0, 1.0], ids=["decoded-whole", "windows-after-seeks"])
def test_a_waveform_has_its_size_the_tone_where_it_is_and_a_line_at_each_cut(tmp_path, full_seconds):
    wav = tone_wav(tmp_path / "tone.wav")
    refs = [audio_ref(i, wav, s, e) for i, (s, e) in enumerate([(0, 1.5), (1.5, 3.25), (3.25, 6.0)])]
    pic = waveform_picture(str(wav), refs, width=800, height=120, full_seconds=full_seconds)
    image = image_of_data_url(pic["src"])
    assert image.size == (800, 120) == (pic["width"], pic["height"])
    assert pic["duration"] == pytest.approx(6.0)
    pixels = np.asarray(image.convert("RGB"))
    # a full-height red line in exactly the cut columns: x = floor(t * width / duration)
    lines = {int(x) for x in np.flatnonzero(red(pixels).all(axis=0))}
    assert lines == {200, 433} == {c["x"] for c in pic["cuts"]}
    assert not red(pixels)[:, [x for x in range(800) if x not in lines]].any()
    # the tone (2 s .. 4 s, peak 0.8) is tall; silence is a line
    wave_rows = np.all(pixels == WAVE, axis=-1).sum(axis=0)
    assert (wave_rows[[x for x in range(270, 530) if x not in lines]] >= 0.75 * 120).all()
    assert (wave_rows[list(range(0, 260)) + list(range(540, 800))] <= 3).all()


def test_what_no_chunk_covers_is_shaded_and_its_edges_are_cuts(tmp_path):
    wav = tone_wav(tmp_path / "tone.wav")
    refs = [audio_ref(0, wav, 0.75, 2.0), audio_ref(1, wav, 2.0, 4.5)]
    sample = media_sample(refs, "audio-silence")
    assert sample["kind"] == "media" and sample["media"] == "audio"
    pic = sample["pictures"][0]
    assert [c["x"] for c in pic["cuts"]] == [column(t, 6.0, 800) for t in (0.75, 2.0, 4.5)] == [100, 266, 600]
    pixels = np.asarray(image_of_data_url(pic["src"]).convert("RGB"))
    uncovered = np.all(pixels[0] == UNCOVERED, axis=-1)  # the top row: above any wave
    assert uncovered[:100].all() and uncovered[601:].all() and not uncovered[101:600].any()


def test_a_long_source_is_measured_on_windows_not_decoded_whole(tmp_path):
    # four minutes of AAC over a one-minute full-decode limit: one short window per column, after a seek
    m4a = lavfi(tmp_path / "long.m4a", "sine=frequency=300:sample_rate=8000:duration=240", "-c:a", "aac")
    refs = [audio_ref(i, m4a, i * 60.0, (i + 1) * 60.0) for i in range(4)]
    pic = waveform_picture(str(m4a), refs, width=400, height=60, full_seconds=60)
    assert pic["duration"] == pytest.approx(240, abs=0.1)
    pixels = np.asarray(image_of_data_url(pic["src"]).convert("RGB"))
    assert [c["x"] for c in pic["cuts"]] == [100, 200, 300]
    assert red(pixels)[:, [100, 200, 300]].all()
    # every column measured: the sine (amplitude 1/8 from lavfi) shows everywhere
    wave_rows = np.all(pixels == WAVE, axis=-1).sum(axis=0)
    assert (wave_rows[[x for x in range(1, 399) if x not in (100, 200, 300)]] >= 5).all()


def test_each_source_gets_its_own_waveform_up_to_three(tmp_path):
    refs = []
    for n in range(4):
        wav = tone_wav(tmp_path / f"t{n}.wav", seconds=(0.5, 0.5, 0.5 + n))
        refs += [audio_ref(len(refs), wav, 0.0, 1.0, position=0),
                 audio_ref(len(refs) + 1, wav, 1.0, 1.5 + n, position=1)]
    sample = media_sample(refs)  # no partitioner name: the chunk metadata says audio
    assert sample["media"] == "audio" and sample["heading"] == "waveform of 3 source(s) of 4"
    assert [p["source"] for p in sample["pictures"]] == ["t0.wav", "t1.wav", "t2.wav"]
    # the chunks are named by their number in the job, not their position in their source
    assert [p["chunks"] for p in sample["pictures"]] == [[0, 1], [2, 3], [4, 5]]
    assert [round(p["duration"], 3) for p in sample["pictures"]] == [1.5, 2.5, 3.5]


# -- video ---------------------------------------------------------------------------------------

def test_the_frame_strip_shows_the_frame_at_each_chunk_start(tmp_path):
    video = clip(tmp_path)
    starts = [0.0, 1.52, 3.0, 4.48]  # on frames; 1.52 s and 4.48 s lie between keyframes
    refs = [video_ref(i, video, s, e) for i, (s, e) in enumerate(zip(starts, starts[1:] + [6.0]))]
    sample = media_sample(refs, "video-frames")
    assert sample["media"] == "video" and len(sample["pictures"]) == 1
    pic = sample["pictures"][0]
    strip = image_of_data_url(pic["src"]).convert("RGB")
    assert strip.size == (pic["width"], pic["height"])
    assert [f["time"] for f in pic["frames"]] == starts and [f["chunk"] for f in pic["frames"]] == [0, 1, 2, 3]
    for frame in pic["frames"]:
        thumb = strip.crop(frame["box"])
        assert thumb.height == 90 and thumb.width == 160
        exact = difference(thumb, ffmpeg_frame(video, frame["time"], thumb.size))
        assert exact < 1.0, (frame, exact)
        # the neighbouring frames look different: the match is the frame, not the scene
        assert difference(thumb, ffmpeg_frame(video, frame["time"] + 0.04, thumb.size)) > exact + 2
    assert [c["time"] for c in pic["cuts"]] == [1.52, 3.0, 4.48] and not any(c["scene"] for c in pic["cuts"])


def test_scenes_show_their_first_frame_and_their_cuts_in_red(tmp_path):
    video = clip(tmp_path)
    windows = [(0.0, 1.0, 0), (1.0, 2.0, 0), (2.0, 3.6, 1), (3.6, 5.0, 2), (5.0, 6.0, 2)]
    refs = [video_ref(i, video, s, e, scene=sc) for i, (s, e, sc) in enumerate(windows)]
    pic = media_sample(refs)["pictures"][0]  # by the metadata (fps, scene)
    assert [(f["chunk"], f["time"], f["scene"]) for f in pic["frames"]] == [(0, 0.0, 0), (2, 2.0, 1), (3, 3.6, 2)]
    strip = np.asarray(image_of_data_url(pic["src"]).convert("RGB"))
    # a red gap before each scene's first frame, and red ticks at scene cuts on the timeline, grey at others
    for frame in pic["frames"][1:]:
        left = frame["box"][0]
        assert np.all(strip[frame["box"][1] + 10, left - 3] == SCENE)
    assert not np.all(strip[10, pic["frames"][0]["box"][0] - 3] == SCENE)
    bar = pic["height"] - 3
    assert [(c["time"], c["scene"]) for c in pic["cuts"]] == [(1.0, False), (2.0, True), (3.6, True), (5.0, False)]
    for cut in pic["cuts"]:
        assert tuple(strip[bar, cut["x"]]) == (SCENE if cut["scene"] else CHUNK)


def test_at_most_eight_frames(tmp_path):
    video = clip(tmp_path)
    refs = [video_ref(i, video, i * 0.5, (i + 1) * 0.5) for i in range(12)]
    pic = media_sample(refs, "video-ladder")["pictures"][0]
    assert [f["chunk"] for f in pic["frames"]] == list(range(8))
    assert len(pic["cuts"]) == 11


# -- images (the real image-tiles partitioner) -----------------------------------------------------

def noise_image(path: Path, size=(700, 300), mode="RGB", **save) -> Path:
    rng = np.random.default_rng(7)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    # smooth it so a JPEG keeps its look
    pixels = np.asarray(Image.fromarray(pixels.squeeze(), mode).resize((size[0] // 8, size[1] // 8))
                        .resize(size, Image.Resampling.BICUBIC))
    Image.fromarray(pixels, mode).save(path, **save)
    return path


def tiles_job(tmp_path, source: Path, **params) -> bn.Job:
    return bn.Job(source=str(source), partitioner="image-tiles", app="identity", assembler="zip",
                  destination=str(tmp_path / "out"), params={"partitioner": params})


def test_tile_thumbnails_are_the_first_tiles_as_the_workers_cut_them(tmp_path, client):
    folder = tmp_path / "images"
    folder.mkdir()
    noise_image(folder / "a.png")
    job = tiles_job(tmp_path, folder / "a.png", tile_width=256, tile_height=256, overlap=8)
    plan = job.plan(client=client)  # planned, and previewed, on a worker
    assert len(plan) == 6
    sample = plan.sample
    assert sample["kind"] == "media" and sample["media"] == "image" and len(sample["pictures"]) == 6
    spec = job.resolve()
    for ref, pic in zip(plan, sample["pictures"]):
        assert pic["chunk"] == ref.index and pic["box"] == ref.meta["box"] and pic["caption"] == ref.label
        tile_path = tmp_path / f"tile{ref.index}.png"
        spec.partitioner.materialise(ref, str(tile_path))
        expected = shrink(Image.open(tile_path), SIDE, SIDE)
        thumb = image_of_data_url(pic["src"])
        assert thumb.size == expected.size and max(thumb.size) == SIDE
        assert np.array_equal(np.asarray(thumb), np.asarray(expected))
    assert "the first 6 tile(s) of 6" in plan._repr_html_() and plan._repr_html_().count("<img ") == 6


def test_a_jpeg_is_decoded_at_a_reduced_scale_and_still_matches(tmp_path):
    jpeg = noise_image(tmp_path / "big.jpg", size=(2048, 2048), quality=95)
    with Image.open(jpeg) as image:
        decoded, scale = decoded_for(image, [(0, 0, 1024, 1024), (1024, 0, 2048, 1024)])
        assert decoded.size == (256, 256) and scale == (0.125, 0.125)  # an 8th of each side decoded
    plan = tiles_job(tmp_path, jpeg, tile_width=1024, tile_height=1024).plan(scheduler="sync")
    assert len(plan.sample["pictures"]) == 4
    with Image.open(jpeg) as whole:
        for ref, pic in zip(plan, plan.sample["pictures"]):
            expected = shrink(whole.crop(tuple(ref.meta["box"])), SIDE, SIDE)
            assert difference(image_of_data_url(pic["src"]), expected) < 4


def test_only_the_first_eight_tiles_and_rows_above_them_are_decoded(tmp_path):
    tall = noise_image(tmp_path / "tall.png", size=(256, 4096), mode="L")
    plan = tiles_job(tmp_path, tall, tile_width=64, tile_height=64).plan(scheduler="sync")
    assert len(plan) == 4 * 64 and len(plan.sample["pictures"]) == 8
    with Image.open(tall) as image:
        decoded, _ = decoded_for(image, [r.meta["box"] for r in plan[:8]])
        assert decoded.size == (256, 128)  # two rows of tiles, not 4096 rows


# -- dispatch and bad input ----------------------------------------------------------------------------

def test_the_kind_comes_from_the_partitioner_or_the_chunk_metadata(tmp_path):
    wav, video = tone_wav(tmp_path / "t.wav", (0.5, 0.5, 0.5)), clip(tmp_path)
    bare = {"start": 0.0, "end": 1.0, "position": 0}
    assert [media_kind([], name) for name in ("image-tiles", "audio-time", "video-scenes", "rows")] == \
        ["image", "audio", "video", None]
    assert media_kind([ChunkRef(meta={"box": [0, 0, 1, 1], "image_size": [1, 1]})]) == "image"
    assert media_kind([ChunkRef(meta={**bare, "start_sample": 0, "end_sample": 8})]) == "audio"
    assert media_kind([ChunkRef(meta={**bare, "rendition": {"name": "360p"}, "segment": 0})]) == "video"
    # a bare time window: the source says what it is
    assert media_kind([ChunkRef(url=str(wav), meta={**bare, "source": "t.wav"})]) == "audio"
    assert media_kind([ChunkRef(url=str(video), meta={**bare, "source": "clip.mp4"})]) == "video"
    assert media_kind([ChunkRef(meta={"window": ["2026-01-01", "2026-01-02"]})]) is None


def test_a_source_that_is_not_media_makes_an_error_sample_naming_it(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("these are notes, not audio\n" * 50)
    (tmp_path / "in").mkdir()
    fake.rename(tmp_path / "in" / "notes.wav")
    job = bn.Job(source=str(tmp_path / "in"), partitioner=TimeWindows(), app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"cuts": [1.0], "end": 2.0}})
    plan = job.plan(scheduler="sync")
    assert len(plan) == 2 and plan.sample["kind"] == "error"
    assert "notes.wav" in plan.sample["error"] and "not a media file FFmpeg can read" in plan.sample["error"]
    video = clip(tmp_path)
    with pytest.raises(BadRecordError, match="clip.mp4: has no audio stream"):
        waveform_picture(str(video), [audio_ref(0, video, 0.0, 6.0)])


# -- where people see it -----------------------------------------------------------------------------

def test_the_builder_shows_the_waveform_after_plan(tmp_path, client):
    from bytenite_nb.widgets import JobBuilder

    (tmp_path / "in").mkdir()
    tone_wav(tmp_path / "in" / "tone.wav")
    job = bn.Job(source=str(tmp_path / "in"), partitioner=TimeWindows(), app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"cuts": [1.5, 3.25], "end": 6.0}})
    builder = JobBuilder(job=job, client=client)
    plan = builder.plan()
    assert len(plan) == 3 and plan.sample["media"] == "audio"
    page = builder.plan_view.value
    assert page == plan_html(plan, plan.sample, shown=10) and "waveform of 1 source(s) of 1:" in page
    src = plan.sample["pictures"][0]["src"]
    assert f'<img src="{src}" width="800" height="120"' in page
    assert "tone.wav: 6.0 s, 3 chunk(s), cuts in red" in page


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"bytenite_nb.server": True}}})


def test_the_server_plan_returns_the_pictures(jp_fetch, jp_asyncio_loop, jp_root_dir):
    import json

    folder = Path(jp_root_dir) / "media"
    (folder / "video").mkdir(parents=True)
    clip(folder / "video")
    noise_image(folder / "a.png")
    jobs = {
        "video": {"partitioner": "tests.media_plans:TimeWindows", "dataSource": "video/",
                  "params": {"partitioner": {"cuts": [2.0, 4.0], "end": 6.0, "video": True}}},
        "image": {"partitioner": "image-tiles", "dataSource": "a.png",
                  "params": {"partitioner": {"tile_width": 350, "tile_height": 300}}},
    }
    for kind, job in jobs.items():
        body = {"job": {"name": kind, "app": "identity", "assembler": "zip", "dataDestination": "out/", **job},
                "path": "media/job.bnjob.json"}

        async def go():
            return await jp_fetch("bytenite-nb", "plan", method="POST", body=json.dumps(body))

        answer = json.loads(jp_asyncio_loop.run_until_complete(go()).body)
        sample = answer["sample"]
        assert sample["kind"] == "media" and sample["media"] == kind, sample
        if kind == "video":
            assert answer["count"] == 3 and [f["time"] for f in sample["pictures"][0]["frames"]] == [0.0, 2.0, 4.0]
        else:
            assert answer["count"] == 2 and [p["box"] for p in sample["pictures"]] == [[0, 0, 350, 300],
                                                                                    [350, 0, 700, 300]]
        for pic in sample["pictures"]:
            assert image_of_data_url(pic["src"]).size == (pic["width"], pic["height"])


# -- the output preview plays the audio the media jobs write ---------------------------------------

@pytest.mark.parametrize("name, codec, fmt", [("speech.opus", "libopus", "ogg"), ("speech.aac", "aac", "aac"),
                                              ("speech.m4a", "aac", "mp4"), ("speech.weba", "libopus", "webm"),
                                              ("speech.flac", "flac", "flac"), ("speech.mp3", None, "mpeg")])
def test_the_output_preview_gives_audio_outputs_a_player(tmp_path, name, codec, fmt):
    import ipywidgets as widgets

    from bytenite_nb.widgets.preview import preview_kind, preview_widget

    args = ["-c:a", codec] if codec else []
    if name.endswith(".weba"):
        args += ["-f", "webm"]
    path = lavfi(tmp_path / name, "sine=frequency=440:sample_rate=48000:duration=1", *args)
    player = preview_widget({"name": name, "url": str(path), "size": path.stat().st_size})
    assert preview_kind(name) == "audio"
    assert isinstance(player, widgets.Audio) and player.format == fmt and player.autoplay is False
    assert player.value == path.read_bytes()


def test_media_on_s3_is_previewed_by_the_plan_task(tmp_path, s3, client):
    fs, bucket = s3
    fs.put_file(str(tone_wav(tmp_path / "tone.wav")), f"{bucket}/audio/tone.wav")
    fs.put_file(str(clip(tmp_path)), f"{bucket}/video/clip.mp4")
    for folder, params, kind in (("audio", {"cuts": [1.5, 3.25], "end": 6.0}, "audio"),
                                 ("video", {"cuts": [2.0, 4.0], "end": 6.0, "video": True}, "video")):
        job = bn.Job(source=f"s3://{bucket}/{folder}/", partitioner=TimeWindows(), app="identity",
                     assembler="concat", destination=str(tmp_path / "out"), params={"partitioner": params})
        plan = job.plan(client=client)
        assert plan.sample["kind"] == "media" and plan.sample["media"] == kind, plan.sample
        pic = plan.sample["pictures"][0]
        if kind == "audio":
            assert [c["x"] for c in pic["cuts"]] == [200, 433] and pic["duration"] == pytest.approx(6.0)
        else:
            assert [f["time"] for f in pic["frames"]] == [0.0, 2.0, 4.0]
            strip = image_of_data_url(pic["src"]).convert("RGB")
            for frame in pic["frames"]:
                thumb = strip.crop(frame["box"])
                assert difference(thumb, ffmpeg_frame(tmp_path / "clip.mp4", frame["time"], thumb.size)) < 1.0


def test_a_plan_whose_chunks_name_no_source_says_so():
    refs = [ChunkRef(index=0, meta={"start": 0.0, "end": 1.0, "sample_rate": 8000})]
    sample = media_sample(refs, "audio-time")
    assert sample["pictures"] == [] and sample["note"] == "no chunk names a source file to draw from"
    assert "<div><i>no chunk names a source file to draw from</i></div>" in plan_html(refs, sample)
