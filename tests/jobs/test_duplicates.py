"""Issue 13 item 19: identical photos under different names are computed once per content id within a
run, one row per input; `--resume` stays exact.

The number of faces really computed is counted inside the engines (tests/jobs/counting_engines.py), not
read from the rows that the de-duplication itself writes.
"""
from __future__ import annotations

import collections
import shutil

import cv2
import pyarrow.parquet as pq
import pytest

from actors.ray_actors import ContentClaims
from dataset.results import content_holders, merge_results, read_parts, results_to_table
from dataset.schema import RESULTS_SCHEMA, empty_row
from dataset.shards import write_table_atomic
from dataset.sources import list_inputs
from jobs import generate
from tests.jobs.counting_engines import counting_catalog, start_counter
from tests.jobs.helpers import run_cli

COPIES = 16
MODES = ("2d", "3d")
SHARED_COLUMNS = ("id", "status", "styles", "avatar_paths", "ita_out", "mst_out", "identity", "glb_path", "obj_path",
                  "texture_path", "params_path", "nme", "head_engine", "seed")


# ------------------------------------------------------------------------------- claims, merge (no Ray)


def test_claims_go_to_the_first_asker_and_come_back_to_it_on_a_retry():
    claims = ContentClaims()
    assert claims.claim([("a", "x.jpg"), ("a", "y.jpg"), ("b", "z.jpg")]) == ["x.jpg", "x.jpg", "z.jpg"]
    assert claims.claim([("a", "x.jpg")]) == ["x.jpg"], "a retried batch computes again"
    assert claims.claim([("a", "w.jpg")]) == ["x.jpg"]
    assert ContentClaims({"a": "old.jpg"}).claim([("a", "x.jpg")]) == ["old.jpg"], "a resumed run keeps its holders"


def _row(source: str, item_id: str, duplicate_of: str | None = None, finished_at: float = 1.0, **values) -> dict:
    row = empty_row(RESULTS_SCHEMA)
    row.update(source=source, id=item_id, status="ok", reason="", duplicate_of=duplicate_of, finished_at=finished_at,
               ms_align=5.0, **values)
    return row


def _write_part(parts, name: str, rows: list[dict], drop: tuple[str, ...] = ()) -> None:
    table = results_to_table(rows)
    write_table_atomic(table.drop_columns(list(drop)) if drop else table, parts / f"part-{name}.parquet")


def test_merge_fills_duplicates_from_the_row_that_computed(tmp_path):
    parts = tmp_path / "results_parts"
    computed = dict(styles=["cartoon"], avatar_paths=["avatars/a/cartoon.png"], ita_out=[12.5], identity=[0.61],
                    glb_path="avatars/a/head.glb", nme=0.01, ms_2d=900.0, ms_3d=3000.0)
    _write_part(parts, "1", [_row("b.jpg", "a", duplicate_of="a.jpg"), _row("c.jpg", "a", duplicate_of="b.jpg")])
    _write_part(parts, "2", [_row("a.jpg", "a", finished_at=2.0, **computed), _row("lost.jpg", "q", duplicate_of="gone.jpg")])
    table = merge_results(parts, tmp_path / "results.parquet")
    rows = {row["source"]: row for row in pq.read_table(tmp_path / "results.parquet").to_pylist()}
    assert table.num_rows == 4 and sorted(rows) == ["a.jpg", "b.jpg", "c.jpg", "lost.jpg"]
    for source in ("b.jpg", "c.jpg"):  # c names b, which names a: followed to the row that computed
        row = rows[source]
        assert row["status"] == "ok" and row["duplicate_of"] in ("a.jpg", "b.jpg")
        for name in ("avatar_paths", "ita_out", "identity", "glb_path", "nme", "styles"):
            assert row[name] == rows["a.jpg"][name], name
        assert row["ms_2d"] == 0.0 and row["ms_3d"] == 0.0 and row["ms_align"] == 5.0 and row["finished_at"] == 1.0
    assert rows["lost.jpg"]["status"] == "failed" and rows["lost.jpg"]["reason"] == "internal_error", \
        "a duplicate whose holder has no row is never left ok without outputs"
    # The row that computed is the holder; a duplicate names one only for an id whose computing row is missing.
    assert content_holders(parts) == {"a": "a.jpg", "q": "gone.jpg"}


def test_parts_written_before_the_duplicate_column_still_read(tmp_path):
    parts = tmp_path / "results_parts"
    _write_part(parts, "old", [_row("a.jpg", "a")], drop=("duplicate_of",))
    table = read_parts(parts)
    assert table.schema == RESULTS_SCHEMA and table.column("duplicate_of").to_pylist() == [None]
    assert not list(parts.glob("*.corrupt"))


# ----------------------------------------------------------------------------------- the job, on Ray


def _photos(folder, package_photos):
    folder.mkdir(parents=True, exist_ok=True)
    astronaut = cv2.imencode(".jpg", cv2.cvtColor(package_photos["astronaut"], cv2.COLOR_RGB2BGR))[1].tobytes()
    for copy in range(COPIES):
        (folder / f"astronaut copy {copy:02d}.jpg").write_bytes(astronaut)
    cv2.imwrite(str(folder / "grace_hopper.jpg"), cv2.cvtColor(package_photos["grace_hopper"], cv2.COLOR_RGB2BGR))
    return folder


def _counts(counter) -> dict[str, int]:
    import ray

    return ray.get(counter.counts.remote())


def _delta(after: dict, before: dict) -> dict:
    return {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("2d", "3d")}


def _check_rows(output, photos) -> dict:
    """One row per input; the copies share one computing row's files and columns. Returns rows by source."""
    rows = {row["source"]: row for row in pq.read_table(output / "results.parquet").to_pylist()}
    assert sorted(rows) == sorted(list_inputs(photos)), "one row per input"
    copies = [row for source, row in rows.items() if "astronaut copy" in source]
    holders = [row for row in copies if row["duplicate_of"] is None]
    assert len(holders) == 1, [row["duplicate_of"] for row in copies]
    holder = holders[0]
    assert all(row["duplicate_of"] == holder["source"] for row in copies if row is not holder)
    assert holder["status"] == "ok", holder["detail"]
    for row in copies:
        for name in SHARED_COLUMNS:
            assert row[name] == holder[name], (row["source"], name)
    for path in [*(holder["avatar_paths"] or []), *([holder["glb_path"], holder["obj_path"], holder["texture_path"]]
                                                   if "3d" in MODES else [])]:
        assert (output / path).is_file(), path
    grace = rows[str(photos / "grace_hopper.jpg")]
    assert grace["status"] == "ok" and grace["duplicate_of"] is None and grace["id"] != holder["id"]
    return rows


@pytest.fixture(scope="module")
def deduplicated_run(tmp_path_factory, package_photos, ray_cluster):
    root = tmp_path_factory.mktemp("dedup")
    photos = _photos(root / "photos", package_photos)
    output = root / "out"
    counter = start_counter()
    before = _counts(counter)
    argv = ["--input", str(photos), "--output", str(output), "--modes", ",".join(MODES), "--style", "cartoon", "--no-views",
            "--engine", "counted-offline", "--head-engine", "counted-canonical", "--num-actors", "2", "--batch-size", "4",
            "--no-report"]
    assert generate.main(argv, catalog=counting_catalog()) == 0
    return photos, output, argv, counter, _delta(_counts(counter), before)


@pytest.mark.slow
def test_identical_photos_are_computed_once_with_one_row_each(deduplicated_run):
    photos, output, _, _, computed = deduplicated_run
    # One face per content id and mode: the 16 copies once, the other photo once.
    assert computed == {kind: 2 if kind in MODES else 0 for kind in ("2d", "3d")}
    rows = _check_rows(output, photos)
    copies = [row for source, row in rows.items() if "astronaut copy" in source]
    for mode in MODES:
        assert sum(row[f"ms_{mode}"] > 0 for row in copies) == 1, mode
    assert len({row["id"] for row in copies}) == 1


@pytest.mark.slow
def test_resume_after_losing_the_computing_row_computes_it_once_and_nothing_else(deduplicated_run, tmp_path, capfd):
    photos, first_output, argv, counter, _ = deduplicated_run
    output = tmp_path / "out"
    shutil.copytree(first_output, output)
    parts = output / "results_parts"
    rows_by_part = {path: read_parts_of(path) for path in parts.glob("part-*.parquet")}
    holder_part = next(path for path, rows in rows_by_part.items()
                       if any(row["duplicate_of"] is None and "astronaut copy" in row["source"] for row in rows))
    others = [path for path in rows_by_part if path != holder_part]
    lost = [holder_part, *others[:1]]  # as if the driver had been killed before these batches were written
    expected = sum(1 for path in lost for row in rows_by_part[path] if row["duplicate_of"] is None)
    holder_source = next(row["source"] for row in rows_by_part[holder_part]
                         if row["duplicate_of"] is None and "astronaut copy" in row["source"])
    for path in lost:
        path.unlink()

    resume = [*argv[:3], str(output), *argv[4:], "--resume"]
    before = _counts(counter)
    code, out, err = run_cli(generate.main, resume, capfd, catalog=counting_catalog())
    assert code == 0, err[-3000:]
    assert _delta(_counts(counter), before) == {kind: expected if kind in MODES else 0 for kind in ("2d", "3d")}
    rows = _check_rows(output, photos)
    assert rows[holder_source]["duplicate_of"] is None, "the resumed run keeps the first run's holder"
    per_source = collections.Counter(source for path in parts.glob("part-*.parquet")
                                     for source in pq.read_table(path, columns=["source"]).column("source").to_pylist())
    assert max(per_source.values()) == 1, "nothing that was written is computed or written again"

    # Lose only duplicates now: they come back as duplicates, nothing is computed.
    only_duplicates = [path for path in parts.glob("part-*.parquet")
                       if all(row["duplicate_of"] for row in read_parts_of(path))][:2]
    assert only_duplicates
    for path in only_duplicates:
        path.unlink()
    before = _counts(counter)
    code, out, err = run_cli(generate.main, resume, capfd, catalog=counting_catalog())
    assert code == 0, err[-3000:]
    assert _delta(_counts(counter), before) == {"2d": 0, "3d": 0}
    _check_rows(output, photos)


def read_parts_of(path) -> list[dict]:
    return pq.read_table(path, columns=["source", "duplicate_of"]).to_pylist()
