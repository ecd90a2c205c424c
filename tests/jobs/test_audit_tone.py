"""`python -m jobs.audit_tone` on this project's layout and on another tool's, and the report's tone audit
section (new results and results from an older version). No Ray: the audit runs in-process."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.tone_guard import guard_tone
from dataset.report import MONK_BANDS, ToneAuditItem, build_report, tone_audit_rows, tone_items_from_results
from dataset.results import results_to_table
from jobs import audit_tone
from tests.jobs.helpers import REPO, job_env


def lighter_cooler(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] = np.clip(lab[..., 0] + 8.0, 0, 100)
    lab[..., 2] *= 0.75
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


def write_png(path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def avatars(aligned_faces):
    """{name: (face, {style: StylizedImage})}: realistic and cartoon of each package photo, plus a
    lightened-and-cooled realistic avatar (style "washed")."""
    engine, request = OfflineStylizer(), AvatarRequest()
    made = {}
    for name, face in aligned_faces.items():
        styles = {style: engine.stylize([face], style, request, [0])[0] for style in ("realistic", "cartoon")}
        styles["washed"] = StylizedImage(lighter_cooler(styles["realistic"].image), styles["realistic"].landmarks)
        made[name] = (face, styles)
    return made


@pytest.fixture(scope="module")
def project_dir(avatars, tmp_path_factory):
    """A jobs.generate-style folder (avatars/<id>/input.png + avatar_<style>.png) and its results.parquet."""
    root = tmp_path_factory.mktemp("generated")
    rows = []
    for name, (face, styles) in avatars.items():
        write_png(root / "avatars" / name / "input.png", face.crop)
        row = {"id": name, "source": f"{name}.png", "status": "ok", "ita_in": face.ita, "mst_in": face.mst,
               "styles": [], "avatar_paths": []}
        for style, avatar in styles.items():
            image, report = guard_tone(avatar, face, enabled=False)  # as written with --no-tone-lock
            write_png(root / "avatars" / name / f"avatar_{style}.png", image)
            row["styles"].append(style)
            row["avatar_paths"].append(f"avatars/{name}/avatar_{style}.png")
            for column, value in report.columns().items():
                row.setdefault(column, []).append(value)
        rows.append(row)
    pq.write_table(results_to_table(rows), root / "results.parquet")
    return root


def test_audits_this_projects_layout(project_dir, capsys):
    assert audit_tone.main([str(project_dir)]) == 0
    out = capsys.readouterr().out
    assert "Skin-tone audit of 6 avatars (6 measured)" in out and "MST 4–6" in out
    report = json.loads((project_dir / "tone_audit.json").read_text())
    assert report["counts"] == {"ok": 6}
    items = {(i["key"], i["style"]): i for i in report["items"]}
    for name in ("astronaut", "grace_hopper"):
        assert abs(items[(name, "realistic")]["delta_ita"]) < 2.0
        assert items[(name, "washed")]["lightening"] > 5.0 and items[(name, "washed")]["delta_hue"] < 0
    washed = next(r for r in report["table"] if r["style"] == "washed" and r["Monk band"] == "all")
    assert washed["lightened (> 3° ITA)"] == 1.0 and washed["avatars"] == 2
    lines = (project_dir / "tone_audit.csv").read_text().splitlines()
    assert len(lines) == 7 and lines[0].startswith("key,style,avatar,status")


def test_the_audit_measures_itself_and_agrees_with_the_stored_figures(project_dir):
    stored, _ = tone_items_from_results(pq.read_table(project_dir / "results.parquet").to_pylist())
    measured = json.loads((project_dir / "tone_audit.json").read_text())["items"]
    # the audit detects landmarks on both images, the guard had the engine's too: same picture
    by_style = {(item["style"]): [] for item in measured}
    for item in measured:
        by_style[item["style"]].append(item["lightening"])
    assert max(by_style["washed"]) > 5.0 and max(abs(v) for v in by_style["realistic"]) < 2.5
    assert max(i.lightening for i in stored if i.style == "washed") > 5.0


def test_audits_another_tools_files(avatars, tmp_path, capsys):
    inputs, outputs = tmp_path / "photos", tmp_path / "results"
    for name, (face, styles) in avatars.items():
        write_png(inputs / f"{name}.png", face.crop)
        write_png(outputs / f"{name}_anime.png", styles["cartoon"].image)  # style from the suffix
        write_png(outputs / f"{name}.png", styles["washed"].image)  # no suffix: --style
    write_png(outputs / "stranger_anime.png", np.zeros((64, 64, 3), np.uint8))  # no input of that name: skipped
    assert audit_tone.main(["--inputs", str(inputs), "--avatars", str(outputs), "--style", "editor"]) == 0
    report = json.loads((outputs / "tone_audit.json").read_text())
    styles = sorted({item["style"] for item in report["items"]})
    assert styles == ["editor"]  # --style overrides every suffix
    assert audit_tone.main(["--inputs", str(inputs), "--avatars", str(outputs), "--out", str(tmp_path / "audit")]) == 0
    report = json.loads((tmp_path / "audit" / "tone_audit.json").read_text())
    by_style = {}
    for item in report["items"]:
        by_style.setdefault(item["style"], []).append(item)
    assert sorted(by_style) == ["anime", "avatar"] and len(by_style["anime"]) == 2
    assert all(i["lightening"] > 5.0 for i in by_style["avatar"])


def test_avatars_without_a_face_are_counted_not_fatal(avatars, tmp_path, capsys):
    face, _ = avatars["astronaut"]
    write_png(tmp_path / "avatars" / "x" / "input.png", face.crop)
    write_png(tmp_path / "avatars" / "x" / "avatar_blank.png", np.full((512, 512, 3), 200, np.uint8))
    assert audit_tone.main([str(tmp_path)]) == 0
    assert "1 not: no_face_in_avatar" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "is not a folder"),
    (["{empty}"], "no avatars/ folder"),
    (["--inputs", "{empty}"], "give an OUTPUT_DIR"),
    (["--inputs", "{empty}", "--avatars", "{empty}"], "holds no images"),
    (["{empty}", "--inputs", "{empty}", "--avatars", "{empty}"], "not both"),
])
def test_bad_folders_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
    result = subprocess.run([sys.executable, "-m", "jobs.audit_tone", *argv], cwd=REPO, env=job_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tone_audit_figures():
    items = [ToneAuditItem("anime", 2, +1.0, -2.0, 1.5, +1.0), ToneAuditItem("anime", 6, +4.0, -1.0, 3.0, +4.0),
             ToneAuditItem("anime", 6, -2.0, +3.0, 2.0, -0.5), ToneAuditItem("sketch", 9, -1.0, None, None, -1.0)]
    rows = {(r["style"], r["Monk band"]): r for r in tone_audit_rows(items)}
    mid = rows[("anime", MONK_BANDS[1][0])]
    assert (mid["avatars"], mid["mean |ΔITA|"], mid["max |ΔITA|"], mid["max |Δhue|"]) == (2, 3.0, 4.0, 3.0)
    assert mid["lightened (> 3° ITA)"] == 0.5 and rows[("anime", "all")]["avatars"] == 3
    dark = rows[("sketch", MONK_BANDS[2][0])]
    assert dark["mean |Δhue|"] is None and dark["lightened (> 3° ITA)"] == 0.0


def test_report_has_the_tone_audit_tables(project_dir, tmp_path):
    html = build_report(project_dir)
    assert "id='tone-audit-written'" in html and "id='tone-audit-raw'" in html
    assert "older version" not in html
    # results from a version without the audit columns: ΔITA from ita_out − ita_in, and a note
    table = pq.read_table(project_dir / "results.parquet")
    old_columns = [n for n in table.column_names if not n.startswith(("delta_", "hue_", "lightening", "tone_"))
                   or n == "tone_correction"]
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    pq.write_table(table.select(old_columns), old_dir / "results.parquet")
    old_html = build_report(old_dir)
    assert "older version" in old_html and "id='tone-audit-written'" in old_html
    items, complete = tone_items_from_results(pq.read_table(old_dir / "results.parquet").to_pylist())
    assert not complete and len(items) == 6 and all(i.delta_hue is None for i in items)
    assert isinstance(table.schema.field("tone_ok").type, pa.ListType)
