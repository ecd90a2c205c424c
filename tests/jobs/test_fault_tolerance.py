"""Fault injection: SIGKILL an actor of each of the three stages (alignment, 2D, 3D) mid-run; no row is
lost or doubled, and nothing that was written is computed again."""
from __future__ import annotations

import collections
import os
import signal
import threading
import time

import pyarrow.parquet as pq
import pytest

from dataset.sources import list_inputs
from jobs import generate
from tests.jobs.helpers import wait_for
from tests.jobs.test_generate import write_photos


def alive_actor_pids(class_fragment: str) -> list[int]:
    from ray._private.state import actors

    return [info["Pid"] for info in actors().values()
            if class_fragment in info["ActorClassName"] and info["State"] == "ALIVE" and info.get("Pid")]


@pytest.mark.slow
def test_run_survives_killed_actors(tmp_path, package_photos, ray_cluster):
    photos = write_photos(tmp_path / "photos", package_photos, copies=16)
    total = len(list_inputs(photos))
    output = tmp_path / "out"
    outcome: dict = {}

    def run_job() -> None:
        try:
            outcome["code"] = generate.main(["--input", str(photos), "--output", str(output), "--modes", "2d,3d",
                                             "--style", "cartoon", "--no-views", "--num-actors", "2",
                                             "--batch-size", "1", "--no-report"])
        except BaseException as error:  # surfaced by the assertion below
            outcome["error"] = error

    job = threading.Thread(target=run_job)
    job.start()
    parts = output / "results_parts"
    avatars = output / "avatars"
    killed: dict[str, int] = {}

    def kill_one(stage: str) -> None:
        pids = alive_actor_pids(stage)
        assert pids, f"no {stage} alive to kill"
        os.kill(pids[0], signal.SIGKILL)
        killed[stage] = pids[0]

    # Alignment runs ahead of the avatar stages and its pool retires early: kill it as soon as it works.
    assert wait_for(lambda: alive_actor_pids("AlignActor"), timeout=300, interval=0.1), outcome
    time.sleep(1.0)
    kill_one("AlignActor")
    # The 2D stage writes each face's aligned input before it draws: kill a 2D actor once drawing began.
    assert wait_for(lambda: alive_actor_pids("Stylize2DActor") and any(avatars.glob("*/input.png")),
                    timeout=300, interval=0.1), outcome
    kill_one("Stylize2DActor")
    # The 3D stage writes the results parts: kill a 3D actor after the first part.
    assert wait_for(lambda: alive_actor_pids("Head3DActor") and len(list(parts.glob("part-*.parquet"))) >= 1,
                    timeout=300, interval=0.1), outcome
    kill_one("Head3DActor")
    written_at_kill = len(list(parts.glob("part-*.parquet")))
    assert written_at_kill < total, "the kills must land mid-run"
    job.join(timeout=900)
    assert not job.is_alive()
    assert outcome.get("code") == 0, outcome.get("error")
    assert len(list(parts.glob("part-*.parquet"))) > written_at_kill, "work went on after the kills"

    per_source = collections.Counter()
    for part in parts.glob("part-*.parquet"):
        per_source.update(pq.read_table(part, columns=["source"]).column("source").to_pylist())
    table = pq.read_table(output / "results.parquet").to_pandas()
    assert sorted(table["source"]) == sorted(list_inputs(photos)), "exactly one row per input"
    assert (table["status"] == "ok").all()
    # Only the 3D actors write parts, one batch (of one input) at a time: at most the batch that the killed
    # 3D actor had written but not yet returned is written again. A killed alignment or 2D actor's batch is
    # simply redone before anything of it was written.
    assert sum(n - 1 for n in per_source.values()) <= 1, {s: n for s, n in per_source.items() if n > 1}
    assert len(set(killed.values())) == 3, killed
