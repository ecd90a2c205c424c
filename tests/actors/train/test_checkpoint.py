"""Checkpoint files: atomic folders, pruning, no pickled code on load, RNG round trip, loss log."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from actors.train import checkpoint as ckpt
from actors.train.loss_log import LossLog, plot_loss


def _save(root, step):
    return ckpt.save_checkpoint(root, step, {"unet.a.lora_A.weight": torch.full((2, 2), float(step))},
                                {"optimizer": {"state": {}, "param_groups": []}, "rng": ckpt.capture_rng()},
                                {"settings": {"rank": 4}})


def test_latest_ignores_partial_folders_and_prune_keeps_the_newest(tmp_path):
    for step in (2, 4, 6):
        _save(tmp_path, step)
    (tmp_path / "checkpoints" / "step-000008.partial").mkdir()  # a writer killed mid-way
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000006"
    ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000004", "step-000006"]
    loaded = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert loaded.step == 6 and loaded.meta["settings"] == {"rank": 4}
    assert torch.equal(loaded.lora["unet.a.lora_A.weight"], torch.full((2, 2), 6.0))


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_training_state_with_pickled_objects_is_refused(tmp_path):
    path = _save(tmp_path, 1)
    torch.save({"optimizer": _Payload()}, path / ckpt.STATE_FILE)
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load_checkpoint(path)


def test_rng_states_round_trip(tmp_path):
    path = _save(tmp_path, 1)
    expected = (torch.rand(3), random.random(), np.random.rand(2))
    ckpt.restore_rng(ckpt.load_checkpoint(path).training_state["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1]
    assert np.array_equal(np.random.rand(2), expected[2])


def test_loss_log_truncates_after_a_checkpoint_and_plots(tmp_path):
    log = LossLog(tmp_path / "loss_log.csv")
    log.reset()
    for step in range(1, 6):
        log.append(step, 1.0 / step, 1e-4)
    log.truncate_after(3)
    assert [row[0] for row in log.read()] == [1, 2, 3]
    assert log.read()[1][1] == 0.5
    png = plot_loss(log.read(), tmp_path / "loss.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
