"""The restricted unpickler: FLAME's contents load, anything that could run code is refused."""
from __future__ import annotations

import functools
import os
import pickle
import subprocess

import numpy as np
import pytest
import scipy.sparse

from actors.reconstruct3d.flame import synthetic
from actors.reconstruct3d.flame.assets import load_flame_model
from actors.reconstruct3d.flame.safe_pickle import FlameFileError, UnsafePickleError, restricted_loads


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _CallsEval:
    def __reduce__(self):
        return eval, ("__import__('os').getpid()",)


class _Popen:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


class _Partial:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return functools.partial(os.system, f"touch {self.marker}"), ()


def _model_dict_with(payload, flame_model) -> dict:
    """A FLAME-looking dict with one poisoned entry next to genuine arrays."""
    return {"v_template": flame_model.v_template, "f": flame_model.f, "payload": payload}


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_os_system_pickle_is_refused_and_nothing_runs(tmp_path, flame_model, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(_model_dict_with(_RunsShell(f"touch {marker}"), flame_model), protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"refused global (posix|os|nt)\.system"):
        load_flame_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload, refused", [
    (_CallsEval(), "builtins.eval"),
    (_Popen("/nonexistent/never"), "subprocess.Popen"),
    (_Partial("/nonexistent/never"), "functools.partial"),
])
def test_other_code_running_globals_are_refused(tmp_path, flame_model, payload, refused):
    data = pickle.dumps(_model_dict_with(payload, flame_model), protocol=2)
    with pytest.raises(UnsafePickleError, match=refused.replace(".", r"\.")):
        restricted_loads(data)


def test_popen_marker_not_created(tmp_path, flame_model):
    marker = tmp_path / "popen-ran"
    with pytest.raises(UnsafePickleError):
        restricted_loads(pickle.dumps(_model_dict_with(_Popen(marker), flame_model), protocol=2))
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("numpy", "load"), ("numpy.lib.npyio", "load"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("__builtin__", "eval"), ("scipy.sparse._csc", "save_npz"), ("posix", "system"), ("torch", "load"),
])
def test_handcrafted_globals_outside_the_allow_list_are_refused(module, name):
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."  # GLOBAL, EMPTY_TUPLE, REDUCE, STOP
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}".replace(".", r"\.")):
        restricted_loads(data)


def test_codecs_encode_only_for_latin1():
    data = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R."
    with pytest.raises(UnsafePickleError, match="encoding"):
        restricted_loads(data)


def test_reconstructor_refuses_real_classes():
    # copy_reg._reconstructor(collections.OrderedDict, object, None): a real class, not a stand-in.
    data = b"ccopy_reg\n_reconstructor\n(ccollections\nOrderedDict\nc__builtin__\nobject\nNtR."
    with pytest.raises(UnsafePickleError):
        restricted_loads(data)


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("sparse_module", ["scipy.sparse.csc", "scipy.sparse._csc"])
def test_flame_contents_load_as_numpy(flame_model, protocol, sparse_module):
    content = restricted_loads(synthetic.flame_pickle_bytes(flame_model, protocol=protocol, sparse_module=sparse_module))
    assert isinstance(content["shapedirs"], np.ndarray)  # chumpy Ch → its 'x'
    np.testing.assert_array_equal(content["shapedirs"], flame_model.shapedirs)
    np.testing.assert_array_equal(content["v_template"], flame_model.v_template)
    np.testing.assert_allclose(content["J_regressor"], flame_model.J_regressor)  # sparse → dense
    np.testing.assert_allclose(content["J"], flame_model.J_regressor @ flame_model.v_template)  # Reshape(Ch)
    assert content["J"].shape == (5, 3)
    assert content["bs_style"] == "lbs"


def test_chumpy_reordering_ops_are_evaluated_with_numpy(flame_model):
    base = np.arange(24.0).reshape(2, 3, 4)
    ch = synthetic.ChumpyCh(synthetic.chumpy_state(x=base))

    class Transpose(synthetic.Pickled):
        pass

    class Select(synthetic.Pickled):
        pass

    class Concatenate(synthetic.Pickled):
        pass

    content = {
        "t": Transpose({"a": ch, "axes": (2, 0, 1)}),
        "s": Select({"a": ch, "idxs": np.array([5, 1, 7]), "preferred_shape": (3, 1)}),
        "c": Concatenate({"m0": ch, "m1": ch, "axis": 1, "dterms": ["m0", "m1"]}),
    }
    aliases = {synthetic.ChumpyCh: ("chumpy.ch", "Ch"), Transpose: ("chumpy.reordering", "transpose"),
               Select: ("chumpy.reordering", "Select"), Concatenate: ("chumpy.reordering", "Concatenate")}
    loaded = restricted_loads(_alias_dump(content, aliases))
    np.testing.assert_array_equal(loaded["t"], np.transpose(base, (2, 0, 1)))
    np.testing.assert_array_equal(loaded["s"], base.ravel()[[5, 1, 7]].reshape(3, 1))
    np.testing.assert_array_equal(loaded["c"], np.concatenate([base, base], axis=1))


def test_unknown_chumpy_op_is_a_clear_error():
    class Multiply(synthetic.Pickled):
        pass

    ch = synthetic.ChumpyCh(synthetic.chumpy_state(x=np.ones(3)))
    data = _alias_dump({"w": Multiply({"a": ch, "b": ch})},
                       {synthetic.ChumpyCh: ("chumpy.ch", "Ch"), Multiply: ("chumpy.ch_ops", "multiply")})
    with pytest.raises(FlameFileError, match="chumpy.ch_ops.multiply"):
        restricted_loads(data)


def test_malformed_sparse_matrix_is_a_clear_error(flame_model):
    matrix = scipy.sparse.csc_matrix(np.eye(3))
    matrix.indices = matrix.indices + 10  # rows beyond the shape
    data = _alias_dump({"J_regressor": matrix}, {type(matrix): ("scipy.sparse.csc", "csc_matrix")})
    with pytest.raises(FlameFileError, match="sparse matrix"):
        restricted_loads(data)


def _alias_dump(content, aliases, protocol=2) -> bytes:
    import io

    buffer = io.BytesIO()
    synthetic.AliasPickler(buffer, protocol, aliases).dump(content)
    return buffer.getvalue()
