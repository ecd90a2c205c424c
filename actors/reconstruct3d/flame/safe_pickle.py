"""A restricted unpickler for FLAME's model pickles (never plain `pickle.load`).

FLAME ships as a Python pickle: `generic_model.pkl` (FLAME 2020, written by Python 2; read with
`encoding="latin1"`) and `flame2023*.pkl`. They hold numpy arrays, one scipy sparse matrix
(`J_regressor`) and chumpy objects. A pickle can name any importable callable, so this unpickler
resolves only an allow-list of globals:

- numpy array reconstruction: `numpy.core.multiarray._reconstruct` / `scalar`, `numpy.ndarray`,
  `numpy.dtype`, `numpy.core.numeric._frombuffer` and their `numpy._core.*` spellings (numpy 2);
- `_codecs.encode` restricted to latin-1 (how Python 3 protocol-2 pickles store bytes);
- `builtins.set` / `frozenset` / `object` and `copyreg._reconstructor` restricted to the stand-ins
  below (Python 2 pickles of new-style objects at protocols 0 and 1);
- scipy sparse matrices (`scipy.sparse.csc.csc_matrix`, `scipy.sparse._csc.csc_matrix`, csr alike):
  replaced by inert stand-ins that only record their state, rebuilt afterwards with
  `scipy.sparse.csc_matrix((data, indices, indptr), shape)` and densified;
- chumpy classes (`chumpy.ch.Ch`, `chumpy.reordering.*`, `chumpy.ch_ops.*`): inert stand-ins that
  only record their state; chumpy is never imported. A `Ch` holds its value in `state["x"]`; the
  reordering ops that wrap one (`Reshape`, `transpose`, `Select`, `Concatenate`) are evaluated with
  numpy afterwards; any other chumpy op raises `FlameFileError`.

Everything else (`os.system`, `builtins.eval`, `subprocess.*`, `posix.*`, `functools.partial`, ...)
raises `UnsafePickleError` naming the refused global, before anything is called.
"""
from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
from typing import Any

import numpy as np

MAX_CHUMPY_DEPTH = 32


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it could run code)."""


class FlameFileError(ValueError):
    """A FLAME-related file is missing, unreadable or not in the expected format."""


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}
_SPARSE_MODULES = {
    "scipy.sparse.csc",
    "scipy.sparse._csc",
    "scipy.sparse.csr",
    "scipy.sparse._csr",
    "scipy.sparse.compressed",
    "scipy.sparse._compressed",
}
_SPARSE_CLASSES = {"csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr"}
_BUILTINS = {"set": set, "frozenset": frozenset, "object": object}
_CHUMPY_MODULES = {"chumpy.ch", "chumpy.reordering", "chumpy.ch_ops", "chumpy.utils", "chumpy.linalg"}


def _numpy_global(kind: str, name: str) -> Any:
    if kind == "numpy":
        return getattr(np, name)
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{kind}"), name)
        except (ImportError, AttributeError):
            continue
    raise UnsafePickleError(f"numpy global {kind}.{name} is not available in this numpy.")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` limited to what pickles use it for: bytes stored as latin-1 text."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}.")
    return text.encode("latin-1")


class _StandIn:
    """An inert object that records what the pickle says about it and does nothing else."""

    pickled_as = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        instance = object.__new__(cls)
        instance.args = args
        instance.state = {}
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # arguments already recorded by __new__
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
            state = {**(state[0] or {}), **(state[1] or {})}  # (state, slotstate) form
        if not isinstance(state, dict):
            raise FlameFileError(f"{self.pickled_as} carries a {type(state).__name__} state, expected a dict.")
        self.state = state


class _ChumpyStandIn(_StandIn):
    pass


class _SparseStandIn(_StandIn):
    sparse_format = "csc"


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (FLAME 2020 was pickled by Python 2) mapped as `pickle` itself maps them."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; stand-in classes are made per load (no shared state)."""

    def __init__(self, file: io.BufferedIOBase, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        written = f"{module}.{name}"
        module, name = _python3_name(module, name)
        key = (module, name)
        if key in _NUMPY_GLOBALS:
            return _numpy_global(*_NUMPY_GLOBALS[key])
        if key == ("_codecs", "encode"):
            return _latin1_encode
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if key == ("copyreg", "_reconstructor"):
            return self._reconstruct_stand_in
        if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
            return self._stand_in(module, name, _SparseStandIn, sparse_format=_SPARSE_CLASSES[name])
        if module in _CHUMPY_MODULES and name.isidentifier():
            return self._stand_in(module, name, _ChumpyStandIn)
        spelled = "" if written == f"{module}.{name}" else f" (written as {written})"
        raise UnsafePickleError(
            f"refused global {module}.{name}{spelled}: a FLAME pickle may only contain numpy arrays, "
            "scipy sparse matrices and chumpy arrays."
        )

    def _stand_in(self, module: str, name: str, base: type, **attrs: Any) -> type:
        key = (module, name)
        if key not in self._stand_ins:
            self._stand_ins[key] = type(name, (base,), {"pickled_as": f"{module}.{name}", **attrs})
        return self._stand_ins[key]

    def _reconstruct_stand_in(self, cls: Any, base: Any, state: Any) -> Any:
        """`copyreg._reconstructor` for protocol 0/1 objects, limited to stand-ins built on `object`."""
        if not (isinstance(cls, type) and issubclass(cls, _StandIn)) or base is not object or state is not None:
            raise UnsafePickleError(f"refused copyreg._reconstructor for {cls!r} (base {base!r}).")
        return cls.__new__(cls)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: FLAME pickles do not use them.")


def restricted_loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle `data` with the allow-list, then turn stand-ins into numpy arrays (recursively in dicts,
    lists and tuples)."""
    unpickler = _RestrictedUnpickler(io.BytesIO(data), encoding=encoding)
    return to_numpy_tree(unpickler.load())


def to_numpy_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: to_numpy_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_numpy_tree(item) for item in value)
    if isinstance(value, _StandIn):
        return stand_in_to_numpy(value)
    return value


def stand_in_to_numpy(value: _StandIn, depth: int = 0) -> np.ndarray:
    """The numpy value of a chumpy or sparse stand-in."""
    if depth > MAX_CHUMPY_DEPTH:
        raise FlameFileError(f"chumpy expression nested deeper than {MAX_CHUMPY_DEPTH} levels.")
    if isinstance(value, _SparseStandIn):
        return _sparse_to_dense(value)
    if not isinstance(value, _ChumpyStandIn):
        raise FlameFileError(f"unexpected object {type(value).__name__} where an array was expected.")
    state, name = value.state, type(value).__name__

    def child(key: str) -> np.ndarray:
        item = state.get(key)
        if item is None:
            raise FlameFileError(f"{value.pickled_as} has no '{key}' in its state.")
        return stand_in_to_numpy(item, depth + 1) if isinstance(item, _StandIn) else np.asarray(item)

    if name == "Ch":
        return child("x")
    if name == "Reshape":
        return child("a").reshape(state["newshape"])
    if name == "transpose":
        return np.transpose(child("a"), axes=state.get("axes"))
    if name == "Select":
        selected = child("a").ravel()[np.asarray(state["idxs"])]
        shape = state.get("preferred_shape")
        return selected.reshape(shape) if shape is not None else selected
    if name == "Concatenate":
        terms = sorted((k for k in state if k.startswith("m") and k[1:].isdigit()), key=lambda k: int(k[1:]))
        return np.concatenate([child(k) for k in terms], axis=state.get("axis", 0))
    raise FlameFileError(
        f"chumpy object {value.pickled_as} cannot be turned into an array without running chumpy; "
        "save the model's arrays as plain numpy arrays."
    )


def _sparse_to_dense(value: _SparseStandIn) -> np.ndarray:
    import scipy.sparse

    state = value.state
    missing = [k for k in ("data", "indices", "indptr") if k not in state]
    shape = state.get("_shape", state.get("shape"))
    if missing or shape is None:
        raise FlameFileError(f"sparse matrix {value.pickled_as} lacks {missing or ['shape']} in its state.")
    parts = tuple(np.asarray(state[k]) for k in ("data", "indices", "indptr"))
    build = scipy.sparse.csc_matrix if value.sparse_format == "csc" else scipy.sparse.csr_matrix
    try:
        matrix = build(parts, shape=tuple(int(n) for n in shape))
        matrix.check_format(full_check=True)
    except (ValueError, TypeError) as error:
        raise FlameFileError(f"sparse matrix {value.pickled_as} is malformed: {error}") from error
    return matrix.toarray()
