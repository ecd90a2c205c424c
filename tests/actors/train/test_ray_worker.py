"""The trainer actor asks Ray for the GPU, gets it, and derives its device from it."""
from __future__ import annotations

import pytest

from actors.train.config import TrainConfig
from actors.train.ray_worker import trainer_actor


def _config(tmp_path, device):
    return TrainConfig(base_model=str(tmp_path), output_dir=str(tmp_path / "out"), device=device)


def test_gpu_actor_receives_the_logical_gpu_and_uses_cuda0(ray_cluster, tmp_path):
    ray = ray_cluster
    actor = trainer_actor(_config(tmp_path, "cuda"), use_gpu=True, num_cpus=0.5, cuda_available=lambda: True)
    try:
        placement = ray.get(actor.placement.remote(), timeout=120)
    finally:
        ray.kill(actor)
    assert placement["gpu_ids"] == [0]
    assert placement["cuda_visible_devices"] == "0"
    assert placement["device"] == "cuda:0"


def test_cpu_actor_gets_no_gpu_and_auto_falls_back_to_cpu(ray_cluster, tmp_path):
    ray = ray_cluster
    actor = trainer_actor(_config(tmp_path, "auto"), use_gpu=False, num_cpus=0.5, cuda_available=lambda: False)
    try:
        placement = ray.get(actor.placement.remote(), timeout=120)
    finally:
        ray.kill(actor)
    assert placement["gpu_ids"] == []
    assert placement["device"] == "cpu"


def test_cuda_without_a_visible_card_fails_inside_the_actor(ray_cluster, tmp_path):
    ray = ray_cluster
    actor = trainer_actor(_config(tmp_path, "cuda"), use_gpu=True, num_cpus=0.5, cuda_available=lambda: False)
    try:
        with pytest.raises(ray.exceptions.RayTaskError, match="CUDA sees no device"):
            ray.get(actor.placement.remote(), timeout=120)
    finally:
        ray.kill(actor)
