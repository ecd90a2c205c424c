"""Prompt templates for the diffusion engine: one preset per style, with the `indianface` trigger word.

Every prompt names the input's skin tone explicitly, from its Monk Skin Tone (MST 1-10), and every negative
prompt pushes against tone drift. Diffusion models tend to lighten darker skin; naming the tone the person
has (e.g. "deep brown skin") and negating "lightened skin, whitewashed" keeps it. The ITA band names are
measurement labels, not prompt words: they are never used to describe (or lighten) a face.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

TRIGGER_WORD = "indianface"

# MST 1..10 -> the phrase the prompt uses for that skin (index 0 is MST 1).
SKIN_TONE_PHRASES = (
    "very fair skin",
    "fair skin",
    "light skin",
    "light wheatish skin",
    "wheatish skin",
    "light brown skin",
    "medium brown skin",
    "brown skin",
    "deep brown skin",
    "very deep brown skin",
)

# Pushes against the usual drift for each tone: lighter skins are guarded against darkening, the rest
# (most Indian faces) against lightening.
_AGAINST_DARKENING = "darkened skin, tanned skin, altered skin tone"
_AGAINST_LIGHTENING = "lightened skin, pale skin, whitewashed, skin whitening, fair skin filter, altered skin tone"

_COMMON_NEGATIVE = "lowres, blurry, deformed face, asymmetric eyes, extra eyes, bad anatomy, watermark, text, logo"

# style -> (prompt template, style-specific negative). `{trigger}` and `{skin}` are filled in.
TEMPLATES: dict[str, tuple[str, str]] = {
    "realistic": (
        "{trigger}, photo portrait of a person, {skin}, natural skin texture, soft studio light, "
        "sharp focus, detailed eyes, high quality",
        "cartoon, anime, painting, plastic skin, airbrushed, overexposed",
    ),
    "cartoon": (
        "{trigger}, cartoon portrait of a person, {skin}, clean bold outlines, flat cel shading, "
        "vibrant colours, 2d illustration",
        "photo, photorealistic, 3d render, noisy, grainy",
    ),
    "anime": (
        "{trigger}, anime style portrait of a person, {skin}, large expressive eyes, clean line art, "
        "cel shading, anime key visual",
        "photo, photorealistic, 3d render, western cartoon, noisy",
    ),
    "sketch": (
        "{trigger}, pencil sketch portrait of a person, {skin} shown in graphite values, fine hatching, "
        "clean lines, white paper",
        "colour, photo, photorealistic, smudged, messy lines",
    ),
}

STYLES = tuple(TEMPLATES)


@dataclass(frozen=True)
class Prompt:
    """A positive and a negative prompt for one face."""

    prompt: str
    negative_prompt: str


def skin_tone_phrase(mst: int) -> str:
    """The prompt words for a Monk Skin Tone 1..10."""
    if not isinstance(mst, numbers.Integral) or isinstance(mst, bool) or not 1 <= mst <= 10:
        raise ValueError(f"`mst` must be an integer Monk Skin Tone in 1..10, got {mst!r}.")
    return SKIN_TONE_PHRASES[int(mst) - 1]


def build_prompt(style: str, mst: int, *, trigger_word: str = TRIGGER_WORD) -> Prompt:
    """The prompt pair for `style` and a face of Monk Skin Tone `mst`."""
    if style not in TEMPLATES:
        raise ValueError(f"Unknown style {style!r} for the diffusion engine: choose from {STYLES}.")
    template, style_negative = TEMPLATES[style]
    skin = skin_tone_phrase(mst)
    tone_negative = _AGAINST_DARKENING if int(mst) <= 2 else _AGAINST_LIGHTENING
    return Prompt(
        prompt=template.format(trigger=trigger_word, skin=skin),
        negative_prompt=f"{tone_negative}, {style_negative}, {_COMMON_NEGATIVE}",
    )


def all_template_text() -> list[str]:
    """Every fixed piece of text the prompts use (for building test vocabularies)."""
    return [
        TRIGGER_WORD,
        *SKIN_TONE_PHRASES,
        _AGAINST_DARKENING,
        _AGAINST_LIGHTENING,
        _COMMON_NEGATIVE,
        *(part for pair in TEMPLATES.values() for part in pair),
    ]
