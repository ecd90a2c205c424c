"""The Ray wrapper: one actor that runs `LoraTrainer` on the GPU Ray assigns it.

The actor asks for `num_gpus=1` when the run wants a GPU. Ray then sets CUDA_VISIBLE_DEVICES in the
actor to the card it picked, so the trainer's "cuda:0" is that card. Ray counts only NVIDIA GPUs:
on a laptop with an Intel iGPU plus an NVIDIA card the cluster has one GPU, the NVIDIA one; on an
iGPU-only laptop it has none and training runs on the CPU (slowly) with `--device cpu`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from actors.train.config import TrainConfig
from actors.train.examples import TrainingExample


class TrainerWorker:
    """Plain class behind the actor (Ray wraps it in `trainer_actor`)."""

    def __init__(self, config: TrainConfig, cuda_available: Callable[[], bool] | None = None) -> None:
        import logging

        # The worker's stdout reaches the driver's console and the dashboard: show training progress there.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.config = config
        self.cuda_available = cuda_available

    def placement(self) -> dict:
        """What Ray gave this worker and the device the trainer would use, without touching CUDA memory."""
        import ray

        from actors.train.device import resolve_device

        return {
            "gpu_ids": list(ray.get_gpu_ids()),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "device": str(resolve_device(self.config.device, self.cuda_available)),
        }

    def fit(self, examples: Sequence[TrainingExample], stop_at: int | None = None) -> dict:
        import logging

        import ray

        from actors.train.trainer import LoraTrainer

        trainer = LoraTrainer(self.config, cuda_available=self.cuda_available)
        if ray.get_gpu_ids() and trainer.device.type == "cpu":
            logging.getLogger(__name__).warning(
                "Ray assigned GPU %s but torch sees no CUDA device (a CPU-only torch build?): training on the CPU.",
                ray.get_gpu_ids())
        return trainer.fit(examples, stop_at=stop_at).to_dict()


def trainer_actor(config: TrainConfig, *, use_gpu: bool, num_cpus: float = 1.0,
                  cuda_available: Callable[[], bool] | None = None):
    """Start the trainer actor: `num_gpus=1` when `use_gpu`, else `num_gpus=0`. Returns its handle."""
    import ray

    if num_cpus <= 0:
        raise ValueError(f"`num_cpus` must be positive, got {num_cpus}.")
    remote = ray.remote(TrainerWorker).options(num_gpus=1 if use_gpu else 0, num_cpus=num_cpus, max_restarts=0)
    return remote.remote(config, cuda_available)
