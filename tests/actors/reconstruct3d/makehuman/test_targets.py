"""Shape targets: MakeHuman's pairs as one signed weight, and the macro mixes of the default human."""
import gzip

import numpy as np
import pytest

from actors.reconstruct3d.makehuman.assets import mpfb_dir, read_base_mesh
from actors.reconstruct3d.makehuman.cut import cut_head
from actors.reconstruct3d.makehuman.macro import DEFAULT, Macro, macro_targets
from actors.reconstruct3d.makehuman.targets import SEMANTIC_FAMILIES, read_shape_basis, target_catalogue


def _plain(path, count):
    rows = np.loadtxt(gzip.open(path, "rt")).reshape(-1, 4)
    dense = np.zeros((count, 3))
    np.add.at(dense, rows[:, 0].astype(int), rows[:, 1:])
    return dense


def test_catalogue_pairs_opposites_into_signed_weights():
    targets = target_catalogue(SEMANTIC_FAMILIES)
    names = [t.name for t in targets]
    assert len(names) == len(set(names)) == 151
    assert "head-scale-vert-decr|incr" in names and "l-ear-lobe-decr|incr" in names and "r-ear-lobe-decr|incr" in names
    assert "nose-volume-decr|incr" in names and "head-oval" in names
    files = {name for t in targets for name, _ in t.positive + (t.negative or ())}
    assert len(files) == 290  # every head-related MakeHuman target file, each used once
    with pytest.raises(ValueError, match="unknown target families"):
        target_catalogue(("head", "tail"))


def test_signed_weight_applies_incr_or_decr_exactly():
    base = read_base_mesh()
    cut = cut_head(base)
    targets = [t for t in target_catalogue(("nose",)) if t.name == "nose-volume-decr|incr"]
    basis = read_shape_basis(targets, cut.to_cut)
    root = mpfb_dir() / "targets" / "nose"
    incr = cut.to_cut @ _plain(root / "nose-volume-incr.target.gz", len(base.vertices)) * 0.1
    decr = cut.to_cut @ _plain(root / "nose-volume-decr.target.gz", len(base.vertices)) * 0.1
    np.testing.assert_allclose(basis.offsets(np.array([0.5])), 0.5 * incr, atol=1e-6)
    np.testing.assert_allclose(basis.offsets(np.array([-0.25])), 0.25 * decr, atol=1e-6)
    assert basis.asymmetry[0] > 1.0  # this pair is far from a mirror image: one direction would not do


def test_default_macro_mix_follows_makehuman_rules():
    mix = DEFAULT.mix()
    race_gender_age = {k: v for k, v in mix.items() if not k.split("/")[1].startswith("universal")}
    assert len(race_gender_age) == 6 and np.allclose(list(race_gender_age.values()), 1 / 6)
    universal = {k: v for k, v in mix.items() if k.split("/")[1].startswith("universal")}
    assert sum(universal.values()) == pytest.approx(1.0)
    old = Macro(age=0.75).mix()
    assert old["macrodetails/asian-male-old"] == pytest.approx(1 / 3 * 0.5 * 0.5)
    assert old["macrodetails/asian-male-young"] == pytest.approx(1 / 3 * 0.5 * 0.5)


def test_macro_directions_are_relative_to_the_default_human():
    targets = {t.name: t for t in macro_targets()}
    assert set(targets) == {"macro-gender-female|male", "macro-age-child|old", "macro-african", "macro-asian", "macro-caucasian"}
    male = dict(targets["macro-gender-female|male"].positive)
    assert male["macrodetails/african-male-young"] == pytest.approx(1 / 3 - 1 / 6)
    assert male["macrodetails/african-female-young"] == pytest.approx(-1 / 6)
