"""Caption builder: IMFDB columns and Monk Skin Tone into trigger-word captions."""
from __future__ import annotations

import math

import pytest

from actors.train.captions import DEFAULT_TEMPLATE, build_caption, caption_fields, check_template


def test_full_row_gives_subject_expression_and_skin():
    row = {"gender": "FEMALE", "age": "YOUNG", "expression": "HAPPINESS", "mst": 7}
    assert build_caption(row) == "indianface, photo of a young woman, smiling, brown skin"


def test_missing_columns_drop_their_segment():
    assert build_caption({"mst": None}) == "indianface, photo of a person"
    assert build_caption({"gender": "MALE", "mst": 9}) == "indianface, photo of a man, deep dark skin"
    # pandas hands missing strings over as None and missing numbers as NaN
    assert build_caption({"gender": None, "age": float("nan"), "expression": None, "mst": math.nan}) == (
        "indianface, photo of a person"
    )


@pytest.mark.parametrize(
    ("gender", "age", "subject"),
    [("MALE", "MIDDLE", "a middle-aged man"), ("FEMALE", "OLD", "an old woman"), ("FEMALE", "CHILD", "a girl"),
     (None, "CHILD", "a child"), ("male", "young", "a young man"), (None, "YOUNG", "a young person")],
)
def test_subject_from_gender_and_age(gender, age, subject):
    assert caption_fields({"gender": gender, "age": age}, "indianface")["subject"] == subject


def test_custom_template_and_trigger():
    row = {"gender": "MALE", "age": "OLD", "expression": "NEUTRAL", "mst": 5}
    caption = build_caption(row, trigger="desiface", template="{trigger} {gender}, {age}, MST {mst}, {expression}")
    assert caption == "desiface man, old, MST 5, neutral expression"


def test_out_of_range_mst_gives_no_skin_words():
    assert caption_fields({"mst": 11}, "t")["skin"] == ""
    assert caption_fields({"mst": 0}, "t")["mst"] == ""


def test_template_errors_are_precise():
    with pytest.raises(ValueError, match="must contain {trigger}"):
        check_template("photo of {subject}")
    with pytest.raises(ValueError, match=r"field \{name\} is unknown"):
        check_template("{trigger}, {name}")
    with pytest.raises(ValueError, match="not a valid format string"):
        check_template("{trigger}, {subject")
    check_template(DEFAULT_TEMPLATE)
