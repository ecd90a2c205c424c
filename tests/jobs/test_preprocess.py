"""jobs.preprocess end to end: one row per input, reasons, alignment quality, resume, ray job submit."""
from __future__ import annotations

import collections
import re
import shutil
import tempfile
import time
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from actors.align.template import LEFT_IRIS, RIGHT_IRIS, TEMPLATE_POINTS
from dataset.shards import read_shards
from dataset.sources import list_inputs
from jobs import preprocess
from dataset.sources import printable_source
from tests.corpus import build_corpus, corpus_input
from tests.jobs.helpers import (REPO, assert_one_line_error, free_port, job_env, kill_session, run_cli,
                                start_job, wait_for)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, package_photos):
    root = tmp_path_factory.mktemp("corpus")
    cases = build_corpus(root, package_photos)
    return corpus_input(root), cases


@pytest.fixture(scope="module")
def preprocessed(corpus, tmp_path_factory, ray_cluster):
    inputs, _ = corpus
    output = tmp_path_factory.mktemp("pre")
    code = preprocess.main(["--input", str(inputs), "--output", str(output), "--num-actors", "2", "--batch-size", "4"])
    assert code == 0
    return output


def test_one_row_per_input_with_expected_reasons(corpus, preprocessed):
    inputs, cases = corpus
    table = read_shards(preprocessed / "shards").to_pandas()
    assert sorted(table["source"]) == sorted(printable_source(s) for s in list_inputs(inputs)), \
        "every input ends in exactly one row"
    rows = table.set_index("source")
    wrong = []
    for case in cases:
        row = rows.loc[printable_source(case.source)]
        if not case.accepts(row["status"], row["reason"], int(row["num_faces"])):
            wrong.append((case.name, row["status"], row["reason"], sorted(case.expected_reasons)))
    assert not wrong, wrong
    assert len(cases) >= 30
    assert (table["status"] == "ok").sum() >= 4
    assert all(table.loc[table["status"] != "ok", "reason"].str.len() > 0)


def test_accepted_faces_are_aligned_to_the_template(preprocessed):
    from actors.align.aligner import FaceAligner

    table = read_shards(preprocessed / "shards")
    ok = [row for row in table.to_pylist() if row["status"] == "ok"]
    assert ok
    with FaceAligner() as aligner:
        for row in ok:
            assert len(row["landmarks"]) == 478 * 3
            crop = cv2.cvtColor(cv2.imdecode(np.frombuffer(row["crop"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert crop.shape == (512, 512, 3)
            landmarks = aligner.landmarks(crop)
            if landmarks is None:  # painted or extreme inputs the mesh accepted once but not on the crop
                continue
            eyes = landmarks[[LEFT_IRIS, RIGHT_IRIS], :2]
            assert np.linalg.norm(eyes - TEMPLATE_POINTS[:2], axis=1).max() <= 3.0, row["source"]


def test_manifest_counts_match_shards(preprocessed):
    import json

    manifest = json.loads((preprocessed / "manifest.json").read_text())
    table = read_shards(preprocessed / "shards", columns=["status"]).to_pandas()
    assert manifest["counts"]["total"] == len(table)
    assert manifest["counts"].get("ok", 0) == int((table["status"] == "ok").sum())
    assert manifest["packages"]["mediapipe"] == "0.10.21"


def test_shards_read_with_both_pandas_engines(preprocessed):
    for path in sorted((preprocessed / "shards").glob("*.parquet"))[:2]:
        a = pd.read_parquet(path, engine="pyarrow")
        b = pd.read_parquet(path, engine="fastparquet")
        assert list(a["source"]) == list(b["source"])
        for x, y in zip(a["landmarks"], b["landmarks"]):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_allclose(np.asarray(x), np.asarray(y))


def test_refuses_to_mix_runs_without_resume(corpus, preprocessed, capfd):
    inputs, _ = corpus
    code, _, err = run_cli(preprocess.main, ["--input", str(inputs), "--output", str(preprocessed)], capfd)
    assert_one_line_error(code, err, "already holds shards", "--resume")


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(corpus, tmp_path):
    inputs, _ = corpus
    output = tmp_path / "out"
    args = ["--input", str(inputs), "--output", str(output), "--num-actors", "1", "--batch-size", "1"]
    process = start_job("jobs.preprocess", *args, log_path=tmp_path / "first.log")
    started = wait_for(lambda: len(list((output / "shards").glob("part-*.parquet"))) >= 3, timeout=240)
    assert started, (tmp_path / "first.log").read_text()[-3000:]
    kill_session(process)
    first = read_shards(output / "shards", columns=["source"]).num_rows
    total = len(list_inputs(inputs))
    assert 0 < first < total, "the kill must land half way"

    resumed = subprocess.run([sys.executable, "-m", "jobs.preprocess", *args, "--resume"], cwd=REPO, env=job_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    sources = read_shards(output / "shards", columns=["source"]).column("source").to_pylist()
    duplicates = [s for s, n in collections.Counter(sources).items() if n > 1]
    assert not duplicates
    assert sorted(sources) == sorted(printable_source(s) for s in list_inputs(inputs))


@pytest.mark.slow
def test_ray_job_submit_to_a_real_head(tmp_path):
    """`ray start --head` on 127.0.0.1, `ray job submit`, wait for SUCCEEDED, check the shards."""
    photos = tmp_path / "photos"
    photos.mkdir()
    from tests.conftest import _astronaut

    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(_astronaut(), cv2.COLOR_RGB2BGR))
    (photos / "notes.jpg").write_text("not an image")
    output = tmp_path / "out"
    ray_bin = str(Path(sys.executable).parent / "ray")
    gcs_port, dashboard_port = free_port(), free_port()
    ray_temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs_port}", "--num-cpus=2",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         # Another Ray on this machine (the session fixture's) already holds the agent's default port.
         f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats",
         f"--temp-dir={ray_temp}"],
        env=job_env(), stdout=open(tmp_path / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        address = f"http://127.0.0.1:{dashboard_port}"
        import urllib.request

        def dashboard_up() -> bool:
            try:
                return urllib.request.urlopen(address + "/api/version", timeout=2).status == 200
            except OSError:
                return False

        assert wait_for(dashboard_up, timeout=120), (tmp_path / "head.log").read_text()[-3000:]
        command = [ray_bin, "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
                   "python", "-m", "jobs.preprocess", "--input", str(photos), "--output", str(output), "--num-actors", "1"]
        for _ in range(20):  # the dashboard answers a little before its job agent does
            submit = subprocess.run(command, env=job_env(), capture_output=True, text=True, timeout=600)
            text = submit.stdout + submit.stderr
            if "No available agent to submit job" not in text:
                break
            time.sleep(2)
        assert submit.returncode == 0, text[-4000:]
        # Exit code 0 also covers STOPPED: check the status text.
        assert re.search(r"Job 'raysubmit_\w+' succeeded", text), text[-4000:]
        table = read_shards(output / "shards").to_pandas().set_index("source")
        assert len(table) == 2
        assert table.loc[str(photos / "astronaut.jpg"), "status"] == "ok"
        assert table.loc[str(photos / "notes.jpg"), "reason"] == "not_an_image"
    finally:
        kill_session(head)
        shutil.rmtree(ray_temp, ignore_errors=True)
