"""Images: image-tiles -> identity -> image-mosaic gives the pixels back;
image-batches, image-package; bad images name the file. Every image is made
here from random pixels (or gradients) with numpy."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile, chunk_folder
from bytenite_nb.assemblers.image_mosaic import ImageMosaic
from bytenite_nb.exceptions import ResultFormatError
from bytenite_nb.partitioners.image_tiles import ImageTiles

RNG = np.random.default_rng(11)


def random_image(mode: str, width: int, height: int) -> Image.Image:
    if mode == "I;16":
        return Image.frombytes("I;16", (width, height),
                               RNG.integers(0, 2**16, (height, width), dtype=np.uint16).astype("<u2").tobytes())
    bands = len(Image.new(mode, (1, 1)).getbands())
    shape = (height, width) if bands == 1 else (height, width, bands)
    return Image.frombytes(mode, (width, height), RNG.integers(0, 256, shape, dtype=np.uint8).tobytes())


def save(image: Image.Image, path, fmt: str) -> None:
    image.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


def tiles_job(tmp_path, source, tiling: dict, mosaic: dict | None = None, app_params: dict | None = None,
              assembler: str = "image-mosaic") -> bn.Job:
    return bn.Job(source=str(source), partitioner="image-tiles", app="identity", assembler=assembler,
                  destination=str(tmp_path / "out"),
                  params={"partitioner": tiling, "assembler": mosaic or {}, "app": app_params or {}})


CASES = [(mode, fmt) for mode in ("RGB", "RGBA", "L", "I;16") for fmt in ("PNG", "TIFF")] + \
        [("RGB", "JPEG"), ("L", "JPEG")]


@pytest.mark.parametrize("overlap", [0, 3])
@pytest.mark.parametrize("mode,fmt", CASES)
def test_tiles_then_mosaic_give_the_pixels_back(tmp_path, mode, fmt, overlap):
    src = tmp_path / f"img.{fmt.lower()}"
    save(random_image(mode, 37, 23), src, fmt)  # 37 x 23: not a multiple of 10 x 8
    job = tiles_job(tmp_path, src, {"tile_width": 10, "tile_height": 8, "overlap": overlap})
    refs = job.plan(scheduler="sync")
    assert len(refs) == 4 * 3
    job.run(scheduler="sync")
    out = tmp_path / "out" / "img.png"
    with Image.open(out) as got, Image.open(src) as want:
        assert got.mode == want.mode and got.size == (37, 23)
    # JPEG is lossy: the truth is its decoded pixels, which the tiles carry losslessly
    assert np.array_equal(pixels(out), pixels(src))


def test_chunk_info_gives_boxes_cores_and_grid(tmp_path):
    src = tmp_path / "a.png"
    random_image("RGB", 25, 14).save(src)
    refs = tiles_job(tmp_path, src, {"tile_width": 10, "tile_height": 10, "overlap": 2}).plan(scheduler="sync")
    infos = [r.info() for r in refs]
    assert [i["grid"] for i in infos] == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert [i["core"] for i in infos] == [[0, 0, 10, 10], [10, 0, 20, 10], [20, 0, 25, 10],
                                         [0, 10, 10, 14], [10, 10, 20, 14], [20, 10, 25, 14]]
    assert [i["box"] for i in infos] == [[0, 0, 12, 12], [8, 0, 22, 12], [18, 0, 25, 12],
                                        [0, 8, 12, 14], [8, 8, 22, 14], [18, 8, 25, 14]]
    assert all(i["image"] == "a.png" and i["image_size"] == [25, 14] and i["mode"] == "RGB"
               and i["grid_size"] == [2, 3] and i["tile_format"] == "png" for i in infos)
    # the tile a worker writes is exactly its box of the image
    dest = tmp_path / "tile.png"
    ImageTiles().materialise(refs[4], str(dest))
    assert np.array_equal(pixels(dest), pixels(src)[8:14, 8:22])


def test_modes_png_cannot_hold_go_to_tiff(tmp_path):
    src = tmp_path / "f.tif"
    data = RNG.normal(size=(9, 13)).astype(np.float32)
    Image.fromarray(data).save(src)
    job = tiles_job(tmp_path, src, {"tile_width": 4, "tile_height": 4}, {"output_name": "f.tif"})
    assert {r.meta["tile_format"] for r in job.plan(scheduler="sync")} == {"tiff"}
    job.run(scheduler="sync")
    assert np.array_equal(pixels(tmp_path / "out" / "f.tif"), data)


@pytest.mark.parametrize("width,height,tile,overlap", [(61, 45, 16, 5), (21, 23, 10, 4), (40, 40, 8, 7)])
def test_blend_on_gradients_stays_within_one(tmp_path, width, height, tile, overlap):
    y, x = np.mgrid[0:height, 0:width]  # (21, 23, 10, 4): edge tiles narrower than the overlap
    grad = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    src = tmp_path / "g.png"
    Image.fromarray(grad).save(src)
    job = tiles_job(tmp_path, src, {"tile_width": tile, "tile_height": tile, "overlap": overlap},
                    {"mode": "blend", "output_name": "blended.tif"})
    job.run(scheduler="sync")
    got = pixels(tmp_path / "out" / "blended.tif").astype(int)
    assert got.shape == grad.shape
    assert np.abs(got - grad.astype(int)).max() <= 1


def test_a_real_job_on_the_cluster_with_several_images(tmp_path, client):
    folder = tmp_path / "imgs"
    folder.mkdir()
    a, b = random_image("RGBA", 50, 33), random_image("L", 21, 40)
    a.save(folder / "a.png")
    b.save(folder / "b.tif")
    job = bn.Job(source=str(folder) + "/", partitioner="image-tiles", app="identity", assembler="image-mosaic",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"tile_width": 16, "tile_height": 16, "overlap": 4},
                         "assembler": {"output_name": "{stem}.mosaic.png"}})
    result = job.run(client=client)
    assert result.n_chunks == 4 * 3 + 2 * 3
    assert np.array_equal(pixels(tmp_path / "out" / "a.mosaic.png"), np.asarray(a))
    assert np.array_equal(pixels(tmp_path / "out" / "b.mosaic.png"), np.asarray(b))


def test_one_output_name_for_several_images_is_refused(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    random_image("L", 5, 5).save(folder / "a.png")
    random_image("L", 5, 5).save(folder / "b.png")
    job = tiles_job(tmp_path, str(folder) + "/", {"tile_width": 4, "tile_height": 4}, {"output_name": "one.png"})
    with pytest.raises(bn.JobFailed, match="2 source images but one output_name 'one.png'"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


def test_overlap_must_be_less_than_the_tile(tmp_path):
    random_image("L", 5, 5).save(tmp_path / "a.png")
    job = tiles_job(tmp_path, tmp_path / "a.png", {"tile_width": 4, "tile_height": 3, "overlap": 3})
    with pytest.raises(bn.JobFailed, match=r"params.partitioner.overlap: 3 must be less than tile_width"):
        job.run(scheduler="sync")


# -- tiles that are wrong ------------------------------------------------------------------


def tile_results(tmp_path, image: Image.Image, tiling: dict) -> list[ChunkResult]:
    """The chunk results identity would give, made by materialising every tile."""
    src = tmp_path / "src.png"
    image.save(src)
    refs = tiles_job(tmp_path, src, tiling).plan(scheduler="sync")
    results = []
    for ref in refs:
        path = str(tmp_path / f"tile{ref.index}.png")
        size = ImageTiles().materialise(ref, path)
        results.append(ChunkResult(ref.index, (ResultFile("result.bin", size, "file://" + path, path),), ref.info()))
    return results


def test_a_missing_tile_names_its_place(tmp_path):
    results = tile_results(tmp_path, random_image("RGB", 20, 20), {"tile_width": 10, "tile_height": 10})
    del results[2]
    with pytest.raises(ResultFormatError, match=r"src.png: no chunk holds the tile at grid \(row, col\) \(1, 0\)"):
        ImageMosaic().assemble(results, str(tmp_path / "o"), {})


def test_a_mis_sized_tile_or_no_image_names_the_chunk(tmp_path):
    results = tile_results(tmp_path, random_image("RGB", 20, 20), {"tile_width": 10, "tile_height": 10})
    small = tmp_path / "small.png"
    random_image("RGB", 9, 10).save(small)
    results[1] = ChunkResult(1, (ResultFile("r.png", small.stat().st_size, "file://" + str(small), str(small)),),
                             results[1].info)
    with pytest.raises(ResultFormatError, match=r"chunk 1: its tile is 9x10, its box \[10, 0, 20, 10\] is 10x10"):
        ImageMosaic().assemble(results, str(tmp_path / "o"), {})
    text = tmp_path / "t.txt"
    text.write_text("no image")
    results[1] = ChunkResult(1, (ResultFile("t.txt", 8, "file://" + str(text), str(text)),), results[1].info)
    with pytest.raises(ResultFormatError, match=r"chunk 1: no image among its results \(t.txt\)"):
        ImageMosaic().assemble(results, str(tmp_path / "o"), {})


def test_a_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    job = tiles_job(tmp_path, tmp_path / "broken.png", {"tile_width": 4, "tile_height": 4})
    with pytest.raises(bn.JobFailed, match=r"broken.png: not an image Pillow can read"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()
    # a header that reads but pixels that do not: the worker names the file
    buf = io.BytesIO()
    random_image("RGB", 64, 64).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    job = tiles_job(tmp_path, tmp_path / "cut.png", {"tile_width": 32, "tile_height": 32})
    assert len(job.plan(scheduler="sync")) == 4  # planning reads the header only
    with pytest.raises(bn.JobFailed, match=r"cut.png: cannot decode the image"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists()


# -- image-batches -------------------------------------------------------------------------


def image_folder(tmp_path, n: int) -> dict[str, bytes]:
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    made = {}
    for i in range(n):
        name = f"sub/i{i}.png" if i % 3 == 0 else f"i{i}.jpg"
        buf = io.BytesIO()
        save(random_image("RGB", 8 + i, 8), buf, "PNG" if name.endswith("png") else "JPEG")
        made[name] = buf.getvalue()
        (folder / name).write_bytes(made[name])
    (folder / "notes.txt").write_text("not an image")
    return made


def batch_zips(tmp_path, source, params: dict, client=None) -> tuple[list, list[dict[str, bytes]]]:
    job = bn.Job(source=str(source), partitioner="image-batches", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "out"), params={"partitioner": params})
    kwargs = {"client": client} if client else {"scheduler": "sync"}
    refs = job.plan(**kwargs)
    job.run(force=True, **kwargs)
    zips = []
    for ref in refs:
        with zipfile.ZipFile(tmp_path / "out" / chunk_folder(ref.index, len(refs)) / "result.bin") as zf:
            zips.append({n: zf.read(n) for n in zf.namelist()})
    return refs, zips


def test_image_batches_by_count(tmp_path, client):
    made = image_folder(tmp_path, 7)
    refs, zips = batch_zips(tmp_path, str(tmp_path / "imgs") + "/", {"images_per_chunk": 3}, client)
    assert [r.meta["count"] for r in refs] == [3, 3, 1]
    names = sorted(made)
    assert [list(z) for z in zips] == [names[0:3], names[3:6], names[6:7]]
    assert {n: b for z in zips for n, b in z.items()} == made  # the images' own bytes, notes.txt left out
    info = refs[0].info()
    assert info["names"] == names[0:3] and info["count"] == 3 and info["bytes"] == sum(len(made[n]) for n in names[:3])


def test_image_batches_by_bytes_and_pattern(tmp_path):
    made = image_folder(tmp_path, 6)
    limit = max(len(b) for b in made.values()) + 1
    refs, zips = batch_zips(tmp_path, str(tmp_path / "imgs") + "/", {"max_bytes": limit, "pattern": "*.jpg"})
    jpgs = sorted(n for n in made if n.endswith(".jpg"))
    assert [n for z in zips for n in z] == jpgs
    assert all(r.meta["bytes"] <= limit for r in refs)
    assert all(r.meta["bytes"] + len(made[z2[0]]) > limit  # a chunk closes only when the next image does not fit
               for r, z2 in zip(refs, [list(z) for z in zips[1:]]))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_image_batches_from_an_archive(tmp_path, kind):
    made = image_folder(tmp_path, 5)
    archive = tmp_path / f"imgs.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in made.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(archive, "w") as tf:
            for name, data in made.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    refs, zips = batch_zips(tmp_path, archive, {"images_per_chunk": 2})
    assert [r.meta["count"] for r in refs] == [2, 2, 1]
    assert all(r.meta["archive"] == f"imgs.{kind}" for r in refs)
    assert {n: b for z in zips for n, b in z.items()} == made


def test_an_unsafe_archive_member_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "imgs.zip"
    buf = io.BytesIO()
    random_image("L", 4, 4).save(buf, "PNG")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", buf.getvalue())
        zf.writestr("../escape.png", buf.getvalue())
    job = bn.Job(source=str(archive), partitioner="image-batches", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "out"))
    with pytest.raises(bn.JobFailed, match=r"archive imgs.zip: member '../escape.png': its name has '..'"):
        job.run(scheduler="sync")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.png").exists()


# -- image-package --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_image_package_indexes_every_image(tmp_path, kind):
    src = tmp_path / "photo.jpg"
    save(random_image("RGB", 30, 17), src, "JPEG")
    job = tiles_job(tmp_path, src, {"tile_width": 16, "tile_height": 16}, {"archive": kind},
                    app_params={"output_name": "tile.png"}, assembler="image-package")
    job.run(scheduler="sync")
    out = tmp_path / "out"
    expected = [{"chunk": i, "source": "photo.jpg", "result": f"chunk_000{i}/tile.png", "width": w, "height": h}
                for i, (w, h) in enumerate([(16, 16), (14, 16), (16, 1), (14, 1)])]
    rows = json.loads((out / "index.json").read_text())
    assert [{k: v for k, v in r.items() if k != "bytes"} for r in rows] == expected
    if kind == "zip":
        with zipfile.ZipFile(out / "images.zip") as zf:
            inside = {n: zf.read(n) for n in zf.namelist()}
    else:
        with tarfile.open(out / "images.tar") as tf:
            inside = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    assert sorted(inside) == sorted([r["result"] for r in expected] + ["index.csv", "index.json"])
    assert inside["index.json"] == (out / "index.json").read_bytes()
    assert inside["index.csv"] == (out / "index.csv").read_bytes()
    for r in rows:
        assert r["bytes"] == len(inside[r["result"]])
        with Image.open(io.BytesIO(inside[r["result"]])) as im:
            assert im.size == (r["width"], r["height"])
    table = list(csv.DictReader(io.StringIO(inside["index.csv"].decode())))
    assert [(int(t["chunk"]), t["source"], t["result"], int(t["bytes"]), int(t["width"]), int(t["height"]))
            for t in table] == [tuple(r.values()) for r in rows]


def test_image_package_names_a_corrupt_result(tmp_path):
    good = tmp_path / "good.png"
    random_image("L", 3, 2).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    results = [ChunkResult(0, (ResultFile("good.png", good.stat().st_size, "file://" + str(good), str(good)),),
                           {"names": ["a.jpg"]}),
               ChunkResult(1, (ResultFile("bad.png", 7, "file://" + str(bad), str(bad)),), {"names": ["b.jpg"]})]
    from bytenite_nb.assemblers.image_package import ImagePackage

    with pytest.raises(ResultFormatError, match=r"chunk 1: bad.png: not an image Pillow can read"):
        ImagePackage().assemble(results, str(tmp_path / "o"), {})


def test_blend_weights_of_neighbours_add_up_to_one_across_their_band():
    from bytenite_nb.assemblers.image_mosaic import ramp
    from bytenite_nb.partitioners.image_tiles import grid

    (_, _, core_a, box_a), (_, _, core_b, box_b), _ = grid(30, 5, 10, 5, overlap=3)
    a = ramp(box_a[0], box_a[2], core_a[0], core_a[2])
    b = ramp(box_b[0], box_b[2], core_b[0], core_b[2])
    band = range(box_b[0], box_a[2])  # x = 7 .. 12, where both tiles have pixels
    assert list(band) == [7, 8, 9, 10, 11, 12]
    sums = [a[x - box_a[0]] + b[x - box_b[0]] for x in band]
    assert np.allclose(sums, 1.0) and (a > 0).all() and (b > 0).all()
    assert a[0] == 1.0 and b[-1] < 1.0  # the image edge is not feathered; the next neighbour's band is


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "PPM"])
def test_a_worker_decodes_only_the_rows_down_to_its_tile(fmt):
    from bytenite_nb.partitioners.image_tiles import decode_rows

    data = RNG.integers(0, 256, (600, 500, 3), dtype=np.uint8)  # a PNG of many IDAT chunks
    buf = io.BytesIO()
    Image.fromarray(data).save(buf, fmt)
    for bottom in (1, 333, 600):
        buf.seek(0)
        with Image.open(buf) as image:
            got = decode_rows(image, bottom)
            assert got.size == (500, bottom)  # the rows below were never decoded
            assert np.array_equal(np.asarray(got)[:bottom], data[:bottom])


@pytest.mark.parametrize("mode", ["P", "1", "LA"])
def test_palette_bilevel_and_la_images_come_back_exactly(tmp_path, mode):
    if mode == "P":
        image = Image.frombytes("P", (29, 19), RNG.integers(0, 256, (19, 29), dtype=np.uint8).tobytes())
        image.putpalette(RNG.integers(0, 256, 768, dtype=np.uint8).tobytes())
    elif mode == "1":
        image = Image.fromarray(RNG.integers(0, 2, (19, 29)).astype(bool))
    else:
        image = random_image("LA", 29, 19)
    src = tmp_path / "p.png"
    image.save(src)
    job = tiles_job(tmp_path, src, {"tile_width": 8, "tile_height": 7, "overlap": 2})
    job.run(scheduler="sync")
    with Image.open(tmp_path / "out" / "p.png") as got:
        assert got.mode == mode
        assert np.array_equal(np.asarray(got), np.asarray(image))
        if mode == "P":
            assert got.getpalette() == image.getpalette()
    if mode == "P":  # palette indices cannot be averaged
        blend = tiles_job(tmp_path, src, {"tile_width": 8, "tile_height": 7, "overlap": 2}, {"mode": "blend"})
        with pytest.raises(bn.JobFailed, match="mode P cannot be blended"):
            blend.run(scheduler="sync", force=True)
