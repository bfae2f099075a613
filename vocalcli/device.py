"""Device selection, autocast and seeding: the one place that knows about accelerators.

Library code receives a ``torch.device`` from `resolve_device` and never calls ``.cuda()``.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from vocalcli.errors import DeviceError


def resolve_device(device: str = "auto", gpu: bool = False) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; ``gpu=True`` means cuda. A missing device is a DeviceError."""
    name = getattr(device, "value", device) or "auto"
    if gpu:
        if name not in ("auto", "cuda"):
            raise DeviceError(f"--gpu means cuda but --device {name} was also given; pass only one")
        name = "cuda"
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA was requested (--gpu/--device cuda) but this torch "
                f"({torch.__version__}) sees no CUDA device; drop --gpu to train on "
                + ("mps" if _mps_available() else "cpu")
                + ", or install a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name == "mps":
        if not _mps_available():
            raise DeviceError("--device mps needs Apple-silicon macOS with an MPS-enabled torch; use --device cpu")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def autocast(device: torch.device, bf16_on_cpu: bool = False) -> contextlib.AbstractContextManager:
    """Mixed precision where it pays: fp16/bf16 autocast on CUDA; a no-op on CPU unless asked (bench)."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and bf16_on_cpu:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from vocal.yaml's one seed."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (None = leave as is)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def tune_for(device: torch.device) -> None:
    """CUDA speed switches for fixed-shape training: cuDNN picks the fastest conv algorithm per shape
    (the crops never change shape), TF32 matmuls/convs where autocast leaves float32."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
