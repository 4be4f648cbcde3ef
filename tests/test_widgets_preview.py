"""Output previews: tables from CSV/TSV/JSON/JSON lines/Parquet, images, audio,
video, capped text, archives; local files and an S3 server."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import wave
import zipfile
import zlib

import ipywidgets as widgets
import pytest

from bytenite_nb.widgets import preview
from tests.conftest import require


def png_bytes(width: int = 8, height: int = 4) -> bytes:
    """A real grayscale PNG (a gradient)."""
    raw = b"".join(b"\x00" + bytes((x * 32) % 256 for x in range(width)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_tables_from_each_format(tmp_path):
    (tmp_path / "a.csv").write_text("city,temp\n" + "".join(f"c{i},{i / 2}\n" for i in range(50)))
    (tmp_path / "a.tsv").write_text("k\tv\nx\t1\n")
    (tmp_path / "a.json").write_text(json.dumps([{"k": "x", "v": 1}, {"k": "y", "w": True}]))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30)))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"n": list(range(100)), "sq": [i * i for i in range(100)]}), tmp_path / "a.parquet")

    csv_table = preview.read_table(str(tmp_path / "a.csv"))
    assert csv_table.columns == ["city", "temp"]
    assert csv_table.rows[0] == ["c0", "0.0"] and len(csv_table.rows) == 20 and csv_table.more
    assert preview.read_table(str(tmp_path / "a.tsv")).rows == [["x", "1"]]
    json_table = preview.read_table(str(tmp_path / "a.json"))
    assert json_table.columns == ["k", "v", "w"] and json_table.rows[1] == ["y", None, True]
    lines_table = preview.read_table(str(tmp_path / "a.jsonl"))
    assert lines_table.columns == ["i"] and len(lines_table.rows) == 20 and lines_table.more
    parquet_table = preview.read_table(str(tmp_path / "a.parquet"))
    assert parquet_table.columns == ["n", "sq"] and parquet_table.rows[3] == [3, 9] and parquet_table.more
    html = re.sub(r"<(t[hd])[^>]*>", r"<\1>", preview.preview_widget(str(tmp_path / "a.parquet")).value)
    assert "<th>sq</th>" in html and "<td>19</td><td>361</td>" in html and "first 20 rows" in html
    assert "\nc3    1.5\n" in preview.preview_text(str(tmp_path / "a.csv"))
    # results written without a header line get numbered columns
    (tmp_path / "counts.tsv").write_text("the\t98\nover\t57\nfox\t3\n")
    headless = preview.read_table(str(tmp_path / "counts.tsv"))
    assert headless.columns == ["1", "2"] and headless.rows[0] == ["the", "98"]


def test_media_get_players_and_images_show_inline(tmp_path):
    (tmp_path / "g.png").write_bytes(png_bytes())
    with wave.open(str(tmp_path / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) for i in range(800)))
    image = preview.preview_widget({"name": "g.png", "url": str(tmp_path / "g.png"), "size": 100})
    assert isinstance(image, widgets.Image) and image.format == "png"
    assert image.value == (tmp_path / "g.png").read_bytes()
    audio = preview.preview_widget(str(tmp_path / "tone.wav"))
    assert isinstance(audio, widgets.Audio) and audio.format == "wav" and audio.autoplay is False
    assert audio.value == (tmp_path / "tone.wav").read_bytes()
    ffmpeg = require("ffmpeg")
    video_path = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1",
                    "-pix_fmt", "yuv420p", str(video_path)], check=True)
    video = preview.preview_widget(str(video_path))
    assert isinstance(video, widgets.Video) and video.format == "mp4"
    assert video.value == video_path.read_bytes()
    too_big = preview.preview_widget({"name": "huge.mp4", "url": str(video_path), "size": 10 * 2**30})
    assert "too large to show inline" in too_big.value
    assert preview.preview_text(str(tmp_path / "g.png")).startswith("(image")


def test_text_is_capped_and_binary_is_named(tmp_path):
    (tmp_path / "big.txt").write_text("x" * 200_000)
    text = preview.read_text(str(tmp_path / "big.txt"))
    assert text.startswith("x" * 1000) and text.endswith("(shown: the first 64 KiB)")
    assert len(text) < preview.TEXT_LIMIT + 100
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 10)
    assert "binary data" in preview.preview_widget({"name": "blob.bin", "url": str(tmp_path / "blob.bin"),
                                                    "size": 2560}).value
    # a multi-byte character cut by the cap is still text
    (tmp_path / "utf.txt").write_text("é" * 100)
    assert preview.read_text(str(tmp_path / "utf.txt"), limit=51).startswith("é" * 25)
    with zipfile.ZipFile(tmp_path / "r.zip", "w") as zf:
        zf.writestr("chunk_0000/result.txt", "hi")
    assert "chunk_0000/result.txt" in preview.preview_widget(str(tmp_path / "r.zip")).value


def test_a_broken_file_says_why_instead_of_raising(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    shown = preview.preview_widget(str(tmp_path / "bad.json"))
    assert "bad.json: no preview (JSONDecodeError" in shown.value
    missing = preview.preview_widget(str(tmp_path / "missing.csv"))
    assert "missing.csv: no preview (FileNotFoundError" in missing.value


def test_previews_over_s3(s3):
    fs, bucket = s3
    fs.pipe(f"{bucket}/out/table.csv", b"a,b\n1,2\n")
    fs.pipe(f"{bucket}/out/pic.png", png_bytes())
    assert preview.read_table(f"s3://{bucket}/out/table.csv").rows == [["1", "2"]]
    image = preview.preview_widget(f"s3://{bucket}/out/pic.png")
    assert isinstance(image, widgets.Image) and image.value == png_bytes()


@pytest.mark.parametrize("name,kind", [("x.CSV", "table"), ("a/b.parquet", "table"), ("p.jpeg", "image"),
                                       ("s.mp3", "audio"), ("m.webm", "video"), ("r.zip", "archive"),
                                       ("notes", "text")])
def test_kind_from_name(name, kind):
    assert preview.preview_kind(name) == kind
