"""Audio: audio-silence cuts in the middle of known silences; audio-time ->
identity -> audio-concat gives the samples back (WAV, FLAC) or the duration
within one frame (compressed codecs, stream copy); audio-index shifts every
chunk's cues by its start; audio-language through a detector defined here;
bad input names the file. Every sound is made here: tones and silences with
numpy and soundfile, compressed files with ffmpeg."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest
import soundfile as sf

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.audio_concat import AudioConcat
from bytenite_nb.assemblers.audio_index import AudioIndex
from bytenite_nb.exceptions import AssemblyError, JobValidationError, ResultFormatError

from .conftest import missing, require

RNG = np.random.default_rng(11)


def tone(seconds: float, rate: int, freq: float = 440.0, level: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = level * np.sin(2 * np.pi * freq * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 3 * t))  # a wavering loudness
    return np.repeat(wave[:, None], channels, axis=1)


def hush(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A silence with a little noise (about -70 dBFS), as a real recording has."""
    return RNG.normal(0, 3e-4, (round(seconds * rate), channels))


def tones_with_silences(rate: int, channels: int = 1):
    """Tones separated by silences of known place: (samples, [middle of each silence in seconds])."""
    parts, middles, at = [], [], 0.0
    for sound, quiet in [(2.0, 0.8), (1.5, 0.5), (2.23, 1.1), (0.9, 0.45), (1.7, None)]:
        parts.append(tone(sound, rate, 300 + 100 * len(parts), channels=channels))
        at += sound
        if quiet:
            parts.append(hush(quiet, rate, channels))
            middles.append(at + quiet / 2)
            at += quiet
    return np.concatenate(parts), middles


def write(path, samples: np.ndarray, rate: int, subtype: str = "PCM_16"):
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def encode(src, dest, *args):
    require("ffmpeg")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *args, str(dest)],
                   check=True)
    return dest


def audio_job(tmp_path, source, partitioner: str, params: dict, assembler: str = "audio-concat",
              assembler_params: dict | None = None, app="identity") -> bn.Job:
    return bn.Job(source=str(source), partitioner=partitioner, app=app, assembler=assembler,
                  destination=str(tmp_path / "out"),
                  params={"partitioner": params, "assembler": assembler_params or {}})


def decoded(path):
    """(samples per channel, duration in seconds, codec) of a file, decoded by PyAV."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return sum(f.samples for f in c.decode(stream)), stream.codec_context.sample_rate, stream.codec_context.name


# -- audio-silence -------------------------------------------------------------------------


@pytest.mark.parametrize("rate,channels,fmt", [(16000, 1, "wav"), (44100, 2, "wav"), (48000, 2, "flac")])
def test_silence_cuts_in_the_middle_of_each_known_silence(tmp_path, rate, channels, fmt):
    samples, middles = tones_with_silences(rate, channels)
    src = write(tmp_path / f"talk.{fmt}", samples, rate)
    refs = audio_job(tmp_path, src, "audio-silence", {"threshold_db": -40, "min_silence": 0.3, "min_chunk": 0.5,
                                                       "max_chunk": 10}).plan(scheduler="sync")
    cuts = [r.meta["start"] for r in refs[1:]]
    assert len(cuts) == len(middles)
    for got, want in zip(cuts, middles):
        assert abs(got - want) <= 0.010, (got, want)
    assert [r.meta["start_sample"] for r in refs[1:]] == [r.meta["end_sample"] for r in refs[:-1]]
    assert refs[0].meta["start_sample"] == 0 and refs[-1].meta["end_sample"] == len(samples)
    assert all(r.meta["start"] == r.meta["start_sample"] / rate for r in refs)
    assert [r.meta["position"] for r in refs] == list(range(len(refs)))


def test_silence_keeps_chunks_between_min_and_max(tmp_path):
    rate = 8000
    # a silence every second, then 9 seconds without one
    parts = [np.concatenate([tone(0.7, rate), hush(0.3, rate)]) for _ in range(6)] + [tone(9.0, rate)]
    samples = np.concatenate(parts)
    src = write(tmp_path / "a.wav", samples, rate)
    refs = audio_job(tmp_path, src, "audio-silence", {"min_silence": 0.2, "min_chunk": 1.5, "max_chunk": 4}) \
        .plan(scheduler="sync")
    lengths = [r.meta["end"] - r.meta["start"] for r in refs]
    assert all(1.5 <= n <= 4 for n in lengths), lengths
    assert sum(lengths) == pytest.approx(len(samples) / rate)
    # the cuts in the first six seconds are in silences, every other one skipped for min_chunk
    assert [round(r.meta["start"], 2) for r in refs[1:3]] == [1.85, 3.85]


def test_max_chunk_must_leave_room_for_min_chunk(tmp_path):
    src = write(tmp_path / "a.wav", tone(1, 8000), 8000)
    with pytest.raises(bn.JobFailed, match=r"params.partitioner.max_chunk: 3 must be at least twice min_chunk \(2\)"):
        audio_job(tmp_path, src, "audio-silence", {"min_chunk": 2, "max_chunk": 3}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_silence_on_compressed_audio_cuts_on_packets(tmp_path):
    rate = 44100
    samples, middles = tones_with_silences(rate)
    m4a = encode(write(tmp_path / "a.wav", samples, rate), tmp_path / "a.m4a", "-c:a", "aac", "-b:a", "96k")
    job = audio_job(tmp_path, m4a, "audio-silence", {"min_silence": 0.3, "min_chunk": 0.5, "max_chunk": 10})
    refs = job.plan(scheduler="sync")
    assert [r.meta["codec"] for r in refs] == ["aac"] * len(refs) and not refs[0].meta["exact"]
    cuts = [r.meta["start"] for r in refs[1:]]
    assert len(cuts) == len(middles)
    for got, want in zip(cuts, middles):  # an AAC packet is 1024 samples: 23 ms
        assert abs(got - want) <= 0.010 + 1024 / rate, (got, want)
        assert round(got * rate) % 1024 == 0
    job.run(scheduler="sync")
    assert decoded(tmp_path / "out" / "a.m4a")[:2] == decoded(m4a)[:2]


# -- audio-time -> identity -> audio-concat -------------------------------------------------


@pytest.mark.parametrize("fmt,subtype,channels", [("wav", "PCM_16", 1), ("wav", "PCM_24", 2), ("wav", "FLOAT", 2),
                                                  ("flac", "PCM_16", 2), ("flac", "PCM_24", 1)])
def test_time_then_concat_gives_the_samples_back(tmp_path, fmt, subtype, channels):
    rate = 22050
    samples = RNG.uniform(-0.9, 0.9, (rate * 5 + 123, channels))
    src = write(tmp_path / f"noise.{fmt}", samples, rate, subtype)
    job = audio_job(tmp_path, src, "audio-time", {"seconds": 1.3})
    refs = job.plan(scheduler="sync")
    assert [r.meta["start_sample"] for r in refs] == [round(i * 1.3 * rate) for i in range(len(refs))]
    assert refs[-1].meta["end_sample"] == len(samples) and len(refs) == 4
    assert all(r.meta["sample_rate"] == rate and r.meta["exact"] and r.meta["source"] == src.name for r in refs)
    job.run(scheduler="sync")
    out = tmp_path / "out" / src.name
    dtype = "float32" if subtype == "FLOAT" else "int32"
    got, got_rate = sf.read(str(out), dtype=dtype)
    want, _ = sf.read(str(src), dtype=dtype)
    assert got_rate == rate and sf.info(str(out)).subtype == subtype
    assert np.array_equal(got, want)


def test_each_time_chunk_holds_exactly_its_samples(tmp_path):
    from bytenite_nb.partitioners.audio_time import AudioTime

    rate = 8000
    samples = RNG.integers(-2**15, 2**15, (rate * 3, 2), dtype=np.int16)
    src = tmp_path / "a.wav"
    sf.write(str(src), samples, rate, subtype="PCM_16")
    refs = audio_job(tmp_path, src, "audio-time", {"seconds": 0.7}).plan(scheduler="sync")
    for ref in refs:
        dest = tmp_path / f"c{ref.index}.bin"
        AudioTime().materialise(ref, str(dest))
        got, _ = sf.read(str(dest), dtype="int16")
        assert np.array_equal(got, samples[ref.meta["start_sample"]:ref.meta["end_sample"]])
        info = ref.info()
        assert info["end"] == ref.meta["end_sample"] / rate and info["index"] == ref.index


def test_a_chunk_that_fails_part_way_leaves_no_file_behind(tmp_path):
    from bytenite_nb.exceptions import BadRecordError
    from bytenite_nb.partitioners.audio_time import AudioTime

    src = write(tmp_path / "a.flac", RNG.uniform(-0.9, 0.9, (8000 * 4, 1)), 8000)
    ref = audio_job(tmp_path, src, "audio-time", {"seconds": 4}).plan(scheduler="sync")[0]
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 2])  # the header still says 4 s: the samples stop half-way
    chunk = tmp_path / "chunk"
    chunk.mkdir()
    with pytest.raises(BadRecordError, match=r"a.flac"):
        AudioTime().materialise(ref, str(chunk / "data"))
    assert list(chunk.iterdir()) == []  # no half-written chunk, no temporary file


@pytest.mark.parametrize("ext,args,frame", [("m4a", ["-c:a", "aac", "-b:a", "96k"], 1024),
                                            ("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], 1152),
                                            ("ogg", ["-c:a", "libopus", "-b:a", "64k"], 960)])
def test_compressed_audio_round_trips_by_stream_copy(tmp_path, ext, args, frame):
    rate = 48000
    wav = write(tmp_path / "src.wav", np.concatenate([tone(3.3, rate), hush(0.5, rate), tone(2.9, rate, 620)]), rate)
    try:
        src = encode(wav, tmp_path / f"song.{ext}", *args)
    except subprocess.CalledProcessError:
        missing(f"this ffmpeg has no encoder for {ext} ({args[1]})")
    job = audio_job(tmp_path, src, "audio-time", {"seconds": 2})
    refs = job.plan(scheduler="sync")
    assert len(refs) == 4 and not refs[0].meta["exact"]
    for ref in refs[1:]:  # every cut within one packet of a multiple of two seconds
        assert abs(ref.meta["start"] - 2 * ref.index) <= frame / rate
    job.run(scheduler="sync")
    out = tmp_path / "out" / src.name
    got, want = decoded(out), decoded(src)
    assert got[1:] == want[1:]  # rate and codec: stream copy, never re-encoded
    assert abs(got[0] - want[0]) <= frame


def test_a_real_job_on_the_cluster_with_several_files(tmp_path, client):
    folder = tmp_path / "in"
    folder.mkdir()
    a = write(folder / "a.wav", RNG.uniform(-1, 1, (16000 * 3, 1)), 16000)
    b = write(folder / "b.flac", RNG.uniform(-1, 1, (8000 * 5, 2)), 8000)
    job = audio_job(tmp_path, str(folder) + "/", "audio-time", {"seconds": 1}, assembler_params={
        "output_name": "{stem}.joined{ext}"})
    result = job.run(client=client)
    assert result.n_chunks == 3 + 5
    for src in (a, b):
        got = sf.read(str(tmp_path / "out" / f"{src.stem}.joined{src.suffix}"), dtype="int32")[0]
        assert np.array_equal(got, sf.read(str(src), dtype="int32")[0])


def test_audio_on_s3_is_read_by_ranged_reads(tmp_path, s3):
    fs, bucket = s3
    rate = 16000
    wav = write(tmp_path / "a.wav", tones_with_silences(rate)[0], rate)
    m4a = encode(wav, tmp_path / "b.m4a", "-c:a", "aac")
    for f in (wav, m4a):
        fs.put(str(f), f"{bucket}/in/{f.name}")
    job = audio_job(tmp_path, f"s3://{bucket}/in/", "audio-silence", {"min_silence": 0.3, "min_chunk": 0.5,
                                                                        "max_chunk": 10})
    refs = job.plan(scheduler="sync")
    assert [r.meta["source"] for r in refs].count("a.wav") == 5 and [r.meta["source"] for r in refs].count("b.m4a") == 5
    job.run(scheduler="sync")
    assert np.array_equal(sf.read(str(tmp_path / "out" / "a.wav"), dtype="int16")[0],
                          sf.read(str(wav), dtype="int16")[0])
    assert decoded(tmp_path / "out" / "b.m4a") == decoded(m4a)


def test_concat_writes_the_format_its_output_name_asks_for(tmp_path):
    rate = 16000
    wav = write(tmp_path / "a.wav", tones_with_silences(rate)[0], rate)
    audio_job(tmp_path, wav, "audio-time", {"seconds": 2.5}, assembler_params={"output_name": "{stem}.flac"}) \
        .run(scheduler="sync")
    out = tmp_path / "out" / "a.flac"
    assert sf.info(str(out)).format == "FLAC"  # PCM to FLAC: lossless, the same samples
    assert np.array_equal(sf.read(str(out), dtype="int16")[0], sf.read(str(wav), dtype="int16")[0])
    require("ffmpeg")
    audio_job(tmp_path, wav, "audio-time", {"seconds": 2.5}, assembler_params={"output_name": "{stem}.mp3"}) \
        .run(scheduler="sync", force=True)
    samples, got_rate, codec = decoded(tmp_path / "out" / "a.mp3")  # decoded and encoded once by FFmpeg
    assert codec.startswith("mp3") and got_rate == rate
    assert abs(samples - sf.info(str(wav)).frames) <= 1152 * 2  # the encoder's padding: within two frames


def test_one_output_name_for_several_sources_is_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.wav", tone(1, 8000), 8000)
    write(folder / "b.wav", tone(1, 8000), 8000)
    job = audio_job(tmp_path, str(folder) + "/", "audio-time", {"seconds": 1}, assembler_params={
        "output_name": "all.wav"})
    with pytest.raises(bn.JobFailed, match="2 sources but one output_name 'all.wav'"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_two_sources_of_one_name_in_different_folders_are_refused_before_writing(tmp_path):
    results = []
    for i, folder in enumerate(("talks", "other")):
        path = write(tmp_path / f"{folder}-a.wav", tone(1, 8000), 8000)
        results.append(ChunkResult(i, (ResultFile("a.wav", path.stat().st_size, "file://" + str(path), str(path)),),
                                   {"source": f"{folder}/a.wav", "start": 0.0, "index": i, "position": 0}))
    out = tmp_path / "o"
    with pytest.raises(AssemblyError, match="audio-concat: talks/a.wav and other/a.wav would both write a.wav"):
        AudioConcat().assemble(results, str(out), {})
    assert not out.exists() or not list(out.iterdir())


def test_concat_names_a_chunk_without_audio(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("no sound here")
    results = [ChunkResult(0, (ResultFile("t.txt", 13, "file://" + str(text), str(text)),),
                           {"source": "a.wav", "start": 0.0, "index": 0, "position": 0})]
    with pytest.raises(ResultFormatError, match=r"chunk 0: no audio among its results \(t.txt\)"):
        AudioConcat().assemble(results, str(tmp_path / "o"), {})
    with pytest.raises(ResultFormatError, match=r"chunk 0: no source and start time in its CHUNK_INFO"):
        AudioConcat().assemble([ChunkResult(0, (), {"index": 0})], str(tmp_path / "o"), {})


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("partitioner", ["audio-time", "audio-silence"])
def test_a_file_that_is_not_audio_is_named(tmp_path, partitioner):
    (tmp_path / "notes.wav").write_text("these are notes, not sounds\n" * 50)
    with pytest.raises(bn.JobFailed, match=r"notes.wav: (not a media file FFmpeg can read|no audio stream)"):
        audio_job(tmp_path, tmp_path / "notes.wav", partitioner, {}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_an_empty_recording_is_named(tmp_path):
    write(tmp_path / "empty.wav", np.zeros((0, 1)), 8000)
    with pytest.raises(bn.JobFailed, match=r"empty.wav: holds no samples"):
        audio_job(tmp_path, tmp_path / "empty.wav", "audio-time", {}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ext", ["wav", "flac", "m4a"])
def test_a_truncated_file_is_named(tmp_path, ext):
    wav = write(tmp_path / "full.wav", tones_with_silences(16000)[0], 16000)
    src = wav if ext == "wav" else encode(wav, tmp_path / f"full.{ext}")
    data = src.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(bn.JobFailed, match=r"cut\.%s: .*(truncated|damaged|not a media file)" % ext):
        audio_job(tmp_path, cut, "audio-time", {"seconds": 1}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


# -- audio-index -----------------------------------------------------------------------------

CUES = [(0.1, 0.35, "one"), (0.5, 0.9123, "two, with\na second line")]


def cue_app(kind: str):
    """A per-chunk app writing two cues in its chunk's own time, as ``kind``."""
    from bytenite_nb.timed_text import Cue, write_cues

    def app(chunk_path, results_dir, params, chunk_info):
        cues = [Cue(a, b, f"{text} #{chunk_info['index']}") for a, b, text in CUES]
        with open(f"{results_dir}/cues.{kind}", "w") as f:
            f.write(write_cues(cues, kind))

    return app


def ms(seconds: float) -> float:
    """``seconds`` to the nearest millisecond (half up), as SRT and WebVTT hold them."""
    return math.floor(seconds * 1000 + 0.5) / 1000


def read_timeline(path, fmt: str):
    from bytenite_nb.timed_text import read_cues

    return [(c.start, c.end, c.text) for c in read_cues(path.read_bytes(), path.name, fmt)]


@pytest.mark.parametrize("kind,fmt", [("srt", "srt"), ("vtt", "vtt"), ("json", "json"), ("srt", "vtt"),
                                      ("json", "srt")])
def test_index_shifts_every_cue_by_its_chunks_start(tmp_path, kind, fmt):
    rate = 16000
    samples, _ = tones_with_silences(rate)
    src = write(tmp_path / "talk.wav", samples, rate)
    job = audio_job(tmp_path, src, "audio-silence", {"min_silence": 0.3, "min_chunk": 0.5, "max_chunk": 10},
                    assembler="audio-index", assembler_params={"output_name": f"talk.{fmt}"}, app=cue_app(kind))
    refs = job.plan(scheduler="sync")
    job.run(scheduler="sync")
    got = read_timeline(tmp_path / "out" / f"talk.{fmt}", fmt)
    want = []
    for ref in refs:
        for a, b, text in CUES:
            start = ref.meta["start"]
            if fmt == "json":
                want.append((a + start, b + start, f"{text} #{ref.index}"))
            else:  # SRT and WebVTT hold milliseconds
                want.append((ms(a + start), ms(b + start), f"{text} #{ref.index}"))
    assert got == want
    assert all(r.meta["start"] > 0 for r in refs[1:]) and len(refs) == 5


def test_index_of_several_sources_numbers_chunks_in_the_job_and_positions_in_their_source(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, seconds in (("a.wav", 2), ("b.wav", 3)):
        write(folder / name, tone(seconds, 8000), 8000)
    job = audio_job(tmp_path, str(folder) + "/", "audio-time", {"seconds": 1}, assembler="audio-index",
                    assembler_params={"output_name": "{stem}.srt"}, app=cue_app("srt"))
    infos = [r.info() for r in job.plan(scheduler="sync")]
    assert [(i["source"], i["position"], i["index"]) for i in infos] == \
        [("a.wav", 0, 0), ("a.wav", 1, 1), ("b.wav", 0, 2), ("b.wav", 1, 3), ("b.wav", 2, 4)]
    job.run(scheduler="sync")
    # each app wrote its chunk_info index into its cues: the job-wide number, never restarting per file
    for stem, chunks in (("a", [0, 1]), ("b", [2, 3, 4])):
        got = read_timeline(tmp_path / "out" / f"{stem}.srt", "srt")
        assert [text.rsplit("#", 1)[1] for _, _, text in got] == [str(c) for c in chunks for _ in CUES]


def index_results(tmp_path, files: list[tuple[str, str]], starts: list[float]) -> list[ChunkResult]:
    results = []
    for i, ((name, text), start) in enumerate(zip(files, starts)):
        path = tmp_path / f"r{i}_{name}"
        path.write_text(text)
        results.append(ChunkResult(i, (ResultFile(name, len(text), "file://" + str(path), str(path)),),
                                   {"source": "talk.wav", "start": start, "index": i, "position": i}))
    return results


def test_index_of_two_sources_of_one_name_in_different_folders_is_refused_before_writing(tmp_path):
    results = index_results(tmp_path, [("c.srt", "1\n00:00:00,100 --> 00:00:00,300\nhi\n")] * 2, [0.0, 0.0])
    results = [ChunkResult(r.index, r.files, {**r.info, "source": f"{folder}/a.wav"})
               for r, folder in zip(results, ("talks", "other"))]
    out = tmp_path / "o"
    with pytest.raises(AssemblyError, match="audio-index: talks/a.wav and other/a.wav would both write a.srt"):
        AudioIndex().assemble(results, str(out), {"output_name": "{stem}.srt"})
    assert not out.exists() or not list(out.iterdir())
    # {dir} keeps each source's folder: both timelines are written
    AudioIndex().assemble(results, str(out), {"output_name": "{dir}/{stem}.srt"})
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.srt")) == ["other/a.srt", "talks/a.srt"]
    assert "hi" in (out / "talks" / "a.srt").read_text()


def test_index_reads_webvtt_ids_settings_and_notes(tmp_path):
    vtt = ("WEBVTT - a header\n\nNOTE a comment\nover two lines\n\nSTYLE\n::cue { color: red }\n\n"
           "intro\n00:01.000 --> 00:02.250 align:start line:0\n<v Ann>Hello\n\n"
           "00:00:03.000 --> 00:00:04.000\nBye\n")
    results = index_results(tmp_path, [("a.vtt", vtt), ("b.vtt", vtt)], [0.0, 61.5])
    AudioIndex().assemble(results, str(tmp_path / "o"), {"output_name": "all.vtt"})
    text = (tmp_path / "o" / "all.vtt").read_text()
    assert text == ("WEBVTT\n\n00:00:01.000 --> 00:00:02.250 align:start line:0\n<v Ann>Hello\n\n"
                    "00:00:03.000 --> 00:00:04.000\nBye\n\n"
                    "00:01:02.500 --> 00:01:03.750 align:start line:0\n<v Ann>Hello\n\n"
                    "00:01:04.500 --> 00:01:05.500\nBye\n")


def test_index_shifts_json_words_and_keeps_other_fields(tmp_path):
    seg = {"segments": [{"start": 0.5, "end": 1.0, "text": "hi", "speaker": "A",
                         "words": [{"word": "hi", "start": 0.5, "end": 0.9}]}]}
    results = index_results(tmp_path, [("s.json", json.dumps(seg)), ("s.json", json.dumps(seg["segments"]))],
                            [0.0, 10.25])
    AudioIndex().assemble(results, str(tmp_path / "o"), {"format": "json"})
    out = json.loads((tmp_path / "o" / "talk.json").read_text())["segments"]
    assert out == [{"start": 0.5, "end": 1.0, "text": "hi", "speaker": "A", "chunk": 0,
                    "words": [{"word": "hi", "start": 0.5, "end": 0.9}]},
                   {"start": 10.75, "end": 11.25, "text": "hi", "speaker": "A", "chunk": 1,
                    "words": [{"word": "hi", "start": 10.75, "end": 11.15}]}]


@pytest.mark.parametrize("start,end", [(True, 1.0), (0.0, False), (0.5, float("nan"))])
def test_index_refuses_json_times_that_are_not_seconds(tmp_path, start, end):
    text = json.dumps([{"start": start, "end": end, "text": "hi"}])  # true, false and NaN are valid JSON
    results = index_results(tmp_path, [("s.json", text)], [0.0])
    with pytest.raises(ResultFormatError, match=r"chunk 0: s.json: segment 0 has no numeric start and end"):
        AudioIndex().assemble(results, str(tmp_path / "o"), {"format": "json"})
    words = [{"start": 0.0, "end": 1.0, "words": [{"word": "hi", "start": True, "end": 0.5}]}]
    AudioIndex().assemble(index_results(tmp_path, [("w.json", json.dumps(words))], [2.0]), str(tmp_path / "w"),
                          {"format": "json"})
    got = json.loads((tmp_path / "w" / "talk.json").read_text())["segments"][0]["words"]
    assert got == [{"word": "hi", "start": True, "end": 2.5}]  # a word's true is kept, never shifted as 1


def test_index_names_a_chunk_without_timed_results(tmp_path):
    results = index_results(tmp_path, [("a.srt", ""), ("b.txt", "a transcript without times")], [0, 5])
    with pytest.raises(ResultFormatError, match=r"chunk 1: no .srt, .vtt or .json among its results \(b.txt\)"):
        AudioIndex().assemble(results, str(tmp_path / "o"), {})


def test_index_names_the_chunk_and_line_of_a_bad_cue(tmp_path):
    results = index_results(tmp_path, [("a.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n"),
                                       ("b.srt", "1\n00:00:01,000 --> later\nno\n")], [0, 5])
    with pytest.raises(ResultFormatError, match=r"chunk 1: b.srt: line 2: bad timestamp in '00:00:01,000 --> later'"):
        AudioIndex().assemble(results, str(tmp_path / "o"), {"output_name": "x.srt"})
    with pytest.raises(bn.exceptions.AssemblyError, match=r"cannot tell the format of 'x.txt'"):
        AudioIndex().assemble(results, str(tmp_path / "o"), {"output_name": "x.txt"})


# -- audio-language --------------------------------------------------------------------------

LANGUAGE_OF_TONE = {440: "en", 880: "fr", 660: "de"}


def tone_language(samples, rate):
    """A language detector for tests: labels every 100 ms by its strongest frequency
    (440 Hz "en", 880 Hz "fr", 660 Hz "de"), silence by nothing, as (start, end, language)."""
    step = rate // 10
    spans = []
    for i in range(len(samples) // step):
        block = samples[i * step:(i + 1) * step]
        if np.sqrt(np.mean(block ** 2)) < 0.01:
            continue
        freq = np.argmax(np.abs(np.fft.rfft(block))) * rate / step
        language = LANGUAGE_OF_TONE[min(LANGUAGE_OF_TONE, key=lambda f: abs(f - freq))]
        if spans and spans[-1][2] == language and spans[-1][1] == i / 10:
            spans[-1] = (spans[-1][0], (i + 1) / 10, language)
        else:
            spans.append((i / 10, (i + 1) / 10, language))
    return spans


def language_source(tmp_path, rate=16000):
    # en 2 s, de 0.3 s (shorter than min_segment: joins en), fr 1.5 s, silence 1 s, en 1.2 s, fr 2 s
    samples = np.concatenate([tone(2, rate, 440), tone(0.3, rate, 660), tone(1.5, rate, 880),
                              np.zeros((rate, 1)), tone(1.2, rate, 440), tone(2, rate, 880)])
    return write(tmp_path / "talk.flac", samples, rate)


def test_language_segments_through_a_user_detector(tmp_path):
    src = language_source(tmp_path)
    job = audio_job(tmp_path, src, "audio-language", {"detector": f"{__name__}:tone_language", "min_segment": 0.5},
                    assembler="passthrough")
    refs = job.plan(scheduler="sync")
    assert [(r.meta["language"], r.meta["start"], r.meta["end"]) for r in refs] == [
        ("en", 0.0, 2.3), ("fr", 2.3, 3.8), ("en", 4.8, 6.0), ("fr", 6.0, 8.0)]
    assert [r.meta["start_sample"] for r in refs] == [0, 36800, 76800, 96000]
    only_fr = audio_job(tmp_path, src, "audio-language", {"detector": f"{__name__}:tone_language",
                                                          "languages": ["fr"], "min_segment": 0.5})
    refs = only_fr.plan(scheduler="sync")
    assert [(r.meta["language"], r.meta["position"], r.meta["start"]) for r in refs] == [("fr", 0, 2.3), ("fr", 1, 6.0)]
    only_fr.run(scheduler="sync")  # the chunks of French, joined
    got = sf.read(str(tmp_path / "out" / "talk.flac"), dtype="int32")[0]
    whole = sf.read(str(src), dtype="int32")[0]
    assert np.array_equal(got, np.concatenate([whole[36800:60800], whole[96000:]]))


@pytest.mark.parametrize("detector,message", [
    ("no_such_module_here:detect", r"params.partitioner.detector: cannot import module 'no_such_module_here'"),
    (f"{__name__}:no_such_function", r"params.partitioner.detector: module '[\w.]+' has no 'no_such_function'"),
    (f"{__name__}:LANGUAGE_OF_TONE", r"params.partitioner.detector: [\w.]+:LANGUAGE_OF_TONE is not a function"),
])
def test_a_bad_detector_is_a_field_error(tmp_path, detector, message):
    src = language_source(tmp_path)
    with pytest.raises(bn.JobFailed, match=message):
        audio_job(tmp_path, src, "audio-language", {"detector": detector}).run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_a_detector_that_is_not_module_function_is_refused_before_running(tmp_path):
    src = language_source(tmp_path)
    with pytest.raises(JobValidationError, match=r"params.partitioner.detector: must name a function as "
                                                 r"module:function"):
        audio_job(tmp_path, src, "audio-language", {"detector": "detect languages"}).validate()


def bad_spans(samples, rate):
    return [(0, 1, "en"), (2, 1, "fr")]


def test_a_detector_returning_bad_spans_is_named(tmp_path):
    src = language_source(tmp_path)
    with pytest.raises(bn.JobFailed, match=r"talk.flac: the detector's span 1 \(2.0, 1.0, 'fr'\) does not end "
                                           r"after it starts"):
        audio_job(tmp_path, src, "audio-language", {"detector": f"{__name__}:bad_spans"}).run(scheduler="sync")
