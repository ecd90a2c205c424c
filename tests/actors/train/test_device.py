"""Device and precision resolution for the trainer."""
from __future__ import annotations

import pytest
import torch

from actors.train.device import resolve_device, training_dtype


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [("auto", True, "cuda:0"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda:0"),
     ("cuda:1", True, "cuda:1")],
)
def test_resolution(requested, available, expected):
    assert str(resolve_device(requested, lambda: available)) == expected


def test_cuda_without_a_card_names_the_igpu_pitfall():
    with pytest.raises(RuntimeError, match="integrated GPU is never used"):
        resolve_device("cuda", lambda: False)
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_device("mps", lambda: False)


def test_cpu_trains_in_fp32_whatever_is_asked():
    cpu = torch.device("cpu")
    assert training_dtype(cpu, "fp16") == torch.float32
    assert training_dtype(torch.device("cuda:0"), "fp16") == torch.float16
    assert training_dtype(torch.device("cuda:0"), "bf16") == torch.bfloat16
    assert training_dtype(torch.device("cuda:0"), "no") == torch.float32
