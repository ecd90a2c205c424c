"""The generate job's results: one results part per actor batch, merged into `results.parquet`.

Parts (`DIR/results_parts/part-*.parquet`) are written atomically as batches finish, so `--resume`
knows exactly which inputs are done; `merge_results` writes the single table users read.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataset.schema import RESULTS_SCHEMA
from dataset.shards import write_table_atomic

log = logging.getLogger(__name__)


def results_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{name: row.get(name) for name in RESULTS_SCHEMA.names} for row in rows],
                                schema=RESULTS_SCHEMA)


def read_parts(parts_dir: Path, columns: list[str] | None = None) -> pa.Table:
    """All readable parts; unreadable ones (a crash mid-write) are moved aside and logged."""
    tables = []
    for path in sorted(Path(parts_dir).glob("part-*.parquet")):
        try:
            tables.append(pq.read_table(path, columns=columns, schema=RESULTS_SCHEMA if columns is None else None))
        except Exception as error:
            log.warning("Moving unreadable results part %s aside: %s", path, error)
            path.rename(path.with_name(path.name + ".corrupt"))
    if not tables:
        schema = RESULTS_SCHEMA if columns is None else pa.schema([RESULTS_SCHEMA.field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(tables)


def done_sources(parts_dir: Path) -> set[str]:
    return set(read_parts(parts_dir, columns=["source"]).column("source").to_pylist())


def merge_results(parts_dir: Path, path: Path) -> pa.Table:
    """One row per source (the newest part wins if an input was ever written twice), sorted by source."""
    table = read_parts(parts_dir)
    if table.num_rows:
        finished = table.column("finished_at").to_pylist()
        newest: dict[str, int] = {}
        for index, source in enumerate(table.column("source").to_pylist()):
            if source not in newest or (finished[index] or 0) >= (finished[newest[source]] or 0):
                newest[source] = index
        order = sorted(newest.values(), key=lambda i: table.column("source")[i].as_py())
        table = table.take(order)
    write_table_atomic(table, path)
    return table
