"""The shared bad-input corpus (tests/corpus.py) against the reading and decoding stage."""
from __future__ import annotations

import os
from collections import Counter

import pytest

from dataset.decode import content_id, decode_image
from dataset.reasons import InputRejected
from dataset.sources import InputReader, list_inputs
from tests.corpus import CorpusCase, build_corpus, corpus_input


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, package_photos):
    dest = tmp_path_factory.mktemp("corpus")
    return dest, build_corpus(dest, package_photos)


def _outcome(reader: InputReader, case: CorpusCase) -> tuple[str, str, bytes | None]:
    try:
        data = reader.read(case.source)
        decode_image(data)
        return "ok", "", data
    except InputRejected as error:
        return "rejected", error.reason.value, None


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
    assert required <= names
    assert len(names) == len(cases)
    assert len({c.name for c in cases if c.stage == "decode"}) >= 20


def test_the_list_file_yields_exactly_the_case_sources(corpus):
    dest, cases = corpus
    listed = list_inputs(corpus_input(dest))
    assert sorted(listed) == sorted(c.source for c in cases)
    assert len(listed) == len(set(listed))
    for case in cases:  # `path` is the source relative to the corpus folder
        assert case.source == os.path.join(str(dest), case.path)


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
    for case in again:
        if "!" in case.source:
            continue  # archive bytes include timestamps; their members are compared by the decode test
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
