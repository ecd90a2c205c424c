"""The engine on the project's real-photo fixtures (`tests/fixtures/faces/`), where present."""
import pytest

real_faces = pytest.importorskip("tests.real_faces")


@pytest.fixture(scope="module")
def fixtures():
    try:
        paths = real_faces.real_face_paths()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    from actors.align.aligner import FaceAligner

    with FaceAligner() as aligner:
        return {path.stem: aligner.align(real_faces.load_rgb(path)) for path in paths}


@pytest.fixture(scope="module")
def heads(makehuman_engine, fixtures):
    return dict(zip(fixtures, makehuman_engine.reconstruct(list(fixtures.values()))))


def test_every_real_face_fits_within_two_percent(heads):
    for name, mesh in heads.items():
        mesh.check_inputs()
        assert mesh.landmark_nme <= 0.02, name


def test_speaking_photo_opens_the_jaw(heads):
    if "obama_speaking" not in heads:
        pytest.skip("obama_speaking.jpg is not among the fixtures")
    assert heads["obama_speaking"].morph_weights["jawOpen"] > 0.3
    closed = [heads[name].morph_weights["jawOpen"] for name in ("older_man", "man_glasses") if name in heads]
    assert all(weight < 0.15 for weight in closed)
