"""MakeHuman's semantic shape targets (head, face, ears, neck) as one signed weight each.

MakeHuman's catalogue (`targets/target.json`) pairs opposite targets ("head-scale-vert-decr" /
"...-incr"; left and right sides separately for ears, cheeks, eyes). A pair becomes one signed
weight w, MakeHuman's modifier value: w > 0 applies the "incr" target with weight w, w < 0 the
"decr" target with weight |w| (`ShapeBasis.offsets`). Many pairs are not mirror images of each other
(`asymmetry`: |incr + decr| / |incr − decr|, up to 2 for "nose-volume"), so the fit is linear for a
fixed sign of each weight and picks the side from the sign (see `fit`). Single targets (the face
shapes "head-oval", "chin-triangle", ...) are one-sided in MakeHuman; here a negative weight applies
the opposite of their offsets, which keeps every weight signed and the fit unconstrained.

`FIT_FAMILIES` are the families the photo fit uses. The ears and the back of the head are not seen
by the 478 landmarks: targets that move them but not the landmarks are dropped by measurement
(`observable`), so the fit never invents an ear shape the photo says nothing about.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import scipy.sparse

from .assets import mpfb_dir, read_json, read_targets

SEMANTIC_FAMILIES = ("head", "forehead", "eyebrows", "eyes", "nose", "cheek", "mouth", "chin", "ears", "neck")
ALL_FAMILIES = SEMANTIC_FAMILIES + ("macrodetails",)  # macrodetails: see `macro`
DM_TO_M = 0.1


Mix = tuple[tuple[str, float], ...]  # (target file under targets/, without ".target.gz"; its weight)


@dataclass(frozen=True)
class ShapeTarget:
    """One signed (or one-sided) shape weight: the offsets at w = +1 and at w = −1, each a weighted
    mix of MakeHuman target files (one file for the semantic targets, several for `macro` ones)."""

    name: str  # "head-scale-vert-decr|incr", "l-ear-lobe-decr|incr", "head-oval", "macro-gender-female|male"
    family: str
    positive: Mix  # offsets for w > 0
    negative: Mix | None = None  # offsets for w < 0 (None: one-sided; w < 0 applies −positive)
    recentre: bool = False  # remove the mean motion of the head (macro targets also move it up and down)

    @classmethod
    def single(cls, name: str, family: str, positive: str, negative: str | None = None) -> "ShapeTarget":
        return cls(name, family, ((f"{family}/{positive}", 1.0),), ((f"{family}/{negative}", 1.0),) if negative else None)

    def files(self) -> list[str]:
        return [name for name, _ in self.positive + (self.negative or ())]


def target_catalogue(families: tuple[str, ...] = SEMANTIC_FAMILIES) -> list[ShapeTarget]:
    """The shape weights of the named semantic families, in MakeHuman's catalogue order."""
    catalogue = read_json(mpfb_dir() / "targets" / "target.json")
    unknown = set(families) - set(catalogue)
    if unknown:
        raise ValueError(f"unknown target families {sorted(unknown)}; MakeHuman has {sorted(catalogue)}.")
    targets = []
    for family in families:
        for category in catalogue[family]["categories"]:
            opposites = {key: value for key, value in (category.get("opposites") or {}).items() if value}
            if not opposites:
                targets += [ShapeTarget.single(stem, family, stem) for stem in category["targets"]]
                continue
            for side in ("left", "right", "unsided"):
                positive, negative = opposites.get(f"positive-{side}"), opposites.get(f"negative-{side}")
                if positive and negative:
                    targets.append(ShapeTarget.single(f"{negative}|{_suffix(negative, positive)}", family, positive, negative))
    return targets


def _suffix(negative: str, positive: str) -> str:
    """"head-scale-vert-decr", "head-scale-vert-incr" → "incr" (the part after the shared prefix)."""
    common = 0
    while common < min(len(negative), len(positive)) and negative[common] == positive[common]:
        common += 1
    while common > 0 and positive[common - 1] != "-":
        common -= 1
    return positive[common:]


@dataclass(frozen=True)
class ShapeBasis:
    """The offsets of K signed shape weights on the model's vertices (metres)."""

    names: tuple[str, ...]
    positive: np.ndarray  # (K, Vm, 3) float32: offsets at w = +1
    negative: np.ndarray  # (K, Vm, 3) float32: offsets at w = −1 (the "decr" target; −positive for one-sided ones)

    @property
    def asymmetry(self) -> np.ndarray:
        """(K,) |positive + negative| / |positive − negative|: 0 for a mirror-image pair."""
        plus = np.linalg.norm((self.positive + self.negative).reshape(len(self.names), -1), axis=1)
        minus = np.linalg.norm((self.positive - self.negative).reshape(len(self.names), -1), axis=1)
        return plus / np.maximum(minus, 1e-12)

    def offsets(self, weights: np.ndarray) -> np.ndarray:
        """(..., Vm, 3) offsets of (..., K) weights: the "incr" side for w > 0, the "decr" side for w < 0."""
        weights = np.asarray(weights, dtype=np.float32)
        k, count = self.positive.shape[0], self.positive.shape[1]
        up, down = np.maximum(weights, 0.0), np.maximum(-weights, 0.0)
        flat = up @ self.positive.reshape(k, -1) + down @ self.negative.reshape(k, -1)
        return flat.reshape(*weights.shape[:-1], count, 3)

    def subset(self, keep: np.ndarray) -> "ShapeBasis":
        keep = np.asarray(keep)
        positive, negative = self.positive[keep], self.negative[keep]
        positive.setflags(write=False)
        negative.setflags(write=False)
        return ShapeBasis(tuple(np.asarray(self.names)[keep].tolist()), positive, negative)


def read_shape_basis(targets: list[ShapeTarget], to_model: scipy.sparse.spmatrix, centre_rows: np.ndarray | None = None) -> ShapeBasis:
    """The `ShapeBasis` of `targets` on the model's vertices.

    `to_model` (Vm × Vb) maps base-mesh vertices to the model's (the cut's border blends included),
    so every target is restricted to the model in one sparse product. `centre_rows`: the model rows
    whose mean motion `recentre` targets lose.
    """
    root = mpfb_dir() / "targets"
    files = sorted({name for target in targets for name in target.files()})
    parsed = read_targets([root / f"{name}.target.gz" for name in files], to_model.shape[1])
    columns = scipy.sparse.hstack([_sparse(indices, offsets, to_model.shape[1]) for indices, offsets in parsed]).tocsc()
    restricted = np.asarray((to_model @ columns).todense(), dtype=np.float64) * DM_TO_M  # (Vm, 3·files)
    by_file = dict(zip(files, restricted.reshape(to_model.shape[0], len(files), 3).transpose(1, 0, 2)))
    positive = np.zeros((len(targets), to_model.shape[0], 3), dtype=np.float32)
    negative = np.zeros_like(positive)
    for k, target in enumerate(targets):
        up = sum(weight * by_file[name] for name, weight in target.positive)
        down = sum(weight * by_file[name] for name, weight in target.negative) if target.negative else -up
        if target.recentre and centre_rows is not None:
            up, down = up - up[centre_rows].mean(axis=0), down - down[centre_rows].mean(axis=0)
        positive[k], negative[k] = up, down
    return ShapeBasis(tuple(target.name for target in targets), positive, negative)


def _sparse(indices: np.ndarray, offsets: np.ndarray, count: int) -> scipy.sparse.csc_matrix:
    """A target as a (Vb, 3) sparse matrix (duplicate rows add up, as applying the file would)."""
    rows = np.repeat(indices, 3)
    cols = np.tile(np.arange(3), len(indices))
    return scipy.sparse.csc_matrix((offsets.ravel(), (rows, cols)), shape=(count, 3))
