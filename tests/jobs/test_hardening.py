"""Issue 13 items 6–11 and issue 10's user errors, through the jobs' real command lines.

Every user error is one line on stderr and exit code 2, before any work (no traceback, no Ray start
unless the check needs the cluster). Each test fails on the jobs of commit 80ce486 (errors raised as
`SystemExit("text")`, exit code 1, or tracebacks; no output checks, no lock, no resume check, no
resource check; a `shards/` subfolder taken for a preprocess output).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import cv2
import pyarrow.parquet as pq
import pytest

from dataset.shards import read_shards
from dataset.sources import list_inputs
from jobs import generate, preprocess
from tests.jobs.helpers import REPO, assert_one_line_error, job_env, run_cli, wait_for
from tests.jobs.test_generate import write_photos

JOBS = {"generate": generate, "preprocess": preprocess}


@pytest.fixture
def photos(tmp_path, package_photos):
    return write_photos(tmp_path / "photos", {"astronaut": package_photos["astronaut"]})


def _cli(job: str, photos, output, *extra: str) -> list[str]:
    return ["--input", str(photos), "--output", str(output), *extra]


# ------------------------------------------------------------------ issue 10: user errors are one line


@pytest.mark.parametrize("extra, fragments", [
    (["--engine", "diffusers"], ["diffusers", "--base-model"]),
    (["--engine", "diffusers", "--base-model", "{tmp}/no-such-model"], ["no-such-model", "does not exist"]),
    (["--style", "watercolour"], ["unknown style 'watercolour'", "cartoon"]),
    (["--style", "all,anime"], ["all", "cannot be combined"]),
    (["--batch-size", "0"], ["--batch-size must be at least 1, got 0"]),
    (["--num-actors", "0"], ["--num-actors must be at least 1"]),
    (["--modes", "3d", "--head-engine", "flame"], ["flame", "--flame FILE", "--flame-embedding"]),
    (["--modes", "3d", "--flame", "{tmp}/FLAME2020.pkl", "--flame-embedding", "{tmp}/embedding.npz"],
     ["FLAME model not found", "FLAME2020.pkl"]),
    (["--size", "300"], ["size", "multiple of 8"]),
])
def test_user_errors_are_one_line_exit_2_before_any_work(tmp_path, photos, capfd, extra, fragments):
    output = tmp_path / "out"
    argv = _cli("generate", photos, output, *[value.replace("{tmp}", str(tmp_path)) for value in extra])
    code, out, err = run_cli(generate.main, argv, capfd)
    assert_one_line_error(code, err, *fragments)
    assert not output.exists(), "nothing is created before the options are checked"


def test_a_user_error_is_one_line_in_the_real_process(tmp_path, photos):
    """The same through `python -m jobs.generate`: the console a user sees (exit status, whole stderr)."""
    for extra, fragment in ((["--style", "watercolour"], "unknown style"),
                            (["--engine", "diffusers"], "--base-model")):
        done = subprocess.run([sys.executable, "-m", "jobs.generate", *_cli("generate", photos, tmp_path / "out"), *extra],
                              cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.count("\n") == 1 and fragment in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert done.stdout == ""


# ------------------------------------------------------------------------- 7. output inside the input


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("where", ["equal", "inside"])
def test_7_output_equal_to_or_inside_the_input_is_refused(tmp_path, photos, capfd, job, where):
    output = photos if where == "equal" else photos / "results" / "run1"
    code, out, err = run_cli(JOBS[job].main, _cli(job, photos, output), capfd)
    assert_one_line_error(code, err, "inside --input", str(photos))
    assert sorted(p.name for p in photos.iterdir()) == ["astronaut_00.jpg"], "nothing written into the input"


# -------------------------------------------------------------------- 11. outputs that cannot be written


@pytest.mark.parametrize("job", JOBS)
def test_11_output_under_a_file_is_refused(tmp_path, photos, capfd, job):
    a_file = tmp_path / "hostname"
    a_file.write_text("box\n")
    for output in (a_file / "x", a_file):
        code, out, err = run_cli(JOBS[job].main, _cli(job, photos, output), capfd)
        assert_one_line_error(code, err, str(a_file), "is a file, not a folder")
    if os.path.isfile("/etc/hostname"):  # the probe's own case
        code, out, err = run_cli(JOBS[job].main, _cli(job, photos, "/etc/hostname/x"), capfd)
        assert_one_line_error(code, err, "/etc/hostname is a file")


def _read_only_mount_works(target) -> bool:
    try:
        done = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o ro,size=1m none '{target}'"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("case", ["to_create", "existing"])
def test_11_unwritable_output_is_refused(tmp_path, photos, job, case):
    """An output on a read-only file system: unwritable for root too (these tests run as root, which
    permission bits do not stop, so a 0o500 folder would prove nothing). The mount lives in a private
    mount namespace (`unshare --mount`): nobody else sees it, and it goes when the job exits."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if not _read_only_mount_works(locked):
        pytest.skip("cannot mount a read-only tmpfs in a private mount namespace here (needs unshare and CAP_SYS_ADMIN)")
    output = locked / "run" if case == "to_create" else locked
    command = [sys.executable, "-m", f"jobs.{job}", *_cli(job, photos, output)]
    script = f"mount -t tmpfs -o ro,size=1m none '{locked}' && exec " + " ".join(f"'{part}'" for part in command)
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script], cwd=REPO, env=job_env(), capture_output=True,
                          text=True, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, str(output), "Read-only file system")


# --------------------------------------------------------------------- 9. --resume with other settings


def test_9_generate_resume_with_other_settings_is_refused_naming_each_difference(tmp_path, capfd):
    from actors.engines import default_catalog
    from actors.stylize2d.offline import OfflineStylizer

    class OtherOffline(OfflineStylizer):
        name = "offline-b"

    empty, other = tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    other.mkdir()
    output = tmp_path / "out"
    base = _cli("generate", empty, output, "--modes", "2d,3d", "--style", "cartoon", "--no-report")
    code, out, err = run_cli(generate.main, base, capfd)
    assert code == 0, err
    assert json.loads((output / "manifest.json").read_text())["settings"]["styles"] == ["cartoon"]

    catalog = default_catalog().with_stylizer(OtherOffline)
    cases = [
        (["--style", "anime"], ["styles ['cartoon'] → ['anime']"]),
        (["--modes", "3d"], ["modes ['2d', '3d'] → ['3d']"]),
        (["--engine", "offline-b"], ["engine 'offline' → 'offline-b'"]),
        (["--seed", "7", "--texture-size", "512"], ["seed 0 → 7", "texture_size 1024 → 512"]),
        (["--no-views"], ["views True → False"]),
    ]
    for change, fragments in cases:
        code, out, err = run_cli(generate.main, [*base, *change, "--resume"], capfd, catalog=catalog)
        assert_one_line_error(code, err, "--resume with other settings", *fragments)
    code, out, err = run_cli(generate.main, ["--input", str(other), *base[2:], "--resume"], capfd)
    assert_one_line_error(code, err, f"input '{empty}' → '{other}'")
    code, out, err = run_cli(generate.main, [*base, "--resume"], capfd)
    assert code == 0, err  # the same settings resume
    code, out, err = run_cli(generate.main, [*base, "--resume", "--batch-size", "3", "--num-actors", "1"], capfd)
    assert code == 0, err  # how the work is spread is not a setting of the rows


def test_9_preprocess_resume_with_other_settings_is_refused(tmp_path, capfd):
    empty, other = tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    other.mkdir()
    output = tmp_path / "out"
    assert run_cli(preprocess.main, _cli("preprocess", empty, output), capfd)[0] == 0
    code, out, err = run_cli(preprocess.main, [*_cli("preprocess", empty, output), "--resume", "--imfdb"], capfd)
    assert_one_line_error(code, err, "imfdb False → True")
    code, out, err = run_cli(preprocess.main, [*_cli("preprocess", other, output), "--resume"], capfd)
    assert_one_line_error(code, err, f"input '{empty}' → '{other}'")
    # An output folder holds one job's output: generate may not overwrite a preprocess output's manifest.
    code, out, err = run_cli(generate.main, _cli("generate", empty, output), capfd)
    assert_one_line_error(code, err, "holds the output of a preprocess job")


# ----------------------------------------------------------------- 10. resources the cluster cannot give


@pytest.mark.parametrize("job", JOBS)
def test_10_actors_larger_than_the_cluster_fail_with_the_numbers(tmp_path, photos, capfd, ray_cluster, job):
    output = tmp_path / "out"
    code, out, err = run_cli(JOBS[job].main, _cli(job, photos, output, "--cpus-per-actor", "3"), capfd)
    assert_one_line_error(code, err, "ask for 3 CPUs each", "largest node has 2 CPUs", "--cpus-per-actor")
    code, out, err = run_cli(JOBS[job].main, _cli(job, photos, output, "--num-actors", "3", "--cpus-per-actor", "1"),
                             capfd)
    assert_one_line_error(code, err, "CPUs in all", "3×1 CPUs", "Ray has 2 CPUs;")
    assert not list(output.rglob("*.parquet")) and not (output / "avatars").exists(), "no work was started"


# -------------------------------------------------------------------- 8. one job per output folder


@pytest.mark.slow
@pytest.mark.parametrize("job", JOBS)
def test_8_a_second_job_on_the_same_output_is_refused(tmp_path, package_photos, ray_cluster, job):
    photos = write_photos(tmp_path / "photos", package_photos, copies=3)
    output = tmp_path / "out"
    argv = _cli(job, photos, output, "--num-actors", "2", "--batch-size", "1")
    if job == "generate":
        argv += ["--modes", "3d", "--no-views", "--no-report"]
    outcome: dict = {}

    def first() -> None:
        try:
            outcome["code"] = JOBS[job].main(argv)
        except BaseException as error:  # surfaced by the assertions below
            outcome["error"] = error

    started = time.monotonic()
    thread = threading.Thread(target=first)
    thread.start()
    assert wait_for(lambda: (output / ".lock").is_file() and (output / ".lock").read_text().strip(), timeout=60), outcome
    time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))  # the probe's case: started 2 s apart
    second = subprocess.run([sys.executable, "-m", f"jobs.{job}", *argv], cwd=REPO, env=job_env(),
                            capture_output=True, text=True, timeout=120)
    first_still_running = thread.is_alive()
    thread.join(timeout=600)
    assert first_still_running, "the first job ended before the second started: the lock was not tested"
    assert_one_line_error(second.returncode, second.stderr, str(output), "in use by another job", f"pid {os.getpid()}")
    assert outcome.get("code") == 0, outcome
    if job == "generate":
        sources = pq.read_table(output / "results.parquet", columns=["source"]).column("source").to_pylist()
    else:
        sources = read_shards(output / "shards", columns=["source"]).column("source").to_pylist()
    assert sorted(sources) == sorted(list_inputs(photos)), "one row per input, none twice"


# ------------------------------------------------------------- 6. a preprocess output by its manifest


@pytest.mark.slow
def test_6_a_photo_folder_with_a_shards_subfolder_is_a_photo_folder(tmp_path, package_photos, ray_cluster, capfd):
    photos = tmp_path / "photos"
    (photos / "shards").mkdir(parents=True)
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(package_photos["astronaut"], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "shards" / "grace_hopper.jpg"), cv2.cvtColor(package_photos["grace_hopper"], cv2.COLOR_RGB2BGR))
    output = tmp_path / "out"
    code, out, err = run_cli(generate.main, _cli("generate", photos, output, "--modes", "3d", "--no-views",
                                                 "--num-actors", "1", "--no-report"), capfd)
    assert code == 0, err[-3000:]
    table = pq.read_table(output / "results.parquet").to_pandas().set_index("source")
    assert sorted(table.index) == [str(photos / "astronaut.jpg"), str(photos / "shards" / "grace_hopper.jpg")]
    assert (table["status"] == "ok").all(), table[["status", "reason", "detail"]]


def test_6_generate_on_the_preprocess_output_of_an_empty_folder_is_an_empty_result(tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    shards = tmp_path / "pre"
    assert run_cli(preprocess.main, _cli("preprocess", empty, shards), capfd)[0] == 0
    output = tmp_path / "out"
    code, out, err = run_cli(generate.main, _cli("generate", shards, output), capfd)
    assert code == 0, err
    assert "0 inputs to process" in out
    assert pq.read_table(output / "results.parquet").num_rows == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"] == {"total": 0} and manifest["state"] == "finished"
    assert (output / "report.html").is_file()


def test_6_an_unfinished_preprocess_output_is_refused_as_input(tmp_path, capfd):
    """A preprocess run that was stopped leaves a manifest saying so: its shards are not all the inputs."""
    empty = tmp_path / "empty"
    empty.mkdir()
    shards = tmp_path / "pre"
    assert run_cli(preprocess.main, _cli("preprocess", empty, shards), capfd)[0] == 0
    manifest = json.loads((shards / "manifest.json").read_text())
    (shards / "manifest.json").write_text(json.dumps({**manifest, "state": "running"}))
    code, out, err = run_cli(generate.main, _cli("generate", shards, tmp_path / "out"), capfd)
    assert_one_line_error(code, err, "has not finished", "--resume")
