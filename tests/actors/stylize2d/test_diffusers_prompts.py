"""Style prompt presets of the diffusion engine: trigger word, explicit skin tone, anti-lightening negatives."""
from __future__ import annotations

import re

import pytest

from actors.stylize2d import prompts


@pytest.mark.parametrize("style", prompts.STYLES)
@pytest.mark.parametrize("mst", range(1, 11))
def test_prompt_names_trigger_word_and_the_inputs_skin_tone(style, mst):
    pair = prompts.build_prompt(style, mst)
    assert pair.prompt.startswith(f"{prompts.TRIGGER_WORD},")
    assert prompts.skin_tone_phrase(mst) in pair.prompt
    # no other tone phrase sneaks in (e.g. "fair skin" inside a dark-skin prompt)
    others = [p for p in prompts.SKIN_TONE_PHRASES if p != prompts.skin_tone_phrase(mst) and p not in prompts.skin_tone_phrase(mst)]
    assert not any(re.search(rf"\b{re.escape(p)}\b", pair.prompt) for p in others)


@pytest.mark.parametrize("style", prompts.STYLES)
@pytest.mark.parametrize("mst", range(3, 11))
def test_darker_tones_are_guarded_against_lightening(style, mst):
    pair = prompts.build_prompt(style, mst)
    for item in ("lightened skin", "pale skin", "whitewashed"):
        assert item in pair.negative_prompt
    assert not re.search(r"\b(fair|pale|pale skin|whitening|lighter|lightened)\b", pair.prompt)


def test_lightest_tones_are_guarded_against_darkening():
    assert "darkened skin" in prompts.build_prompt("realistic", 1).negative_prompt
    assert "lightened skin" not in prompts.build_prompt("realistic", 1).negative_prompt


def test_deep_brown_example():
    assert "deep brown skin" in prompts.build_prompt("cartoon", 9).prompt


def test_tone_phrases_are_distinct_per_mst():
    assert len(set(prompts.SKIN_TONE_PHRASES)) == 10


def test_the_diffusers_engine_draws_every_offline_style():
    from actors.stylize2d.offline import OfflineStylizer

    assert set(OfflineStylizer.styles) <= set(prompts.STYLES)


def test_custom_trigger_word():
    assert prompts.build_prompt("anime", 5, trigger_word="mylora").prompt.startswith("mylora,")


@pytest.mark.parametrize("mst", [0, 11, 5.5, True, "5"])
def test_invalid_mst(mst):
    with pytest.raises(ValueError, match="`mst` must be an integer Monk Skin Tone in 1..10"):
        prompts.build_prompt("anime", mst)


def test_unknown_style():
    with pytest.raises(ValueError, match="Unknown style 'oil'"):
        prompts.build_prompt("oil", 5)
