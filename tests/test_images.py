"""ganedit.io (formerly ganedit.images): what photographers rely on when their files go in and out.

Orientation, EXIF (date, camera, GPS), ICC, alpha, gray and 16-bit survive; broken files fail alone and
by name; writes are atomic; discovery is predictable; masks are thresholded as documented.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path, PurePath

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

from ganedit.errors import ImageError, UsageError
from ganedit.io import (
    MAX_PIXELS,
    Picture,
    discover,
    encode_picture,
    output_format,
    png,
    read_mask,
    read_picture,
    tiff,
    write_atomic,
)
from ganedit.io import exif as exif_io
from imagefactory import (
    CAMERA,
    QUADRANT_COLOURS,
    exif_bytes,
    icc_profile,
    noise,
    png16_bytes,
    quadrants,
    read_exif,
    tiff16_bytes,
    write_empty,
    write_files,
    write_image,
    write_jpeg,
    write_not_an_image,
    write_png,
    write_tiff16,
    write_truncated,
)

FORMATS = ["jpeg", "png", "webp", "tiff"]


def close_to(actual: np.ndarray, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(actual.astype(int) - np.array(expected)) <= tolerance))


# ---- orientation ---------------------------------------------------------------------------------------


def test_jpeg_orientation_6_is_applied_and_reset(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "portrait.jpg", size=(64, 48), orientation=6)  # stored landscape
    picture = read_picture(path)
    assert picture.pixels.shape == (64, 48, 3)  # upright: portrait
    # 90 degrees clockwise: the stored top-left (red) is now top-right, bottom-left (blue) top-left.
    assert close_to(picture.pixels[2, -3], QUADRANT_COLOURS["top_left"])
    assert close_to(picture.pixels[2, 2], QUADRANT_COLOURS["bottom_left"])
    assert close_to(picture.pixels[-3, -3], QUADRANT_COLOURS["top_right"])
    out = read_exif(encode_picture(picture, "jpeg"))
    assert out["orientation"] == 1
    assert out["make"] == CAMERA["make"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    pixels = noise(7, 5, 3)  # lossless PNG: exact comparison
    path = write_png(tmp_path / "o.png", pixels, exif=exif_bytes(orientation=orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.pixels, expected)
    exif = Image.Exif()
    exif.load(picture.exif)
    assert exif.get(0x0112) == 1


def test_dpi_is_swapped_with_a_quarter_turn(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "d.jpg", orientation=8, dpi=(300, 150))
    assert read_picture(path).dpi == (150.0, 300.0)


# ---- EXIF and ICC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_exif_and_icc_survive_into_every_format(tmp_path: Path, fmt: str) -> None:
    picture = read_picture(write_jpeg(tmp_path / "camera.jpg", orientation=3))
    data = encode_picture(picture, fmt)
    found = read_exif(data)
    assert found["date_original"] == CAMERA["date"]
    assert found["make"] == CAMERA["make"]
    assert found["model"] == CAMERA["model"]
    assert found["latitude"] == CAMERA["latitude"]
    assert found["orientation"] in (1, None)
    assert found["icc_profile"] == icc_profile()
    again = read_picture(data, name="<again>")  # and the output reads back with the same metadata
    assert again.icc_profile == icc_profile()
    assert again.pixels.shape == picture.pixels.shape


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_exif_and_icc_survive_16_bit_outputs(fmt: str) -> None:
    picture = Picture(
        noise(9, 6, 3, np.uint16), "png", exif=exif_bytes(), icc_profile=icc_profile(), dpi=(240.0, 240.0)
    )
    data = encode_picture(picture, fmt)
    found = read_exif(data)
    assert (found["make"], found["date_original"], found["latitude"]) == (
        CAMERA["make"],
        CAMERA["date"],
        CAMERA["latitude"],
    )
    again = read_picture(data)
    assert again.icc_profile == icc_profile()
    assert again.dpi == (240.0, 240.0)
    np.testing.assert_array_equal(again.pixels, picture.pixels)


def test_exif_is_patched_in_place_keeping_the_maker_note(tmp_path: Path) -> None:
    original = exif_bytes(orientation=6, maker_note=b"CANON\x00" + bytes(range(200)))
    picture = read_picture(write_jpeg(tmp_path / "m.jpg", exif=original))
    assert picture.exif is not None
    assert len(picture.exif) == len(original)  # not rebuilt: offsets inside MakerNotes stay valid
    assert picture.exif.startswith(b"Exif\x00\x00")
    assert read_exif(encode_picture(picture, "jpeg"))["maker_note"] == b"CANON\x00" + bytes(range(200))


def test_exif_thumbnail_link_is_cut() -> None:
    exif = bytearray(exif_bytes(orientation=6))
    body = exif[6:]
    ifd0 = struct.unpack_from(">I", body, 4)[0]  # Pillow writes big-endian ("MM")
    count = struct.unpack_from(">H", body, ifd0)[0]
    struct.pack_into(">I", body, ifd0 + 2 + 12 * count, 8)  # pretend an IFD1 follows
    orientation, patched = exif_io.reset_orientation(bytes(exif[:6] + body))
    assert orientation == 6
    assert patched is not None
    out = patched[6:]
    assert struct.unpack_from(">I", out, ifd0 + 2 + 12 * count)[0] == 0


def test_png_exif_after_image_data_and_stdin_bytes_are_read() -> None:
    data = png16_bytes(noise(4, 3, 1, np.uint16), exif=exif_bytes(orientation=8), icc=icc_profile())
    picture = read_picture(data, name="<stdin>")
    assert picture.pixels.shape == (4, 3, 1)
    assert picture.icc_profile == icc_profile()
    assert picture.exif is not None and read_exif(encode_picture(picture, "png"))["make"] == CAMERA["make"]


def test_tiff_source_exif_keeps_only_descriptive_tags(tmp_path: Path) -> None:
    path = write_image(
        tmp_path / "s.tif", quadrants(16, 12), exif=exif_bytes(orientation=6), icc_profile=icc_profile()
    )
    picture = read_picture(path)
    assert picture.pixels.shape == (16, 12, 3)
    exif = Image.Exif()
    exif.load(picture.exif)
    assert 256 not in exif and 273 not in exif  # no ImageWidth / StripOffsets of the source file
    assert exif.get(0x010F) == CAMERA["make"]
    assert read_exif(encode_picture(picture, "jpeg"))["latitude"] == CAMERA["latitude"]


def test_oversized_exif_is_compacted_for_jpeg() -> None:
    big = exif_bytes(maker_note=b"\x01" * 70_000)
    data = encode_picture(Picture(quadrants(8, 8), "png", exif=big), "jpeg")
    found = read_exif(data)
    assert found["make"] == CAMERA["make"] and found["maker_note"] is None


# ---- alpha, gray, modes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "quality"), [("png", 95), ("tiff", 95), ("webp", 100)])
def test_rgba_round_trips_exactly_in_lossless_formats(tmp_path: Path, fmt: str, quality: int) -> None:
    pixels = noise(20, 10, 4)
    picture = read_picture(write_png(tmp_path / "a.png", pixels))
    np.testing.assert_array_equal(picture.pixels, pixels)
    assert picture.has_alpha and picture.channels == 4
    again = read_picture(encode_picture(picture, fmt, quality=quality))
    np.testing.assert_array_equal(again.pixels, pixels)


def test_lossy_webp_keeps_alpha_exactly_enough() -> None:
    pixels = quadrants(32, 16, 4)
    again = read_picture(encode_picture(Picture(pixels, "png"), "webp", quality=90))
    assert again.channels == 4
    assert np.abs(again.pixels[:, :, 3].astype(int) - pixels[:, :, 3]).max() <= 2


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "tiff"])
def test_gray_stays_one_channel(tmp_path: Path, fmt: str) -> None:
    pixels = quadrants(16, 8, 1)
    picture = read_picture(write_png(tmp_path / "g.png", pixels))
    assert picture.channels == 1 and picture.pixels.dtype == np.uint8
    again = read_picture(encode_picture(picture, fmt))
    assert again.channels == (3 if fmt == "webp" else 1)  # WebP has no gray: it comes back RGB


def test_gray_alpha_png_keeps_two_channels(tmp_path: Path) -> None:
    pixels = noise(6, 5, 2)
    picture = read_picture(write_png(tmp_path / "la.png", pixels))
    np.testing.assert_array_equal(picture.pixels, pixels)
    np.testing.assert_array_equal(read_picture(encode_picture(picture, "tiff")).pixels, pixels)


def test_palette_with_transparency_becomes_rgba_and_without_rgb(tmp_path: Path) -> None:
    rgb = Image.fromarray(quadrants(8, 8)).convert("P")
    rgb.save(tmp_path / "p.png")
    rgb.save(tmp_path / "pt.png", transparency=rgb.getpixel((0, 0)))  # the top-left colour
    assert read_picture(tmp_path / "p.png").channels == 3
    transparent = read_picture(tmp_path / "pt.png")
    assert transparent.channels == 4
    assert transparent.pixels[0, 0, 3] == 0 and transparent.pixels[-1, -1, 3] == 255


def test_one_bit_becomes_gray(tmp_path: Path) -> None:
    Image.fromarray(quadrants(8, 8, 1)[:, :, 0]).convert("1").save(tmp_path / "b.png")
    picture = read_picture(tmp_path / "b.png")
    assert picture.channels == 1 and set(np.unique(picture.pixels)) <= {0, 255}


def test_cmyk_jpeg_becomes_rgb_without_a_cmyk_profile(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    picture = read_picture(tmp_path / "c.jpg")
    assert picture.channels == 3 and picture.icc_profile is None
    assert close_to(picture.pixels[4, 4], (255, 0, 0), tolerance=20)


def test_cmyk_with_an_unusable_profile_falls_back_and_drops_it(tmp_path: Path) -> None:
    # littlecms cannot build a CMYK profile here; an RGB profile on CMYK data cannot convert it, and the
    # profile must not end up attached to the RGB result.
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "c.jpg", icc_profile=icc_profile())
    picture = read_picture(tmp_path / "c.jpg")
    assert picture.channels == 3
    assert picture.icc_profile is None
    assert close_to(picture.pixels[0, 0], (255, 255, 255), tolerance=20)


def test_32_bit_integer_in_range_becomes_16_bit_gray_and_float_is_scaled_or_refused(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 1000], [65535, 7]], dtype=np.int32)).save(tmp_path / "i.tif")
    picture = read_picture(tmp_path / "i.tif")
    assert picture.pixels.dtype == np.uint16
    assert picture.pixels[:, :, 0].tolist() == [[0, 1000], [65535, 7]]

    Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(ImageError, match=r"wide\.tif: 32-bit integer"):
        read_picture(tmp_path / "wide.tif")

    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert read_picture(tmp_path / "f.tif").pixels[0, :, 0].tolist() == [0, 32768, 65535]

    Image.fromarray(np.array([[0.0, 4.0]], dtype=np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(ImageError, match=r"hdr\.tif: 32-bit float"):
        read_picture(tmp_path / "hdr.tif")


def test_bmp_reads_and_keep_gives_png(tmp_path: Path) -> None:
    picture = read_picture(write_image(tmp_path / "old.bmp", quadrants(8, 6)))
    assert picture.format == "bmp"
    assert output_format(picture.format, "keep") == ("png", ".png")


# ---- 16-bit ------------------------------------------------------------------------------------------


def test_16_bit_gray_png_via_pillow(tmp_path: Path) -> None:
    pixels = noise(11, 7, 1, np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(pixels[:, :, 0]).save(path)  # Pillow writes I;16 itself
    picture = read_picture(path)
    assert picture.pixels.dtype == np.uint16 and picture.bit_depth == 16
    np.testing.assert_array_equal(picture.pixels, pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_stays_16_bit_through_png_and_tiff(tmp_path: Path, channels: int) -> None:
    pixels = noise(13, 9, channels, np.uint16, seed=channels)
    picture = read_picture(write_png(tmp_path / "p16.png", pixels))
    assert picture.pixels.dtype == np.uint16
    np.testing.assert_array_equal(picture.pixels, pixels)
    for fmt in ("png", "tiff"):
        again = read_picture(encode_picture(picture, fmt))
        assert again.pixels.dtype == np.uint16
        np.testing.assert_array_equal(again.pixels, pixels)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_interlaced_png(channels: int) -> None:
    pixels = noise(13, 11, channels, np.uint16, seed=channels)
    np.testing.assert_array_equal(read_picture(png16_bytes(pixels, interlace=True)).pixels, pixels)


def test_16_bit_png_torchvision_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Pillow without the raw modes used to keep both bytes falls back to torchvision's decoder.
    monkeypatch.setitem(png._PNG16_RAWMODES, 2, ("RGB", ("RGB;no-such-mode",)))
    pixels = noise(6, 5, 3, np.uint16)
    with pytest.warns(DeprecationWarning) if _torchvision_warns() else _nothing():
        np.testing.assert_array_equal(read_picture(png16_bytes(pixels)).pixels, pixels)


def _umask() -> int:
    mask = os.umask(0o022)  # only a test may read it this way: setting it races with other threads
    os.umask(mask)
    return mask


def _torchvision_warns() -> bool:
    import torchvision

    return tuple(int(p) for p in torchvision.__version__.split(".")[:2]) >= (0, 29)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_16_bit_png_writer_handles_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_PNG_BLOCK_BYTES", 100)  # a few rows per block: exercises the seams
    pixels = noise(17, 23, 3, np.uint16, seed=5)
    data = encode_picture(Picture(pixels, "png"), "png")
    np.testing.assert_array_equal(read_picture(data).pixels, pixels)


def test_16_bit_to_8_bit_formats_round(tmp_path: Path) -> None:
    pixels = np.full((8, 8, 3), 257 * 200 + 100, dtype=np.uint16)
    again = read_picture(encode_picture(Picture(pixels, "png"), "webp", quality=100))
    assert again.pixels.dtype == np.uint8 and (again.pixels == 200).all()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "deflate", "predictor": 2},
        {"compression": "lzw"},
        {"tile": 16},
        {"tile": 16, "compression": "deflate", "predictor": 2},
        {"byteorder": ">"},
    ],
    ids=["none", "deflate-predictor", "lzw", "tiled", "tiled-deflate-predictor", "big-endian"],
)
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_colour_tiff_is_decoded_exactly(
    tmp_path: Path, options: dict[str, object], channels: int
) -> None:
    pixels = noise(37, 21, channels, np.uint16, seed=channels)
    picture = read_picture(write_tiff16(tmp_path / "t.tif", pixels, **options))
    assert picture.format == "tiff" and picture.pixels.dtype == np.uint16
    np.testing.assert_array_equal(picture.pixels, pixels)


def test_16_bit_tiff_orientation_and_icc(tmp_path: Path) -> None:
    pixels = noise(6, 4, 3, np.uint16)
    picture = read_picture(tiff16_bytes(pixels, compression="deflate", orientation=6, icc=icc_profile()))
    np.testing.assert_array_equal(picture.pixels, np.rot90(pixels, k=-1))
    assert picture.icc_profile == icc_profile()
    assert picture.exif is None  # nothing descriptive in that file: no orientation left to mislead viewers


def test_8_bit_tiff_orientation_applied_once(tmp_path: Path) -> None:
    # Pillow >= 11 transposes TIFFs itself while loading; the result must still be rotated exactly once.
    pixels = noise(6, 4, 3)
    path = write_image(tmp_path / "o.tif", pixels, exif=exif_bytes(orientation=6))
    np.testing.assert_array_equal(read_picture(path).pixels, np.rot90(pixels, k=-1))


def test_exif_orientation_stored_as_long_is_applied() -> None:
    body = bytearray(exif_bytes(orientation=3)[6:])
    ifd0 = struct.unpack_from(">I", body, 4)[0]
    for i in range(struct.unpack_from(">H", body, ifd0)[0]):
        entry = ifd0 + 2 + 12 * i
        if struct.unpack_from(">H", body, entry)[0] == 0x0112:
            struct.pack_into(">HHII", body, entry, 0x0112, 4, 1, 3)  # LONG instead of SHORT
    pixels = noise(5, 4, 3)
    picture = read_picture(png16_bytes(pixels.astype(np.uint16) * 257, exif=bytes(body)))
    np.testing.assert_array_equal(picture.pixels, pixels[::-1, ::-1].astype(np.uint16) * 257)
    exif = Image.Exif()
    exif.load(picture.exif)
    assert exif.get(0x0112) == 1


def test_16_bit_tiff_alpha_kinds(tmp_path: Path) -> None:
    pixels = noise(5, 4, 4, np.uint16)
    unspecified = read_picture(tiff16_bytes(pixels, extra_sample=0))
    np.testing.assert_array_equal(unspecified.pixels, pixels[:, :, :3])  # not alpha: dropped
    premultiplied = pixels.copy()
    premultiplied[:, :, 3] = 32768
    premultiplied[:, :, :3] //= 2
    straight = read_picture(tiff16_bytes(premultiplied, extra_sample=1)).pixels
    assert (
        np.abs(straight[:, :, :3].astype(int) - (premultiplied[:, :, :3].astype(int) * 65535 // 32768)).max()
        <= 1
    )


def test_16_bit_tiff_writer_handles_many_strips_and_16_bit_jpeg_gets_8_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tiff, "_TIFF_STRIP_BYTES", 64)
    pixels = noise(19, 11, 3, np.uint16, seed=9)
    np.testing.assert_array_equal(
        read_picture(encode_picture(Picture(pixels, "tiff"), "tiff")).pixels, pixels
    )
    jpeg = read_picture(encode_picture(Picture(pixels, "tiff"), "jpeg"))
    assert jpeg.pixels.dtype == np.uint8


@pytest.mark.parametrize(
    ("options", "message"),
    [({"planar": 2}, "separate colour planes"), ({"compression": "none", "predictor": 3}, "predictor 3")],
)
def test_unsupported_16_bit_tiff_is_refused_not_truncated(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    path = write_tiff16(tmp_path / "odd.tif", noise(4, 4, 3, np.uint16), **options)
    with pytest.raises(ImageError, match=rf"odd\.tif: .*{message}.*16-bit PNG"):
        read_picture(path)


# ---- failures ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"gone\.jpg: no such file"):
        read_picture(tmp_path / "gone.jpg")


def test_zero_bytes(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_picture(write_empty(tmp_path / "empty.jpg"))


def test_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        read_picture(write_not_an_image(tmp_path / "notes.jpg"))


def test_a_folder_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageError, match=r"dir\.jpg: is a folder"):
        read_picture(tmp_path / "dir.jpg")


def test_other_image_formats_are_named(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "anim.gif")
    with pytest.raises(ImageError, match=r"anim\.gif: GIF images are not supported"):
        read_picture(tmp_path / "anim.gif")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP", "WEBP"])
def test_truncated_files_fail_at_read_time(tmp_path: Path, fmt: str) -> None:
    path = write_truncated(tmp_path / f"cut.{fmt.lower()}", fmt)
    with pytest.raises(ImageError, match=rf"cut\.{fmt.lower()}: "):
        read_picture(path)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_truncated_16_bit_png_and_tiff(tmp_path: Path) -> None:
    data = png16_bytes(noise(40, 30, 3, np.uint16))
    with pytest.raises(ImageError, match=r"<stdin>: corrupt or truncated"):
        read_picture(data[: len(data) // 2], name="<stdin>")
    tiff = bytearray(tiff16_bytes(noise(40, 30, 3, np.uint16), compression="deflate"))
    directory = struct.unpack_from("<I", tiff, 4)[0]  # the factory writes the IFD after the strips
    tiff[40:directory] = b"\xff" * (directory - 40)  # damaged strips
    with pytest.raises(ImageError, match=r"t\.tif: corrupt or truncated TIFF data"):
        read_picture(bytes(tiff), name="t.tif")
    with pytest.raises(ImageError, match=r"t\.tif: corrupt or truncated TIFF data"):
        read_picture(bytes(tiff[: directory - 10]), name="t.tif")  # cut before its directory


def test_decompression_bomb_guard(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "huge.jpg", size=(40, 30))
    with pytest.raises(ImageError, match=r"huge\.jpg: 40x30 is 1,200 pixels, over the limit of 1,000"):
        read_picture(path, max_pixels=1000)
    with pytest.raises(ImageError, match=r"huge16\.tif: .*over the limit"):
        read_picture(write_tiff16(tmp_path / "huge16.tif", noise(40, 30, 3, np.uint16)), max_pixels=1000)
    assert read_picture(path, max_pixels=1200).width == 40


def test_pillow_limit_is_raised_not_lowered() -> None:
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= 4 * MAX_PIXELS


def test_bytes_use_the_given_name() -> None:
    with pytest.raises(ImageError, match=r"^<stdin>: not an image"):
        read_picture(b"hello", name="<stdin>")
    with pytest.raises(ImageError, match=r"^<stdin>: empty file"):
        read_picture(b"", name="<stdin>")


# ---- encoding ----------------------------------------------------------------------------------------


def test_jpeg_defaults_quality_95_444_baseline() -> None:
    data = encode_picture(Picture(noise(32, 32, 3), "png"), "jpeg")
    with Image.open(io.BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
        assert not im.info.get("progressive") and not im.info.get("progression")
    low = encode_picture(Picture(noise(32, 32, 3), "png"), "jpg", quality=80)
    with Image.open(io.BytesIO(low)) as im:
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0 below quality 90
    assert len(low) < len(data)


def test_jpeg_refuses_real_transparency_but_drops_opaque_alpha() -> None:
    transparent = Picture(quadrants(8, 8, 4), "png")
    with pytest.raises(ImageError, match=r"^shot\.png: JPEG cannot store transparency; use --format png"):
        encode_picture(transparent, "jpeg", name="shot.png")
    opaque = quadrants(8, 8, 4)
    opaque[:, :, 3] = 255
    assert read_picture(encode_picture(Picture(opaque, "png"), "jpeg")).channels == 3


def test_webp_lossless_at_100_and_size_limit() -> None:
    pixels = noise(16, 16, 3)
    np.testing.assert_array_equal(
        read_picture(encode_picture(Picture(pixels, "png"), "webp", quality=100)).pixels, pixels
    )
    wide = Picture(np.zeros((1, 16384, 3), np.uint8), "png")
    with pytest.raises(ImageError, match="too large for WebP"):
        encode_picture(wide, "webp")


def test_encode_rejects_unknown_format_and_quality() -> None:
    picture = Picture(quadrants(4, 4), "png")
    with pytest.raises(UsageError, match="unknown output format 'gif'"):
        encode_picture(picture, "gif")
    with pytest.raises(UsageError, match="quality"):
        encode_picture(picture, "jpeg", quality=0)


def test_picture_properties_and_validation() -> None:
    picture = Picture(np.zeros((3, 5), np.uint16), "png")
    assert (picture.height, picture.width, picture.channels, picture.has_alpha, picture.bit_depth) == (
        3,
        5,
        1,
        False,
        16,
    )
    with pytest.raises(TypeError):
        Picture(np.zeros((3, 5, 3), np.float32), "png")
    with pytest.raises(ValueError):
        Picture(np.zeros((3, 5, 5), np.uint8), "png")


@pytest.mark.parametrize(
    ("source", "requested", "expected"),
    [
        ("jpeg", "keep", ("jpeg", ".jpg")),
        ("tiff", "keep", ("tiff", ".tif")),
        ("webp", "keep", ("webp", ".webp")),
        ("bmp", "keep", ("png", ".png")),
        ("png", "jpg", ("jpeg", ".jpg")),
        ("jpeg", "tiff", ("tiff", ".tif")),
        ("jpeg", "PNG", ("png", ".png")),
    ],
)
def test_output_format(source: str, requested: str, expected: tuple[str, str]) -> None:
    assert output_format(source, requested) == expected


def test_output_format_rejects_unknown() -> None:
    with pytest.raises(UsageError, match="keep, png, jpg, webp, tiff"):
        output_format("jpeg", "gif")


# ---- atomic writes -----------------------------------------------------------------------------------


def test_write_atomic_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.jpg"
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["out.jpg"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()  # like open(), not mkstemp's 0600


def test_write_atomic_interrupted_leaves_nothing_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    monkeypatch.undo()

    fresh = tmp_path / "fresh.png"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_atomic(fresh, b"x")
    assert not fresh.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_atomic_os_error_is_an_image_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ImageError, match=r"out\.jpg: cannot write"):
        write_atomic(tmp_path / "file" / "out.jpg", b"x")


def test_temp_name_is_hidden_beside_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: object, dst: object) -> None:
        seen.append(str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(tmp_path / "photo.jpg", b"x")
    name = Path(seen[0]).name
    assert Path(seen[0]).parent == tmp_path
    assert name.startswith(".photo.jpg.") and name.endswith(".tmp")


# ---- discovery ---------------------------------------------------------------------------------------


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    root = tmp_path / "shoot"
    write_files(
        root,
        [
            "b.jpg",
            "A.PNG",
            "c.TIFF",
            "d.webp",
            "e.bmp",
            "f.jpeg",
            "g.tif",
            "notes.txt",
            ".hidden.jpg",
            "._b.jpg",
            ".cache/x.jpg",
            "day2/h.jpg",
            "day2/deeper/i.jpg",
            "day3/j.JPG",
        ],
    )
    return root


def test_discover_folder_sorted_with_notes(shoot: Path) -> None:
    found = discover([shoot], recursive=False)
    assert [f.rel.as_posix() for f in found.files] == [
        "A.PNG",
        "b.jpg",
        "c.TIFF",
        "d.webp",
        "e.bmp",
        "f.jpeg",
        "g.tif",
    ]
    assert all(f.path == shoot / f.rel for f in found.files)
    assert "skipped 2 hidden files" in found.notes
    assert "skipped notes.txt: not an image" in found.notes
    assert "2 subfolders not searched (use -r)" in found.notes
    assert not any("hidden folder" in note for note in found.notes)


def test_discover_recursive(shoot: Path) -> None:
    found = discover([shoot], recursive=True)
    rels = [f.rel.as_posix() for f in found.files]
    assert rels == sorted(rels)
    assert {"day2/h.jpg", "day2/deeper/i.jpg", "day3/j.JPG"} <= set(rels)
    assert not any(".cache" in r or r.startswith(".") for r in rels)
    assert "skipped 1 hidden folder" in found.notes
    assert not any("not searched" in note for note in found.notes)


def test_discover_dedupes_and_keeps_file_inputs(shoot: Path) -> None:
    found = discover([shoot / "b.jpg", shoot, shoot / "b.jpg", shoot / ".hidden.jpg"], recursive=False)
    rels = [f.rel for f in found.files]
    assert rels.count(PurePath("b.jpg")) == 1
    assert PurePath(".hidden.jpg") in rels  # named explicitly: the user asked for it
    assert "2 files given more than once, used once" in found.notes


def test_discover_is_deterministic(shoot: Path) -> None:
    assert discover([shoot], recursive=True) == discover([shoot], recursive=True)


def test_discover_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope: no such file or folder"):
        discover([tmp_path / "nope"], recursive=False)


def test_discover_summarises_many_non_images(tmp_path: Path) -> None:
    write_files(tmp_path, [f"IMG_{i}.CR2" for i in range(7)] + ["IMG_0.xmp", "IMG_0.jpg"])
    found = discover([tmp_path], recursive=False)
    assert [f.rel.name for f in found.files] == ["IMG_0.jpg"]
    assert "skipped 8 files that are not images (7 .cr2, 1 .xmp)" in found.notes


def test_discover_does_not_follow_symlinked_folders(tmp_path: Path) -> None:
    write_files(tmp_path / "real", ["a.jpg"])
    (tmp_path / "top").mkdir()
    try:
        (tmp_path / "top" / "loop").symlink_to(tmp_path / "top", target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not available")
    write_files(tmp_path / "top", ["b.jpg"])
    found = discover([tmp_path / "top"], recursive=True)
    assert [f.rel.as_posix() for f in found.files] == ["b.jpg"]
    assert "skipped 1 symlinked folder (not followed)" in found.notes


# ---- masks -------------------------------------------------------------------------------------------


def test_mask_threshold_at_half_white_is_fill(tmp_path: Path) -> None:
    values = np.array([[0, 127, 128, 255]], dtype=np.uint8)[:, :, None]
    mask, warning = read_mask(write_png(tmp_path / "m.png", values), (4, 1))
    assert warning is None
    assert mask.dtype == bool and mask.tolist() == [[False, False, True, True]]


def test_mask_colour_uses_luminance_and_alpha_composites_over_black(tmp_path: Path) -> None:
    rgba = np.zeros((1, 100, 4), np.uint8)
    rgba[..., 3] = 255  # opaque black, but for a few pixels: a black-and-white mask with colour marks
    rgba[0, :4] = [[255, 255, 255, 255], [255, 255, 255, 0], [0, 0, 255, 255], [255, 255, 0, 255]]
    mask, _ = read_mask(write_png(tmp_path / "m.png", rgba), (100, 1))
    assert mask[0, :4].tolist() == [True, False, False, True]  # blue is dark (luma 29), yellow bright (226)
    assert not mask[0, 4:].any()


def test_mask_resized_nearest_with_warning(tmp_path: Path) -> None:
    small = np.zeros((2, 3, 1), np.uint8)
    small[0, 2] = 255  # top-right white
    mask, warning = read_mask(write_png(tmp_path / "small.png", small), (6, 4))
    assert mask.shape == (4, 6)
    assert mask[:2, 4:].all() and not mask[:2, :4].any() and not mask[2:].any()
    assert warning is not None and "small.png" in warning and "3x2" in warning and "6x4" in warning


def test_mask_honours_its_own_orientation(tmp_path: Path) -> None:
    stored = np.zeros((2, 4, 1), np.uint8)
    stored[0, 0] = 255  # stored top-left; orientation 6 (90 deg clockwise) puts it top-right
    path = write_png(tmp_path / "m.png", stored, exif=exif_bytes(orientation=6))
    mask, warning = read_mask(path, (2, 4))
    assert warning is None
    assert mask.shape == (4, 2) and mask[0, 1] and mask.sum() == 1


def test_mask_16_bit(tmp_path: Path) -> None:
    values = np.array([[0, 32767, 32768, 65535]], dtype=np.uint16)[:, :, None]
    mask, _ = read_mask(write_png(tmp_path / "m16.png", values), (4, 1))
    assert mask.tolist() == [[False, False, True, True]]


def test_mask_failure_names_the_mask(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"mask\.png: empty file"):
        read_mask(write_empty(tmp_path / "mask.png"), (4, 4))
