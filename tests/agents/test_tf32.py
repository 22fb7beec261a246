"""TrainConfig.tf32: TensorFloat-32 on CUDA only, inside training, the process's settings kept."""

from __future__ import annotations

import pytest
import torch

from agents.config import TrainConfig
from agents.trainer import matmul_precision


@pytest.fixture
def restore_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_is_set_inside_the_block_on_cuda_and_restored(restore_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with matmul_precision(torch.device("cuda"), tf32=True):  # flags only: no GPU needed
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    with matmul_precision(torch.device("cuda"), tf32=False):  # the default: the paper's fp32
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32


def test_tf32_does_nothing_on_the_cpu(restore_flags):
    torch.backends.cuda.matmul.allow_tf32 = False
    with matmul_precision(torch.device("cpu"), tf32=True):
        assert not torch.backends.cuda.matmul.allow_tf32


def test_tf32_is_a_checked_bool_off_by_default():
    assert TrainConfig().tf32 is False
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "tf32": True}).tf32 is True
    with pytest.raises(ValueError, match="TrainConfig.tf32 must be a bool, got 'yes'"):
        TrainConfig(tf32="yes")
