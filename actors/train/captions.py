"""Training captions from a shard row: trigger word, subject, expression and skin tone.

The template is a `str.format` string over these fields (empty when the row does not say):

| field | from | example |
|---|---|---|
| trigger | the run's trigger word | `indianface` |
| subject | IMFDB gender + age | `a young woman`, `a middle-aged man`, `a girl`, `a person` |
| gender | IMFDB gender | `woman`, `man` |
| age | IMFDB age | `young`, `middle-aged`, `old`, `child` |
| expression | IMFDB expression | `smiling`, `neutral expression` |
| skin | Monk Skin Tone | `brown skin` |
| mst | Monk Skin Tone number | `7` |

Segments that come out empty are dropped with their comma, so the default template gives
"indianface, photo of a young woman, smiling, brown skin" or, for a row without annotations,
"indianface, photo of a person, medium skin".
"""
from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from actors.train.selection import is_missing

DEFAULT_TEMPLATE = "{trigger}, photo of {subject}, {expression}, {skin}"
FIELDS = ("trigger", "subject", "gender", "age", "expression", "skin", "mst")

EXPRESSION_WORDS = {
    "HAPPINESS": "smiling",
    "NEUTRAL": "neutral expression",
    "SADNESS": "sad expression",
    "ANGER": "angry expression",
    "SURPRISE": "surprised expression",
    "FEAR": "fearful expression",
    "DISGUST": "disgusted expression",
}
AGE_WORDS = {"CHILD": "child", "YOUNG": "young", "MIDDLE": "middle-aged", "OLD": "old"}
GENDER_WORDS = {"FEMALE": "woman", "MALE": "man"}
CHILD_WORDS = {"FEMALE": "girl", "MALE": "boy"}
# Monk Skin Tone 1..10 in everyday words (coarse on purpose: captions steer, they do not measure).
SKIN_WORDS = {
    1: "fair skin", 2: "fair skin", 3: "light skin", 4: "light skin", 5: "medium skin",
    6: "brown skin", 7: "brown skin", 8: "dark brown skin", 9: "deep dark skin", 10: "deep dark skin",
}


def check_template(template: str) -> None:
    """Raise ValueError unless `template` uses only known fields and names the trigger word."""
    try:
        names = [name for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"Caption template {template!r} is not a valid format string: {error}.") from None
    for name in names:
        if name not in FIELDS:
            raise ValueError(f"Caption template field {{{name}}} is unknown: use {', '.join(FIELDS)}.")
    if "trigger" not in names:
        raise ValueError("Caption template must contain {trigger} so the LoRA learns its trigger word.")


def caption_fields(row: Mapping[str, Any], trigger: str) -> dict[str, str]:
    """The template fields for one shard row (IMFDB columns and `mst`; missing ones give "")."""
    gender_code = _code(row.get("gender"))
    age_code = _code(row.get("age"))
    mst = _mst(row.get("mst"))
    return {
        "trigger": trigger,
        "subject": _subject(gender_code, age_code),
        "gender": GENDER_WORDS.get(gender_code, ""),
        "age": AGE_WORDS.get(age_code, ""),
        "expression": EXPRESSION_WORDS.get(_code(row.get("expression")), ""),
        "skin": SKIN_WORDS.get(mst, "") if mst else "",
        "mst": str(mst) if mst else "",
    }


def build_caption(row: Mapping[str, Any], trigger: str = "indianface", template: str = DEFAULT_TEMPLATE) -> str:
    """The caption for one row: the template filled in, empty comma segments dropped."""
    check_template(template)
    text = template.format(**caption_fields(row, trigger))
    segments = [" ".join(part.split()) for part in text.split(",")]
    return ", ".join(part for part in segments if part)


def _code(value: Any) -> str:
    if is_missing(value):
        return ""
    return str(value).strip().upper()


def _mst(value: Any) -> int:
    if is_missing(value):
        return 0
    try:
        mst = int(value)
    except (TypeError, ValueError):
        return 0
    return mst if 1 <= mst <= 10 else 0


def _subject(gender: str, age: str) -> str:
    if age == "CHILD":
        return f"a {CHILD_WORDS[gender]}" if gender in CHILD_WORDS else "a child"
    noun = GENDER_WORDS.get(gender, "person")
    adjective = AGE_WORDS.get(age, "")
    if not adjective:
        return f"a {noun}"
    return f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective} {noun}"
