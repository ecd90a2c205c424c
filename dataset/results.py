"""The generate job's results: one results part per actor batch, merged into `results.parquet`.

Parts (`DIR/results_parts/part-*.parquet`) are written atomically as batches finish, so `--resume`
knows exactly which inputs are done; `merge_results` writes the single table users read, one row per
input. An input whose bytes another input of the run already computed (same content id) is written
with `duplicate_of` naming that input; the merge gives it that row's files and columns.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataset.reasons import Reason, Status
from dataset.schema import RESULTS_SCHEMA
from dataset.shards import write_table_atomic

log = logging.getLogger(__name__)

# A results row as one struct column: how a row travels between the avatar stages of a run.
RESULT_STRUCT = pa.struct(list(RESULTS_SCHEMA))
DUPLICATE = "duplicate_of"
# What a duplicate keeps of its own: its name, its own alignment time, when it was written.
OWN_COLUMNS = ("source", DUPLICATE, "ms_align", "finished_at")
# Time it did not spend: 0 on a duplicate whose holder spent some.
SAVED_TIME_COLUMNS = ("ms_2d", "ms_3d")


def results_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{name: row.get(name) for name in RESULTS_SCHEMA.names} for row in rows],
                                schema=RESULTS_SCHEMA)


def _conform(table: pa.Table, names: list[str]) -> pa.Table:
    """`table` with exactly the `names` columns of RESULTS_SCHEMA, in order; a column a part written by an
    older version lacks is null."""
    arrays = [table.column(name).cast(RESULTS_SCHEMA.field(name).type) if name in table.column_names
              else pa.nulls(table.num_rows, type=RESULTS_SCHEMA.field(name).type) for name in names]
    return pa.Table.from_arrays(arrays, schema=pa.schema([RESULTS_SCHEMA.field(name) for name in names]))


def read_parts(parts_dir: Path, columns: list[str] | None = None) -> pa.Table:
    """All readable parts; unreadable ones (a crash mid-write) are moved aside and logged."""
    names = list(RESULTS_SCHEMA.names if columns is None else columns)
    tables = []
    for path in sorted(Path(parts_dir).glob("part-*.parquet")):
        try:
            present = set(pq.read_schema(path).names)
            tables.append(_conform(pq.read_table(path, columns=[n for n in names if n in present]), names))
        except Exception as error:
            log.warning("Moving unreadable results part %s aside: %s", path, error)
            path.rename(path.with_name(path.name + ".corrupt"))
    if not tables:
        return pa.schema([RESULTS_SCHEMA.field(name) for name in names]).empty_table()
    return pa.concat_tables(tables)


def parts_sources(parts_dir: Path) -> set[str]:
    """Sources that already have a row in a run's results parts (what `--resume` skips)."""
    return set(read_parts(parts_dir, columns=["source"]).column("source").to_pylist())


def content_holders(parts_dir: Path) -> dict[str, str]:
    """Content id → the source that computes it, as recorded in the parts (what a `--resume` seeds its
    claims with, so an input identical to one already done is not computed again): an `ok` row that
    computed holds its own id; for an id without one, the holder its duplicates name (still pending)."""
    rows = read_parts(parts_dir, columns=["id", "source", "status", DUPLICATE]).to_pylist()
    holders: dict[str, str] = {}
    for row in rows:  # the rows that computed first: they are the holders
        if not row[DUPLICATE] and row["status"] == Status.OK.value and row["id"]:
            holders.setdefault(row["id"], row["source"])
    for row in rows:  # then ids whose computing row was not written yet: the holder a duplicate names
        if row[DUPLICATE]:
            holders.setdefault(row["id"], row[DUPLICATE])
    return holders


def merge_results(parts_dir: Path, path: Path) -> pa.Table:
    """One row per source (the newest part wins if an input was ever written twice), sorted by source;
    duplicates filled from the row they name."""
    table = read_parts(parts_dir)
    if table.num_rows:
        finished = table.column("finished_at").to_pylist()
        newest: dict[str, int] = {}
        for index, source in enumerate(table.column("source").to_pylist()):
            if source not in newest or (finished[index] or 0) >= (finished[newest[source]] or 0):
                newest[source] = index
        order = sorted(newest.values(), key=lambda i: table.column("source")[i].as_py())
        table = table.take(order)
        if table.column(DUPLICATE).null_count < table.num_rows:
            table = results_to_table(fill_duplicates(table.to_pylist()))
    write_table_atomic(table, path)
    return table


def fill_duplicates(rows: list[dict]) -> list[dict]:
    """Each row with `duplicate_of` gets the columns of the row it names (following a chain to the row
    that computed); one whose holder has no row is marked failed, never left `ok` without outputs."""
    by_source = {row["source"]: row for row in rows}
    filled = []
    for row in rows:
        if not row[DUPLICATE]:
            filled.append(row)
            continue
        holder, seen = by_source.get(row[DUPLICATE]), {row["source"]}
        while holder is not None and holder[DUPLICATE] and holder["source"] not in seen:
            seen.add(holder["source"])
            holder = by_source.get(holder[DUPLICATE])
        if holder is None or holder[DUPLICATE]:
            filled.append({**row, "status": Status.FAILED.value, "reason": Reason.INTERNAL_ERROR.value,
                           "detail": f"identical to {row[DUPLICATE]}, whose row is missing"})
            continue
        copy = {name: value for name, value in holder.items() if name not in OWN_COLUMNS}
        copy.update({name: 0.0 for name in SAVED_TIME_COLUMNS if holder.get(name) is not None})
        filled.append({**row, **copy})
    return filled
