"""IMFDB annotation parser: per-movie annotation files → one record per face image.

Layout (IMFDB_final): ``ROOT/<Actor>/<Movie>/<Movie>.txt`` with the face images in
``ROOT/<Actor>/<Movie>/images/``. The parser finds movie folders at any depth (so ROOT may be the
extraction folder or the ``IMFDB_final`` folder inside it).

Annotation lines. IMFDB's files are whitespace/tab separated, one face per line. Public parsers of
the released files read the face image name from the 3rd field, the movie from the 8th, the actor
from the 10th and the attributes from the 11th onward (gender, expression, illumination, pose, ...);
other copies put the image name first, then actor, movie and the attributes. The column positions
of occlusion, age and makeup could not be confirmed, so attributes are recognised by their
vocabulary rather than by position (each attribute's values are distinct words):

=============  ====================================================================
gender         male, female
age            child, young, middle, old
expression     anger, happiness, sadness, surprise, fear, disgust, neutral
pose           frontal, left, right, up, down
illumination   bad, medium, high
occlusion      none, glasses, beard, ornaments, hair, hand, others
makeup         partial, over
=============  ====================================================================

Values are stored lower-case. Attribute words are read only after the first gender word, so actor
or movie names cannot be mistaken for attributes ("none" fills occlusion first, then makeup).
`actor` and `movie` come from the folder names (the same names as the image paths). The image name
is the image-like field that exists in the movie's image folder (else the last image-like field
before the attributes). Lines without an image name are skipped and counted; nothing raises.
Images present in the folder without an annotation line still get a record (actor and movie only).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from dataset.schema import IMFDB_COLUMNS
from dataset.sources import canonical_path

logger = logging.getLogger(__name__)

VOCABULARY: dict[str, frozenset[str]] = {
    "gender": frozenset({"male", "female"}),
    "age": frozenset({"child", "young", "middle", "old"}),
    "expression": frozenset({"anger", "happiness", "sadness", "surprise", "fear", "disgust", "neutral"}),
    "pose": frozenset({"frontal", "left", "right", "up", "down"}),
    "illumination": frozenset({"bad", "medium", "high"}),
    "occlusion": frozenset({"none", "glasses", "beard", "ornaments", "hair", "hand", "others"}),
    "makeup": frozenset({"partial", "over"}),
}
_ATTRIBUTE_ORDER = ("gender", "age", "expression", "pose", "illumination", "occlusion", "makeup")
_IMAGE_NAME = re.compile(r".+\.(jpe?g|png|bmp|webp|tiff?)$", re.IGNORECASE)
_IMAGE_FOLDER = "images"


@dataclass
class ImfdbParse:
    """Records (one per face image, sorted by path) and what the parser had to skip."""

    records: list[dict] = field(default_factory=list)
    movies: int = 0
    lines: int = 0
    skipped_lines: int = 0
    duplicate_lines: int = 0
    missing_images: int = 0  # annotated images not found on disk (kept: the path is still known)
    unannotated_images: int = 0  # images on disk without an annotation line (actor/movie only)
    missing_annotation_files: int = 0
    examples: list[str] = field(default_factory=list)  # a few skipped lines, for the log


def read_imfdb(root: str | os.PathLike) -> ImfdbParse:
    """Parse every movie folder under `root` (see the module docstring)."""
    root = canonical_path(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"IMFDB root {root!r} is not a folder.")
    result = ImfdbParse()
    by_path: dict[str, dict] = {}
    for movie_dir in _movie_folders(root):
        result.movies += 1
        actor = os.path.basename(os.path.dirname(movie_dir))
        movie = os.path.basename(movie_dir)
        image_dir = _image_folder(movie_dir)
        on_disk = _image_names(image_dir)
        annotation = _annotation_file(movie_dir)
        if annotation is None:
            result.missing_annotation_files += 1
        else:
            for line in _read_lines(annotation):
                result.lines += 1
                parsed = parse_line(line, on_disk)
                if parsed is None:
                    if line.strip():
                        result.skipped_lines += 1
                        if len(result.examples) < 5:
                            result.examples.append(f"{annotation}: {line.strip()[:120]!r}")
                    else:
                        result.lines -= 1
                    continue
                name, attributes = parsed
                path = os.path.join(image_dir, name)
                if path in by_path:
                    result.duplicate_lines += 1
                    continue
                if name not in on_disk:
                    result.missing_images += 1
                by_path[path] = {"path": path, "actor": actor, "movie": movie, **attributes}
        for name in sorted(on_disk):
            path = os.path.join(image_dir, name)
            if path not in by_path:
                result.unannotated_images += 1
                by_path[path] = {"path": path, "actor": actor, "movie": movie}
    result.records = [_complete(by_path[path]) for path in sorted(by_path)]
    if result.skipped_lines:
        logger.warning(
            "IMFDB: skipped %d malformed annotation lines of %d (e.g. %s)",
            result.skipped_lines,
            result.lines,
            "; ".join(result.examples[:2]),
        )
    return result


def parse_imfdb(root: str | os.PathLike) -> list[dict]:
    """One dict per face image: ``path`` (absolute) plus the `IMFDB_COLUMNS` (None when unknown)."""
    return read_imfdb(root).records


def imfdb_annotations_by_path(root: str | os.PathLike) -> dict[str, dict]:
    """``{source path: {column: value}}`` for joining annotations onto rows by their `source`."""
    return {record["path"]: {name: record[name] for name in IMFDB_COLUMNS} for record in parse_imfdb(root)}


def parse_line(line: str, images_on_disk: set[str] | frozenset[str] = frozenset()) -> tuple[str, dict] | None:
    """``(image name, attributes)`` for one annotation line, or None when it names no image."""
    tokens = line.replace(",", " ").split()
    first_gender = next((i for i, t in enumerate(tokens) if t.lower() in VOCABULARY["gender"]), len(tokens))
    candidates = [t for t in tokens[:first_gender] if _IMAGE_NAME.match(t)]
    if not candidates:
        return None
    existing = [t for t in candidates if os.path.basename(t) in images_on_disk]
    name = os.path.basename(existing[0] if existing else candidates[-1])
    if name in ("", ".", ".."):
        return None
    attributes: dict[str, str] = {}
    for token in tokens[first_gender:]:
        word = token.lower()
        for attribute in _ATTRIBUTE_ORDER:
            if attribute not in attributes and word in VOCABULARY[attribute]:
                attributes[attribute] = word
                break
    return name, attributes


def _complete(record: dict) -> dict:
    return {"path": record["path"], **{name: record.get(name) for name in IMFDB_COLUMNS}}


def _movie_folders(root: str) -> list[str]:
    """Folders holding an ``images/`` folder or an annotation file named after the folder."""
    found = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != _IMAGE_FOLDER)
        if folder == root:
            continue
        if os.path.isdir(os.path.join(folder, _IMAGE_FOLDER)) or f"{os.path.basename(folder)}.txt" in filenames:
            found.append(folder)
    return sorted(found)


def _image_folder(movie_dir: str) -> str:
    """``images/`` when present; some copies keep the images beside the annotation file."""
    nested = os.path.join(movie_dir, _IMAGE_FOLDER)
    return nested if os.path.isdir(nested) else movie_dir


def _annotation_file(movie_dir: str) -> str | None:
    named = os.path.join(movie_dir, os.path.basename(movie_dir) + ".txt")
    if os.path.isfile(named):
        return named
    texts = sorted(n for n in os.listdir(movie_dir) if n.lower().endswith(".txt") and not n.startswith("."))
    return os.path.join(movie_dir, texts[0]) if len(texts) == 1 else None


def _image_names(image_dir: str) -> set[str]:
    if not os.path.isdir(image_dir):
        return set()
    return {n for n in os.listdir(image_dir) if _IMAGE_NAME.match(n) and not n.startswith(".")}


def _read_lines(path: str) -> list[str]:
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()
