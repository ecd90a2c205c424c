"""IMFDB (Indian Movie Face Database): download + safe extraction (`client`), annotations (`annotations`).

Command line: ``python -m dataset.imfdb download|extract|parse`` (see ``__main__``).
"""
from dataset.imfdb.annotations import ImfdbParse, imfdb_annotations_by_path, parse_imfdb, read_imfdb

__all__ = ["ImfdbParse", "imfdb_annotations_by_path", "parse_imfdb", "read_imfdb"]
