"""The shared bad-input corpus (tests/corpus.py) against the reading and decoding stage."""
from __future__ import annotations

import os
import stat
from collections import Counter

import pytest

from dataset.decode import content_id, decode_image
from dataset.reasons import InputRejected
from dataset.sources import InputReader, list_inputs, printable_source, split_source
from tests.corpus import CorpusCase, build_corpus, corpus_input


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, package_photos):
    dest = tmp_path_factory.mktemp("corpus")
    return dest, build_corpus(dest, package_photos)


def _outcome(reader: InputReader, case: CorpusCase) -> tuple[str, str, str]:
    """(status, reason, detail) of reading and decoding one case."""
    try:
        decode_image(reader.read(case.source))
        return "ok", "", ""
    except InputRejected as error:
        return "rejected", error.reason.value, error.detail


def test_corpus_covers_the_required_kinds(corpus):
    _, cases = corpus
    names = {c.name for c in cases}
    required = {
        "zero_bytes", "truncated_jpeg", "text_named_jpg", "html_named_png", "svg", "gif_animation", "heic",
        "tiff_16bit_rgb", "tiff_float", "cmyk_jpeg", "exif_garbage", "exif_bomb", "png_header_100k", "one_pixel",
        "unicode_name", "long_name", "duplicate_a", "duplicate_b", "noise", "tiny_face", "five_faces", "two_faces",
        "face_cut_by_frame", "cartoon", "extreme_profile", "zip_dotdot_member", "zip_member_claims_1gb", "tar_symlink",
        "exif_rotated", "greyscale", "alpha_png", "palette_png", "webp", "bmp", "scaled_down", "wrong_extension",
    }
    issue_13 = {  # the input-side kinds of issue 13 (items 1-5, 18, 20)
        "tiff_size_tags_twice", "jpeg_scan_bomb", "png_iccp_bomb", "png_ztxt_bomb", "list_entry_nul_byte",
        "not_utf8_name", "escape_lookalike_name", "bang_name_text_beside_zip", "bang_name_real_jpeg",
        "list_entry_proc_self_environ", "secrets_in_a_jpg", "tgz_member_stored_first", "photo_in_shards_folder",
    }
    assert required <= names and issue_13 <= names
    assert len(names) == len(cases) >= 75
    assert len({c.name for c in cases if c.stage == "decode"}) >= 40


def test_the_list_file_yields_exactly_the_case_sources(corpus):
    dest, cases = corpus
    listed = list_inputs(corpus_input(dest))
    assert sorted(listed) == sorted(c.source for c in cases)
    assert len(listed) == len(set(listed))
    for case in cases:  # `path` is the source relative to the corpus folder (/proc/self/environ lies outside it)
        joined = os.path.join(str(dest), case.path)
        assert case.source == (joined if case.path[:2] != ".." else os.path.normpath(joined))


def test_decode_stage_cases_get_their_exact_reason(corpus):
    dest, cases = corpus
    with InputReader.for_input(corpus_input(dest)) as reader:
        wrong = {}
        for case in cases:
            status, reason, _ = _outcome(reader, case)
            if case.stage == "decode" and not case.accepts(status, reason):
                wrong[case.name] = reason or "ok"
            if case.stage != "decode" and status != "ok":
                wrong[case.name] = reason
    assert not wrong


def test_details_never_quote_file_contents(corpus):
    dest, cases = corpus
    secrets = [case for case in cases if case.secret]
    assert len(secrets) >= 3
    with InputReader.for_input(corpus_input(dest)) as reader:
        for case in cases:
            _, _, detail = _outcome(reader, case)
            assert not case.secret or case.secret not in detail, case.name
            assert printable_source(detail) == detail.replace("\\", "\\\\"), f"{case.name}: detail is not one printable line"


def test_every_source_keeps_its_own_row(corpus):
    """Printable forms (what results store) stay distinct: no two inputs share a row."""
    _, cases = corpus
    printable = [printable_source(case.source) for case in cases]
    assert len(set(printable)) == len(printable)
    names = {case.name: case for case in cases}
    assert os.path.basename(names["not_utf8_name"].source).encode("utf-8", "surrogateescape") == b"x\xff.jpg"
    assert printable_source(names["not_utf8_name"].source) != printable_source(names["escape_lookalike_name"].source)
    assert split_source(names["bang_name_text_beside_zip"].source)[1] is None  # a file, not a member


def test_duplicates_share_an_id_and_every_other_good_input_is_distinct(corpus):
    dest, cases = corpus
    ids = {}
    with InputReader() as reader:
        for case in cases:
            if case.stage != "decode":
                ids[case.name] = content_id(reader.read(case.source))
    assert ids["duplicate_a"] == ids["duplicate_b"]
    assert Counter(ids.values()).most_common(2)[1][1] <= 2


def test_corpus_is_deterministic(tmp_path, package_photos, corpus):
    dest, cases = corpus
    again = build_corpus(tmp_path, package_photos)
    first = {c.name: c for c in cases}
    assert set(first) == {c.name for c in again}
    for case in again:
        if split_source(case.source)[1] is not None or not case.source.startswith(str(tmp_path)):
            continue  # archive bytes include timestamps (members are compared by the decode test); /proc is not ours
        if not os.path.lexists(case.source) or not stat.S_ISREG(os.lstat(case.source).st_mode):
            continue  # missing entries, the FIFO
        original = first[case.name].source
        assert open(case.source, "rb").read() == open(original, "rb").read(), case.name
    assert os.path.basename(first["long_name"].source).__len__() >= 200


def test_accepts_encodes_the_outcome_rules():
    case = CorpusCase("c", "s", "face", None, frozenset({"", "no_face"}), min_faces=2)
    assert case.accepts("ok", "", num_faces=2) and case.accepts("rejected", "no_face")
    assert not case.accepts("ok", "", num_faces=1)
    assert not case.accepts("rejected", "too_small")
    assert not case.accepts("ok", "no_face")  # an ok row carries no reason
    exact = CorpusCase("d", "s", "decode", "rejected", frozenset({"truncated"}))
    assert exact.accepts("rejected", "truncated") and not exact.accepts("failed", "truncated")


@pytest.mark.slow
def test_face_stage_expectations_hold_for_the_aligner(corpus):
    """The honest outcome sets of the face-stage cases, checked against the real MediaPipe aligner."""
    from actors.align.aligner import FaceAligner

    dest, cases = corpus
    wrong = {}
    with InputReader() as reader, FaceAligner() as aligner:
        for case in cases:
            if case.stage == "decode":
                continue
            rgb = decode_image(reader.read(case.source))
            try:
                face = aligner.align(rgb)
                outcome = ("ok", "", face.num_faces)
            except InputRejected as error:
                outcome = ("rejected", error.reason.value, 0)
            if not case.accepts(*outcome):
                wrong[case.name] = outcome
    assert not wrong
