"""Command line for IMFDB.

    python -m dataset.imfdb download --dest DIR [--config FILE] [--retries N] [--timeout S] [--no-extract]
    python -m dataset.imfdb extract --archive FILE --dest DIR
    python -m dataset.imfdb parse --root DIR --output FILE.parquet

`download` fetches every file of the config into ``DIR/downloads/`` (resuming ``.part`` files),
checks pinned checksums, and extracts the archives into DIR. Errors print one line naming the host
and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataset.imfdb.client import DownloadError, download_file, load_config, safe_extract, sha256_file


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (DownloadError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _download(args) -> int:
    files = load_config(args.config)
    dest = Path(args.dest)
    for source in files:
        path = download_file(
            source, dest / "downloads", retries=args.retries, timeout=args.timeout, progress=not args.quiet
        )
        print(f"downloaded {path}")
        if source.sha256 is None:
            print(f"  no sha256 pinned for {source.filename}; computed {sha256_file(path)} (add it to the config)")
        if not args.no_extract:
            _report_extraction(path, dest)
    return 0


def _extract(args) -> int:
    _report_extraction(Path(args.archive), Path(args.dest))
    return 0


def _report_extraction(archive: Path, dest: Path) -> None:
    report = safe_extract(archive, dest)
    print(f"extracted {len(report.extracted)} files from {archive.name} into {dest}")
    for member, why in report.refused:
        print(f"  refused {member!r}: {why}", file=sys.stderr)
    for member, why in report.failed:
        print(f"  failed {member!r}: {why}", file=sys.stderr)


def _parse(args) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataset.imfdb.annotations import read_imfdb
    from dataset.schema import IMFDB_COLUMNS

    result = read_imfdb(args.root)
    schema = pa.schema([("path", pa.string())] + [(name, pa.string()) for name in IMFDB_COLUMNS])
    table = pa.Table.from_pylist(result.records, schema=schema)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    print(
        f"{len(result.records)} images from {result.movies} movies -> {output} "
        f"(skipped lines: {result.skipped_lines}, unannotated images: {result.unannotated_images}, "
        f"annotated but missing: {result.missing_images})"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataset.imfdb", description="IMFDB download and annotations.")
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="download (resumable), verify and extract IMFDB")
    download.add_argument("--dest", required=True, help="folder for downloads/ and the extracted dataset")
    download.add_argument("--config", default=None, help="sources JSON (default: dataset/imfdb/sources.json)")
    download.add_argument("--retries", type=int, default=3, help="retries per file after a network error")
    download.add_argument("--timeout", type=float, default=30.0, help="socket timeout in seconds")
    download.add_argument("--no-extract", action="store_true", help="only download and verify")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(run=_download)

    extract = commands.add_parser("extract", help="safely extract an IMFDB archive you already have")
    extract.add_argument("--archive", required=True)
    extract.add_argument("--dest", required=True)
    extract.set_defaults(run=_extract)

    parse = commands.add_parser("parse", help="annotation files -> Parquet (path + IMFDB columns)")
    parse.add_argument("--root", required=True, help="extracted IMFDB folder")
    parse.add_argument("--output", required=True, help="output .parquet file")
    parse.set_defaults(run=_parse)
    return parser


if __name__ == "__main__":
    sys.exit(main())
