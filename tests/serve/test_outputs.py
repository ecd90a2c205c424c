import zipfile

from serve.outputs import collect_files, write_obj_bundle


def make_outputs(job_dir):
    out = job_dir / "avatars" / "abc"
    out.mkdir(parents=True)
    for name in ("avatar_cartoon.png", "head_texture.png", "views.png", "view_-90.png", "view_0.png", "view_90.png"):
        (out / name).write_bytes(b"\x89PNG" + name.encode())
    (out / "head.glb").write_bytes(b"glTF")
    (out / "head.obj").write_text("mtllib head.mtl\nmtllib ../../escape.mtl\nv 0 0 0\n")
    (out / "head.mtl").write_text("newmtl skin\nmap_Kd head_texture.png\nmap_Bump /etc/passwd\n")
    (job_dir / "escape.mtl").write_text("map_Kd x.png\n")
    return "avatars/abc/"


def test_collect_files_publishes_fixed_names(tmp_path):
    prefix = make_outputs(tmp_path)
    row = {
        "styles": ["cartoon", "anime"],
        "avatar_paths": [prefix + "avatar_cartoon.png", prefix + "missing.png"],
        "glb_path": prefix + "head.glb",
        "obj_path": prefix + "head.obj",
        "texture_path": prefix + "head_texture.png",
        "views_path": prefix + "views.png",
    }
    files = collect_files(row, tmp_path)
    assert set(files) == {
        "avatar_cartoon.png", "head.glb", "head_texture.png", "views.png", "head_obj.zip",
        "view_-90.png", "view_0.png", "view_90.png",
    }
    assert files["head.glb"] == prefix + "head.glb"


def test_paths_outside_the_job_folder_are_left_out(tmp_path):
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (tmp_path / "secret.png").write_bytes(b"secret")
    row = {"styles": ["cartoon"], "avatar_paths": ["../secret.png"], "glb_path": str(tmp_path / "secret.png")}
    assert collect_files(row, job_dir) == {}


def test_obj_bundle_holds_obj_mtl_and_texture_only(tmp_path):
    prefix = make_outputs(tmp_path)
    bundle = tmp_path / "bundle.zip"
    members = write_obj_bundle(tmp_path / prefix / "head.obj", bundle)
    assert members == ["head.obj", "head.mtl", "head_texture.png"]
    with zipfile.ZipFile(bundle) as archive:
        assert archive.namelist() == members
        assert archive.read("head_texture.png") == b"\x89PNGhead_texture.png"
