import json
import math
import os
import time

import numpy as np
import pytest

from serve.store import (
    DONE, FAILED, INTERRUPTED, OWNER_STALE_S, QUEUED, RUNNING, JobNotFound, ResultStore, is_job_id, json_safe,
)


@pytest.fixture
def store(tmp_path):
    return ResultStore(tmp_path / "results", ttl_s=60)


def finished_job(store, files: dict[str, str] | None = None):
    record = store.create({"modes": ["2d"]}, b"\xff\xd8\xffphoto", "jpg")
    job_dir = store.job_dir(record.id)
    (job_dir / "avatars" / "x").mkdir(parents=True)
    (job_dir / "avatars" / "x" / "avatar_cartoon.png").write_bytes(b"\x89PNG avatar")
    files = files if files is not None else {"avatar_cartoon.png": "avatars/x/avatar_cartoon.png"}
    return store.update(record.id, status=DONE, files=files)


def test_ids_are_random_server_tokens(store):
    first = store.create({}, b"a", "jpg")
    second = store.create({}, b"a", "jpg")
    assert is_job_id(first.id) and is_job_id(second.id) and first.id != second.id
    assert first.status == QUEUED
    assert store.input_path(first).read_bytes() == b"a"


@pytest.mark.parametrize("job_id", ["", "..", "../results", "A" * 32, "0" * 31, "0" * 33, "0" * 32 + "/x", "job.json"])
def test_malformed_or_unknown_ids_are_not_found(store, job_id):
    with pytest.raises(JobNotFound):
        store.load(job_id)
    assert not store.exists(job_id)


def test_unknown_well_formed_id_is_not_found(store):
    with pytest.raises(JobNotFound):
        store.load("0123456789abcdef0123456789abcdef")


def test_files_resolve_only_through_the_published_map(store):
    record = finished_job(store)
    assert store.file_path(record.id, "avatar_cartoon.png").read_bytes() == b"\x89PNG avatar"
    for name in ("job.json", "input.jpg", "../job.json", "..%2Fjob.json", "avatars/x/avatar_cartoon.png", "avatar_anime.png", ".."):
        with pytest.raises(JobNotFound):
            store.file_path(record.id, name)


def test_a_map_entry_pointing_outside_the_job_folder_is_refused(store, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    record = finished_job(store, files={"views.png": "../../secret.png", "head.glb": str(secret)})
    link = store.job_dir(record.id) / "avatars" / "x" / "link.png"
    os.symlink(secret, link)
    store.update(record.id, files={**record.files, "view_0.png": "avatars/x/link.png"})
    for name in ("views.png", "head.glb", "view_0.png"):
        with pytest.raises(JobNotFound):
            store.file_path(record.id, name)


def test_delete_removes_the_upload_and_outputs(store):
    record = finished_job(store)
    job_dir = store.job_dir(record.id)
    assert store.delete(record.id)
    assert not job_dir.exists()
    assert not store.delete(record.id)
    with pytest.raises(JobNotFound):
        store.load(record.id)


def test_results_expire_ttl_after_the_job_ends_and_are_deleted_on_access(store):
    record = finished_job(store)
    assert record.expires_at == pytest.approx(record.finished_at + 60)
    assert store.load(record.id, now=record.expires_at - 1).id == record.id
    with pytest.raises(JobNotFound):
        store.load(record.id, now=record.expires_at + 1)
    assert not store.job_dir(record.id).exists()


def test_sweep_removes_expired_jobs_only(store):
    done = finished_job(store)
    waiting = store.create({}, b"a", "jpg")
    fresh = finished_job(store)
    now = done.expires_at + 1
    # `fresh` finished at about the same time: move its expiry past `now` to tell the two apart.
    record_path = store.job_dir(fresh.id) / "job.json"
    data = json.loads(record_path.read_text())
    data["expires_at"] = now + 100
    record_path.write_text(json.dumps(data))
    assert store.sweep(now=now) == [done.id]
    assert store.exists(waiting.id) and store.exists(fresh.id)


def test_unfinished_jobs_of_a_live_service_are_never_swept(store):
    """Issue 13: a job still queued (or running) long past the job timeout was swept as abandoned (404)."""
    waiting = store.create({}, b"a", "jpg")
    running = store.create({}, b"a", "jpg")
    store.update(running.id, status=RUNNING)
    store.heartbeat()
    for later in (301, 3600, 10 * 86400):
        assert store.sweep(now=waiting.updated_at + later) == []
        assert store.load(waiting.id, now=waiting.updated_at + later).status == QUEUED
        assert store.load(running.id, now=waiting.updated_at + later).status == RUNNING


def test_unfinished_jobs_of_a_dead_service_are_answered_interrupted_not_lost(tmp_path):
    root = tmp_path / "results"
    gone = ResultStore(root, ttl_s=60, owner="otherhost-4242-abcd1234")  # another machine sharing the folder
    gone.heartbeat()
    orphan = gone.create({}, b"a", "jpg")
    alive = ResultStore(root, ttl_s=60)
    beat = (root / ".owners" / gone.owner).stat().st_mtime
    assert alive.sweep(now=beat + OWNER_STALE_S / 2) == []  # still beating: left alone
    assert alive.load(orphan.id).status == QUEUED
    os.utime(root / ".owners" / gone.owner, (beat - 2 * OWNER_STALE_S,) * 2)  # its heartbeat stopped
    assert alive.sweep() == []  # answered, not removed
    record = alive.load(orphan.id)
    assert (record.status, record.reason) == (FAILED, INTERRUPTED) and "submit the photo again" in record.detail
    assert record.expires_at == pytest.approx(record.finished_at + 60)  # and then it expires like any answer


def test_a_dead_process_on_this_machine_is_noticed_at_once(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "results"
    alive = ResultStore(root, ttl_s=60)
    host = alive.owner.rsplit("-", 2)[0]
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that no longer exists
    dead = ResultStore(root, ttl_s=60, owner=f"{host}-{child.pid}-0000abcd")
    dead.heartbeat()  # a fresh beat, but the process is gone
    orphan = dead.create({}, b"a", "jpg")
    alive.sweep()
    assert alive.load(orphan.id).reason == INTERRUPTED


def test_update_of_a_deleted_job_does_not_recreate_it(store):
    record = store.create({}, b"a", "jpg")
    store.delete(record.id)
    assert store.update(record.id, progress=0.5) is None
    assert not store.job_dir(record.id).exists()


def test_json_safe_turns_numpy_and_nan_into_json():
    value = json_safe({"a": np.float32(1.5), "b": np.array([1, 2], dtype=np.int8), "c": math.nan, "d": (np.int64(3),)})
    assert json.loads(json.dumps(value)) == {"a": 1.5, "b": [1, 2], "c": None, "d": [3]}


def test_records_are_private_to_the_owner(store):
    record = store.create({}, b"a", "jpg")
    assert (store.root.stat().st_mode & 0o777) == 0o700
    assert (store.job_dir(record.id).stat().st_mode & 0o777) == 0o700
    assert time.time() - record.created_at < 5
