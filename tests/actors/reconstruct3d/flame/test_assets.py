"""Loading FLAME's model and texture files: FLAME's layout in, numpy out, a precise error for each bad file."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from actors.reconstruct3d.flame import synthetic
from actors.reconstruct3d.flame.assets import load_flame_model, load_flame_texture
from actors.reconstruct3d.flame.safe_pickle import FlameFileError


def test_model_loads_in_flame_layout(flame_files, flame_model):
    assets = load_flame_model(flame_files["model"])
    assert assets.num_shape == 300 and assets.num_expression == 100
    np.testing.assert_allclose(assets.shapedirs, flame_model.shapedirs[:, :, :300], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(assets.exprdirs, flame_model.shapedirs[:, :, 300:], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(assets.J_regressor, flame_model.J_regressor, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(assets.parents, [-1, 0, 1, 1, 1])  # root stored as 2**32 - 1
    np.testing.assert_array_equal(assets.faces, flame_model.f.astype(np.int64))
    assert assets.v_template.dtype == np.float32 and assets.faces.dtype == np.int64
    assert assets.posedirs.shape == (len(flame_model.v_template), 3, 36)


def test_num_shape_splits_the_components(flame_files):
    assets = load_flame_model(flame_files["model"], num_shape=350)
    assert (assets.num_shape, assets.num_expression) == (350, 50)


def _write(path, content, protocol=2):
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


def _flame_dict(model) -> dict:
    return {"v_template": model.v_template, "shapedirs": model.shapedirs, "posedirs": model.posedirs,
            "J_regressor": model.J_regressor, "kintree_table": model.kintree_table, "weights": model.weights,
            "f": model.f}


def test_plain_numpy_pickle_loads(tmp_path, flame_model):
    assets = load_flame_model(_write(tmp_path / "flame2023.pkl", _flame_dict(flame_model)))
    assert assets.num_vertices == len(flame_model.v_template)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="FLAME model not found"):
        load_flame_model(tmp_path / "nope.pkl")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(FlameFileError, match="not a file"):
        load_flame_model(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(FlameFileError, match="empty"):
        load_flame_model(tmp_path / "empty.pkl")


def test_truncated_pickle(tmp_path, flame_files):
    data = flame_files["model"].read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(FlameFileError, match="truncated or corrupt"):
        load_flame_model(tmp_path / "cut.pkl")


def test_npz_given_as_model(flame_files):
    with pytest.raises(FlameFileError, match="zip/npz archive"):
        load_flame_model(flame_files["embedding"])


def test_npy_given_as_model(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(FlameFileError, match=r"\.npy array"):
        load_flame_model(tmp_path / "array.npy")


def test_text_file_given_as_model(tmp_path):
    (tmp_path / "readme.pkl").write_text("this is not a pickle\n")
    with pytest.raises(FlameFileError, match="not a readable FLAME pickle"):
        load_flame_model(tmp_path / "readme.pkl")


def test_not_a_dict(tmp_path):
    with pytest.raises(FlameFileError, match="holds a list"):
        load_flame_model(_write(tmp_path / "list.pkl", [np.zeros(3)]))


def test_missing_keys_are_named(tmp_path, flame_model):
    content = _flame_dict(flame_model)
    del content["posedirs"], content["weights"]
    with pytest.raises(FlameFileError, match=r"lacks FLAME keys \['posedirs', 'weights'\]"):
        load_flame_model(_write(tmp_path / "partial.pkl", content))


@pytest.mark.parametrize("key, make_value, message", [
    ("v_template", lambda v: np.zeros((10, 2)), "v_template must be"),
    ("shapedirs", lambda v: np.zeros((5, 3, 400)), "shapedirs must be"),
    ("shapedirs", lambda v: np.zeros((v, 3, 300)), "identity components"),
    ("posedirs", lambda v: np.zeros((v, 3, 27)), "posedirs must be"),
    ("weights", lambda v: np.zeros((v, 4)), "weights must be"),
    ("J_regressor", lambda v: np.zeros((5,)), "'J_regressor' must have 2 dimensions"),
    ("kintree_table", lambda v: np.array([[2**32 - 1, 0, 1, 1], [0, 1, 2, 3]], np.uint32), "kintree_table must be"),
    ("kintree_table", lambda v: np.array([[2**32 - 1, 0, 3, 1, 1], [0, 1, 2, 3, 4]], np.uint32), "parents must come before"),
    ("f", lambda v: np.array([[0, 1, 10**7]], dtype=np.uint32), "outside"),
    ("f", lambda v: np.array(["a", "b", "c"]), "must be numeric"),
    ("v_template", lambda v: "not an array", "must be numeric"),
])
def test_wrong_shapes_and_values_are_named(tmp_path, flame_model, key, make_value, message):
    content = _flame_dict(flame_model)
    content[key] = make_value(len(flame_model.v_template))
    with pytest.raises(FlameFileError, match=message):
        load_flame_model(_write(tmp_path / "bad.pkl", content))


def test_nan_in_model(tmp_path, flame_model):
    content = _flame_dict(flame_model)
    content["v_template"] = content["v_template"].copy()
    content["v_template"][0, 0] = np.nan
    with pytest.raises(FlameFileError, match="NaN"):
        load_flame_model(_write(tmp_path / "nan.pkl", content))


def test_texture_layout_loads(flame_files, flame_assets):
    vt, ft = load_flame_texture(flame_files["texture"], num_faces=len(flame_assets.faces))
    assert vt.shape == (ft.size, 2) and ft.shape == flame_assets.faces.shape
    assert flame_assets.with_texture(vt, ft).uv_faces is ft


def test_texture_with_other_face_count(flame_files):
    with pytest.raises(FlameFileError, match="ft has"):
        load_flame_texture(flame_files["texture"], num_faces=7)


def test_texture_missing_key(tmp_path):
    np.savez(tmp_path / "tex.npz", vt=np.zeros((3, 2)))
    with pytest.raises(FlameFileError, match=r"lacks \['ft'\]"):
        load_flame_texture(tmp_path / "tex.npz")


def test_texture_with_pickled_member_is_refused(tmp_path):
    np.savez(tmp_path / "tex.npz", vt=np.array([object()], dtype=object), ft=np.zeros((1, 3), int))
    with pytest.raises(FlameFileError, match="unreadable"):
        load_flame_texture(tmp_path / "tex.npz")


def test_texture_given_a_pickle(flame_files):
    with pytest.raises(FlameFileError, match="not a readable .npz"):
        load_flame_texture(flame_files["model"])


def test_synthetic_model_is_head_sized(flame_model):
    size = flame_model.size
    assert 0.25 < size < 0.4  # bounding-box diagonal, metres
    first, second = (synthetic.build_synthetic_flame(num_rings=12, num_segments=16) for _ in range(2))
    np.testing.assert_array_equal(first.shapedirs, second.shapedirs)  # deterministic
