"""The engine's options: defaults valid, one precise error per rule, a help text on every field."""
import dataclasses

import pytest

from actors.reconstruct3d.makehuman import MakeHumanHeadEngine, MakeHumanOptions


def test_defaults_are_valid_and_every_field_has_help():
    MakeHumanOptions().check_inputs()
    for field in dataclasses.fields(MakeHumanOptions):
        assert field.metadata.get("help"), field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        MakeHumanOptions().iterations = 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"families": ()}, "families"),
        ({"families": ("head", "tail")}, "families"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 2.5}, "iterations"),
        ({"prior_spread": 0.0}, "prior_spread"),
        ({"landmark_noise_mm": -1.0}, "landmark_noise_mm"),
        ({"depth_weight": 1.2}, "depth_weight"),
        ({"robust_scale": 0.0}, "robust_scale"),
        ({"expression_spread": 0.0}, "expression_spread"),
        ({"residual_radius_mm": 0.0}, "residual_radius_mm"),
        ({"residual_stiffness": -1.0}, "residual_stiffness"),
        ({"residual_depth_keep": 2.0}, "residual_depth_keep"),
    ],
)
def test_each_rule_has_its_error(change, message):
    options = dataclasses.replace(MakeHumanOptions(), **change)
    with pytest.raises(ValueError, match=message):
        options.check_inputs()
    with pytest.raises(ValueError, match=message):
        MakeHumanHeadEngine(options)
