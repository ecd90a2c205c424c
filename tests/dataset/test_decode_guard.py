"""dataset.decode_guard.ImageDecoder: same pixels as in-process decoding, bounded in time and memory."""
from __future__ import annotations

import io
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

from dataset.decode import decode_image
from dataset.decode_guard import DecodeBudget, ImageDecoder
from dataset.reasons import InputRejected, Reason
from dataset.sources import InputReader
from tests.corpus import (
    bmp_claiming,
    bmp_rle,
    build_corpus,
    corpus_input,
    jpeg_scan_bomb,
    png_chunk_bomb,
    png_chunk_flood,
    tiff_directory_flood,
    tiff_size_tags_twice,
    webp_claiming,
)

TIME_CEILING_S = 5.0
RSS_CEILING = 1_500_000_000


def _save(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo(height=300, width=400) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.dstack([xx * 255 // width, yy * 255 // height, (xx + yy) % 256]).astype(np.uint8)


def _outcome(decode, data: bytes):
    try:
        rgb = decode(data)
        return "ok", rgb.shape, rgb.tobytes()
    except InputRejected as error:
        return "rejected", error.reason, error.detail


@pytest.fixture(scope="module")
def decoder():
    with ImageDecoder() as shared:
        yield shared


def _warm(decoder: ImageDecoder) -> None:
    decoder.decode(_save(_photo(64, 64), "PNG"))


# ---------------------------------------------------------------------------------- same results


@pytest.mark.parametrize("fmt, options", [
    ("JPEG", {"quality": 90}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {"lossless": True}),
    ("BMP", {}), ("TIFF", {"compression": "tiff_lzw"}),
])
def test_pixels_match_in_process_decoding(decoder, fmt, options):
    data = _save(_photo(), fmt, **options)
    guarded = decoder.decode(data)
    assert guarded.dtype == np.uint8 and guarded.flags.writeable
    np.testing.assert_array_equal(guarded, decode_image(data))


def test_float_tiff_through_the_opencv_fallback_matches(decoder):
    data = tiff_size_tags_twice((300, 200), (300, 200))  # one copy of each size: a plain float RGB TIFF
    np.testing.assert_array_equal(decoder.decode(data), decode_image(data))


def test_every_corpus_case_gets_the_same_outcome_as_in_process(decoder, tmp_path, package_photos):
    cases = build_corpus(tmp_path, package_photos)
    different = {}
    with InputReader.for_input(corpus_input(tmp_path)) as reader:
        for case in cases:
            try:
                data = reader.read(case.source)
            except InputRejected:
                continue
            here, there = _outcome(decode_image, data), _outcome(decoder.decode, data)
            if here != there:
                different[case.name] = (here[:2], there[:2])
    assert not different


def test_decode_image_hands_work_to_a_given_decoder(decoder):
    data = _save(_photo(), "PNG")
    pid = decoder.pid
    np.testing.assert_array_equal(decode_image(data, decoder=decoder), decode_image(data))
    assert decoder.pid == pid
    error = pytest.raises(InputRejected, decode_image, data, max_pixels=1000, decoder=decoder).value
    assert error.reason is Reason.TOO_LARGE


def test_limits_may_only_be_lowered_per_call(decoder):
    with pytest.raises(ValueError, match="ceiling"):
        decoder.decode(b"x", max_pixels=decoder.max_pixels + 1)
    with pytest.raises(ValueError):
        ImageDecoder(budget=DecodeBudget(memory_bytes=1 << 20))


# ----------------------------------------------------------------------------------------- bounds


def test_cpu_budget_stops_a_decode_and_the_next_one_gets_a_fresh_child():
    slow = bmp_rle(2000, 2000, rle4=True, ops=b"\x01\x11\x00\x00" * 2000 + b"\x00\x01")  # ~0.5 s of CPU
    with ImageDecoder(budget=DecodeBudget(cpu_base_s=0.05, cpu_per_megapixel_s=0.0)) as tight:
        _warm(tight)
        first = tight.pid
        started = time.perf_counter()
        error = pytest.raises(InputRejected, tight.decode, slow).value
        assert error.reason is Reason.DECODE_LIMIT and "CPU" in error.detail
        assert time.perf_counter() - started < 2.0
        assert tight.restarts == 1 and tight.pid != first
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)  # the old child is gone, not left running
        _warm(tight)  # the replacement works


def test_wall_clock_limit_stops_a_child_that_makes_no_progress():
    with ImageDecoder(budget=DecodeBudget(cpu_base_s=2.0, wall_factor=1.0, wall_slack_s=0.0)) as decoder:
        _warm(decoder)
        os.kill(decoder.pid, signal.SIGSTOP)  # a stalled child uses no CPU: only the wall clock can tell
        started = time.perf_counter()
        error = pytest.raises(InputRejected, decoder.decode, _save(_photo(), "PNG")).value
        assert error.reason is Reason.DECODE_LIMIT and "wall-clock" in error.detail
        assert 2.0 <= time.perf_counter() - started < 2.0 + 2.0


def test_memory_limit_fails_the_allocation_not_the_worker():
    big = _save(np.zeros((3000, 4000, 3), np.uint8), "PNG")  # 36 MB of pixels, Pillow needs 48 MB more
    with ImageDecoder(budget=DecodeBudget(memory_bytes=64 << 20)) as small:
        error = pytest.raises(InputRejected, small.decode, big).value
        assert error.reason is Reason.DECODE_LIMIT and "memory" in error.detail
        assert small.restarts == 0  # the child survived its failed allocation
        np.testing.assert_array_equal(small.decode(_save(_photo(), "PNG")), _photo())


def test_a_child_that_dies_mid_decode_costs_one_file():
    slow = bmp_rle(2000, 2000, rle4=True, ops=b"\x01\x11\x00\x00" * 2000 + b"\x00\x01")
    with ImageDecoder() as decoder:
        _warm(decoder)
        victim = decoder.pid
        threading.Timer(0.2, os.kill, (victim, signal.SIGSEGV)).start()
        error = pytest.raises(InputRejected, decoder.decode, slow).value
        assert error.reason is Reason.UNREADABLE and "died" in error.detail
        assert decoder.pid != victim
        assert decoder.decode(_save(_photo(), "PNG")).shape == (300, 400, 3)


def test_a_child_killed_between_calls_costs_no_file():
    """Killed while idle (or while still importing): the request goes to a replacement, not to a rejection."""
    data = _save(_photo(), "PNG")
    with ImageDecoder() as decoder:
        _warm(decoder)
        for attempt in range(12):
            os.kill(decoder.pid, signal.SIGKILL)
            if attempt % 3 == 1:
                time.sleep(0.05)  # dead and reaped, or dying: both must work
            np.testing.assert_array_equal(decoder.decode(data), _photo())
        assert decoder.restarts == 12


def _worst_cases(astronaut: np.ndarray) -> dict[str, dict[str, bytes]]:
    """Per format: the costliest file the checks accept (about 8 MP, a budget of 2.1 s of CPU) and bombs."""
    side = 2800
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    rgb = _photo(64, 64)
    return {
        "JPEG": {"99_scans_8mp": jpeg_scan_bomb(astronaut, repeats=89, side=side),
                 "scan_bomb": jpeg_scan_bomb(astronaut, repeats=100_000)},
        "PNG": {"rgba_8mp": _save(rgba, "PNG", compress_level=9), "iccp_bomb": png_chunk_bomb(rgb, b"iCCP"),
                "chunk_flood": png_chunk_flood(rgb, 200_000)},
        "WEBP": {"lossless_8mp": _save(np.full((side, side, 3), 90, np.uint8), "WEBP", lossless=True),
                 "canvas_claim": webp_claiming(_save(rgb, "WEBP"), 16000, 16000)},
        "TIFF": {"float_rgb_8mp": tiff_size_tags_twice((side, side), (side, side)),
                 "size_tags_twice": tiff_size_tags_twice((7000, 7000), (100, 100)), "directory_flood": tiff_directory_flood()},
        "BMP": {"rle4_4mp_per_pixel": bmp_rle(2000, 2000, rle4=True, ops=b"\x01\x11\x00\x00" * 2000 + b"\x00\x01"),
                "header_claim": bmp_claiming(30_000, 30_000)},
    }


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_each_formats_worst_case_is_bounded_in_time_and_memory(fmt, package_photos):
    """Wall time per file (from the call to its answer) and the child's peak RSS (VmHWM from /proc)."""
    cases = _worst_cases(package_photos["astronaut"])[fmt]
    measured = {}
    with ImageDecoder() as decoder:
        _warm(decoder)
        for name, data in cases.items():
            started = time.perf_counter()
            try:
                outcome = decoder.decode(data).shape
            except InputRejected as error:
                outcome = error.reason.value
            measured[name] = (round(time.perf_counter() - started, 2), decoder.child_peak_rss_bytes(), outcome)
    for name, (seconds, peak, outcome) in measured.items():
        assert seconds <= TIME_CEILING_S, (name, seconds, outcome)
        assert peak is not None and peak <= RSS_CEILING, (name, peak, outcome)
    assert any(outcome != "decode_limit" and not isinstance(outcome, str) for _, _, outcome in measured.values())


@pytest.mark.slow
def test_largest_allowed_float_tiff_stays_under_the_memory_ceiling():
    """36 MP of float32 RGB from a 20 KB file: the costliest image the policy admits (~1 GB before banding)."""
    data = tiff_size_tags_twice((6000, 6000), (6000, 6000))
    with ImageDecoder() as decoder:
        _warm(decoder)
        rgb = decoder.decode(data)
        peak = decoder.child_peak_rss_bytes()
    assert rgb.shape == (6000, 6000, 3) and peak <= RSS_CEILING


# ------------------------------------------------------------------------------------- lifecycle


def test_decoder_pickles_without_its_child(decoder):
    _warm(decoder)
    clone = pickle.loads(pickle.dumps(decoder))
    try:
        assert clone.pid is None and clone.max_pixels == decoder.max_pixels and clone.budget == decoder.budget
        np.testing.assert_array_equal(clone.decode(_save(_photo(), "PNG")), _photo())
        assert clone.pid != decoder.pid
    finally:
        clone.close()


def test_close_stops_the_child():
    decoder = ImageDecoder()
    _warm(decoder)
    pid = decoder.pid
    decoder.close()
    assert decoder.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_calls_from_two_threads_are_serialised(decoder):
    data = _save(_photo(), "PNG")
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(decoder.decode(data))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4 and all(np.array_equal(r, _photo()) for r in results)
