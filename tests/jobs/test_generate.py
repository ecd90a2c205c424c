"""jobs.generate end to end: 2D + 3D on package photos and on the bad-input corpus, report, resume."""
from __future__ import annotations

import collections
import json
import subprocess
import sys

import cv2
import pyarrow.parquet as pq
import pytest

from dataset.sources import list_inputs
from jobs import generate
from dataset.sources import printable_source
from tests.corpus import build_corpus, corpus_input
from tests.jobs.helpers import REPO, assert_one_line_error, job_env, kill_session, run_cli, start_job, wait_for


def write_photos(folder, package_photos, copies: int = 1):
    """Package photos (and flipped / scaled copies) as JPEG files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rgb in package_photos.items():
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for copy in range(copies):
            variant = cv2.flip(bgr, 1) if copy % 2 else bgr
            scale = 1.0 + 0.15 * (copy // 2)
            variant = cv2.resize(variant, None, fx=scale, fy=scale) if scale != 1.0 else variant
            cv2.imwrite(str(folder / f"{name}_{copy:02d}.jpg"), variant)
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory, package_photos, ray_cluster):
    root = tmp_path_factory.mktemp("gen")
    photos = write_photos(root / "photos", package_photos)
    (photos / "cat.jpg").write_bytes(b"<html>not a photo</html>")
    output = root / "out"
    code = generate.main(["--input", str(photos), "--output", str(output), "--modes", "2d,3d", "--style", "cartoon,realistic",
                          "--num-actors", "2", "--batch-size", "2"])
    assert code == 0
    return photos, output


def test_one_row_per_input_with_files(generated):
    photos, output = generated
    table = pq.read_table(output / "results.parquet").to_pandas().set_index("source")
    assert sorted(table.index) == sorted(list_inputs(photos))
    assert table.loc[str(photos / "cat.jpg"), "status"] == "rejected"
    assert table.loc[str(photos / "cat.jpg"), "reason"] == "not_an_image"
    ok = table[table["status"] == "ok"]
    assert len(ok) == 2
    for row in ok.itertuples():
        assert list(row.styles) == ["cartoon", "realistic"]
        for path in row.avatar_paths:
            assert (output / path).is_file()
        for path in (row.glb_path, row.obj_path, row.texture_path, row.views_path):
            assert (output / path).is_file(), path
        assert (output / row.glb_path).read_bytes()[:4] == b"glTF"
        assert row.nme <= 0.05
        assert all(abs(out - row.ita_in) <= 6.0 for out in row.ita_out), "tone guard keeps the input's skin tone"
        assert row.ms_align > 0 and row.ms_2d > 0 and row.ms_3d > 0


def test_manifest_and_report(generated):
    _, output = generated
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"] == {"total": 3, "ok": 2, "rejected": 1}
    assert manifest["reasons"] == {"not_an_image": 1}
    report = (output / "report.html").read_text()
    for plot in ("throughput", "ita", "mst", "identity"):
        assert f"id='plot-{plot}' src='data:image/png;base64," in report, plot
    assert report.count(".glb") >= 2


def test_invalid_options_fail_before_any_work(tmp_path, capfd):
    code, _, err = run_cli(generate.main, ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--style", "watercolour"],
                           capfd)
    assert_one_line_error(code, err, "unknown style 'watercolour'")
    code, _, err = run_cli(generate.main, ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--flame", str(tmp_path)],
                           capfd)
    assert_one_line_error(code, err, "--flame-embedding")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bad_input_corpus_through_generate(tmp_path, package_photos, ray_cluster):
    root = tmp_path / "corpus"
    cases = build_corpus(root, package_photos)
    output = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*") if output not in p.parents}
    assert generate.main(["--input", str(corpus_input(root)), "--output", str(output), "--modes", "2d,3d", "--style", "cartoon",
                          "--no-views", "--num-actors", "2", "--batch-size", "4"]) == 0
    after = {p for p in tmp_path.rglob("*") if output not in p.parents and p != output}
    assert after == before, f"files written outside the output folder: {sorted(after - before)[:5]}"
    table = pq.read_table(output / "results.parquet").to_pandas()
    assert sorted(table["source"]) == sorted(printable_source(s) for s in list_inputs(corpus_input(root)))
    assert set(table["status"]) <= {"ok", "rejected", "failed"}
    assert (table["status"] == "failed").sum() == 0, table[table["status"] == "failed"][["source", "detail"]].to_string()
    assert all(table.loc[table["status"] != "ok", "reason"].str.len() > 0)
    assert len(cases) >= 20


@pytest.mark.slow
def test_killed_driver_resumes_without_recomputing(tmp_path, package_photos):
    """Three stages (alignment, 2D, 3D); the driver and its local Ray are SIGKILLed half way."""
    photos = write_photos(tmp_path / "photos", package_photos, copies=8)
    output = tmp_path / "out"
    args = ["--input", str(photos), "--output", str(output), "--modes", "2d,3d", "--style", "cartoon", "--no-views",
            "--num-actors", "1", "--batch-size", "1", "--no-report"]
    process = start_job("jobs.generate", *args, log_path=tmp_path / "first.log")
    parts = output / "results_parts"
    assert wait_for(lambda: len(list(parts.glob("part-*.parquet"))) >= 3, timeout=300), (tmp_path / "first.log").read_text()[-3000:]
    kill_session(process)
    finished_before = {p.name for p in parts.glob("part-*.parquet")}
    total = len(list_inputs(photos))
    assert len(finished_before) < total, "the kill must land half way"

    # The killed run recorded its settings before any work: resuming it with others is refused, naming them.
    other = subprocess.run([sys.executable, "-m", "jobs.generate", *args, "--resume", "--style", "anime"], cwd=REPO,
                           env=job_env(), capture_output=True, text=True, timeout=600)
    assert_one_line_error(other.returncode, other.stderr, "styles ['cartoon'] → ['anime']")
    assert {p.name for p in parts.glob("part-*.parquet")} == finished_before

    resumed = subprocess.run([sys.executable, "-m", "jobs.generate", *args, "--resume"], cwd=REPO, env=job_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    per_source = collections.Counter()
    for part in parts.glob("part-*.parquet"):
        per_source.update(pq.read_table(part, columns=["source"]).column("source").to_pylist())
    recomputed = {source: n - 1 for source, n in per_source.items() if n > 1}
    assert recomputed == {}, "finished items were generated again"
    assert sorted(per_source) == sorted(list_inputs(photos))
    assert pq.read_table(output / "results.parquet").num_rows == total


@pytest.mark.slow
def test_generate_with_the_diffusers_engine_on_a_tiny_pipeline(tmp_path, package_photos, ray_cluster):
    """The job's diffusers path end to end: user weights from a local folder, a LoRA, one row per input."""
    from diffusers import UNet2DConditionModel

    from tests.tiny_sd import build_tiny_sd, make_tiny_lora

    base = build_tiny_sd(tmp_path / "sd")
    lora = make_tiny_lora(UNet2DConditionModel.from_pretrained(base / "unet"), tmp_path / "lora.safetensors", seed=3)
    photos = write_photos(tmp_path / "photos", {"astronaut": package_photos["astronaut"]})
    output = tmp_path / "out"
    assert generate.main(["--input", str(photos), "--output", str(output), "--modes", "2d", "--style", "anime",
                          "--engine", "diffusers", "--base-model", str(base), "--lora", str(lora), "--steps", "2",
                          "--size", "256", "--device", "cpu", "--num-actors", "1", "--no-report"]) == 0
    row = pq.read_table(output / "results.parquet").to_pylist()[0]
    assert row["status"] == "ok", row["detail"]
    assert row["engine"] == "diffusers"
    image = cv2.imread(str(output / row["avatar_paths"][0]))
    assert image.shape == (256, 256, 3)
    assert row["ita_out"][0] is not None


def test_diffusers_engine_without_weights_is_a_clear_error(tmp_path, capfd):
    code, _, err = run_cli(generate.main, ["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--modes", "2d",
                                           "--engine", "diffusers", "--base-model", str(tmp_path / "missing")], capfd)
    assert_one_line_error(code, err, "diffusers", str(tmp_path / "missing"))
