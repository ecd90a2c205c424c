"""UI pieces that do not need a browser: the Blocks layout and the result rendering."""
import re


from actors.metrics.skin_tone import MST_HEX
from serve.service import AvatarService
from serve.settings import ServeSettings
from serve.ui import build_ui, identity_markdown, mst_swatch, tone_html, _render


def test_blocks_have_the_inputs_and_outputs_the_issue_asks_for(tmp_path):
    demo = build_ui(AvatarService(ServeSettings(results_dir=tmp_path)))
    kinds = {type(block).__name__ for block in demo.blocks.values()}
    assert {"Image", "Checkbox", "Radio", "Button", "Gallery", "File", "HTML"} <= kinds
    [photo] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "photo"]
    assert photo.sources == ["upload", "webcam"]


def test_tone_table_shows_itas_and_monk_swatches():
    row = {"ita_in": 12.5, "mst_in": 7, "styles": ["cartoon"], "ita_out": [30.0], "mst_out": [5], "tone_correction": [-2.5]}
    html = tone_html(row)
    assert "12.5° (tan)" in html and "30.0° (intermediate)" in html and "guard -2.5°" in html
    assert re.findall(r"background:#([0-9a-f]{6})", html) == [MST_HEX[6], MST_HEX[4]]


def test_unknown_mst_gets_an_empty_swatch():
    assert "background" not in mst_swatch(None) and "background" not in mst_swatch(11)


def test_identity_text_uses_the_same_person_threshold():
    text = identity_markdown({"styles": ["realistic", "anime"], "identity": [0.61, None], "identity_reason": [None, "no_face"]})
    assert "0.61 — same person" in text and "n/a (no_face)" in text


def test_render_of_a_rejected_job_shows_the_reason_and_no_files(tmp_path):
    service = AvatarService(ServeSettings(results_dir=tmp_path))
    record = service.store.create({"modes": ["2d"]}, b"x", "jpg")
    record = service.store.update(record.id, status="rejected", reason="no_face", detail="No face was found.")
    values = _render(service, record)
    assert values[0] == record.id and "no_face" in values[2] and "No face was found." in values[2]
    assert values[1] is None and values[5] == "" and values[6] == []
