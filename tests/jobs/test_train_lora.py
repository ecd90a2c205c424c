"""jobs.train_lora end to end on Ray: shards → filters → captions → GPU-requesting actor → LoRA files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jobs import train_lora
from tests.actors.train.shards import write_shards
from tests.jobs.helpers import assert_one_line_error, run_cli
from tests.tiny_sd import build_tiny_sd

ARGS = ("--rank", "4", "--steps", "6", "--resolution", "32", "--learning-rate", "1e-2", "--checkpoint-every", "3",
        "--sample-every", "0", "--min-face-size", "64", "--max-yaw", "30", "--balance-mst")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, aligned_faces):
    root = tmp_path_factory.mktemp("train_inputs")
    return write_shards(root / "pre", aligned_faces), build_tiny_sd(root / "sd")


@pytest.fixture(scope="module")
def trained(inputs, tmp_path_factory, ray_cluster):
    shards, base = inputs
    output = tmp_path_factory.mktemp("train") / "lora"
    code = train_lora.main(["--shards", str(shards), "--base-model", str(base), "--output", str(output), *ARGS])
    assert code == 0
    return output


def test_run_reads_filters_and_writes_every_output(trained):
    for name in ("pytorch_lora_weights.safetensors", "indianface_lora_kohya.safetensors", "loss_log.csv",
                 "loss_curve.png", "training_summary.json", "manifest.json"):
        assert (trained / name).is_file(), name
    manifest = json.loads((trained / "manifest.json").read_text())
    # 9 rows: 1 rejected (skipped), 1 face under 64 px, 1 face turned 48° → 6 kept
    assert manifest["counts"] == {"total": 9, "dropped": 3, "ok": 6}
    assert manifest["reasons"] == {"face_size": 1, "status": 1, "yaw": 1}
    # kept MSTs 3,3,6,2,2,8 → balanced to 2 rows per tone
    assert manifest["training_examples"] == 8
    # the test cluster has one logical GPU: the job asks for it; torch sees no CUDA, so it trains on CPU
    assert manifest["use_gpu"] is True and manifest["result"]["device"] == "cpu"
    assert manifest["result"]["final_step"] == 6


def test_existing_output_needs_resume_and_resume_continues(inputs, trained, ray_cluster, capfd):
    shards, base = inputs
    common = ["--shards", str(shards), "--base-model", str(base), "--output", str(trained)]
    code, _, err = run_cli(train_lora.main, [*common, *ARGS], capfd)
    assert_one_line_error(code, err, "pass --resume")
    more = [a if a != "6" else "8" for a in ARGS]  # --steps 8
    train_lora.main([*common, *more, "--resume"])
    result = json.loads((trained / "manifest.json").read_text())["result"]
    assert result["start_step"] == 6 and result["final_step"] == 8


def test_the_2d_engine_accepts_both_lora_files(inputs, trained, aligned_faces):
    from actors.request import AvatarRequest
    from actors.stylize2d.diffusers_engine import DiffusersOptions, DiffusersStylizer

    _, base = inputs
    request = AvatarRequest(engine="diffusers", size=256, strength=0.6)
    face = [aligned_faces["astronaut"]]

    def avatar(lora):
        options = DiffusersOptions(base_model=str(base), lora=None if lora is None else str(lora), lora_scale=1.0,
                                   steps=2, resolution=32)
        engine = DiffusersStylizer(options, device="cpu")
        with engine:
            return engine.stylize(face, "realistic", request, [7])[0].image.astype(np.int16)

    plain = avatar(None)
    diffusers_file = avatar(trained / "pytorch_lora_weights.safetensors")
    kohya_file = avatar(trained / "indianface_lora_kohya.safetensors")
    assert np.abs(diffusers_file - plain).max() > 0
    assert np.abs(kohya_file - diffusers_file).max() <= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [({"--shards": "missing"}, "no Parquet shards"), ({"--caption-template": "photo of {subject}"}, "{trigger}"),
     ({"--base-model": "missing"}, "not a folder"), ({"--rank": "0"}, "rank")],
)
def test_bad_arguments_exit_with_a_clear_message(inputs, tmp_path, capfd, change, message):
    shards, base = inputs
    values = {"--shards": str(shards), "--base-model": str(base), "--output": str(tmp_path / "out"), "--rank": "4"}
    values.update({k: (str(tmp_path / v) if v == "missing" else v) for k, v in change.items()})
    code, _, err = run_cli(train_lora.main, [item for pair in values.items() for item in pair], capfd)
    assert_one_line_error(code, err, message)
