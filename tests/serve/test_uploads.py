import pytest

from serve.uploads import UploadRejected, inspect_upload, sniff_media_type
from tests.serve.conftest import encode
from tests.serve.images import jpeg_with_header_size, png_with_header_size

LIMITS = dict(max_bytes=20 * 1024 * 1024, max_pixels=40_000_000)


@pytest.mark.parametrize("fmt, media", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_type_and_size_come_from_the_bytes(package_photos, fmt, media):
    photo = package_photos["astronaut"]
    info = inspect_upload(encode(photo, fmt), **LIMITS)
    assert info.media_type == media
    assert (info.height, info.width) == photo.shape[:2]


@pytest.mark.parametrize(
    "data",
    [b"hello, this is text", b"GIF89a" + b"\0" * 32, b"%PDF-1.7\n", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"RIFF\0\0\0\0WAVEfmt "],
)
def test_non_images_are_415(data):
    assert sniff_media_type(data) is None
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(data, **LIMITS)
    assert (rejected.value.status_code, rejected.value.code) == (415, "not_an_image")


def test_oversize_is_413_before_anything_else():
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(b"\xff\xd8\xff" + b"\0" * 2048, max_bytes=1024, max_pixels=10**6)
    assert (rejected.value.status_code, rejected.value.code) == (413, "too_large")


def test_empty_upload_is_422():
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(b"", **LIMITS)
    assert (rejected.value.status_code, rejected.value.code) == (422, "unreadable")


@pytest.mark.parametrize("width, height", [(8000, 8000), (100_000, 100_000)])  # over our limit; over Pillow's own
def test_png_bomb_header_is_refused_without_decoding(width, height):
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(png_with_header_size(width, height), **LIMITS)
    assert (rejected.value.status_code, rejected.value.code) == (422, "too_large")


def test_jpeg_bomb_header_is_refused(package_photos):
    bomb = jpeg_with_header_size(encode(package_photos["astronaut"]), 60_000, 60_000)
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(bomb, **LIMITS)
    assert (rejected.value.status_code, rejected.value.code) == (422, "too_large")
    assert str(60_000 * 60_000) in rejected.value.detail


def test_header_within_limit_passes():
    info = inspect_upload(png_with_header_size(6000, 6000), **LIMITS)  # 36 MP, under 40 MP
    assert (info.width, info.height) == (6000, 6000)


def test_broken_header_is_422():
    with pytest.raises(UploadRejected) as rejected:
        inspect_upload(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, **LIMITS)
    assert (rejected.value.status_code, rejected.value.code) == (422, "unreadable")
