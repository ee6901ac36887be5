"""What the figures were measured on: they mean little without the machine."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    # Cores this process may run on (a container or taskset can give fewer than the host has).
    cores: int
    # None when torch sees no CUDA device.
    gpu_name: str | None
    torch_version: str
    python_version: str

    def describe(self) -> str:
        gpu = f"GPU {self.gpu_name}" if self.gpu_name else "no GPU"
        return (
            f"{self.cpu_model}, {self.cores} cores, {gpu}; "
            f"torch {self.torch_version}, Python {self.python_version}"
        )


def cpu_model_name() -> str:
    """The 'model name' line of /proc/cpuinfo; platform.processor() is often empty on Linux."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpu_name() -> str | None:
    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def this_machine() -> Machine:
    return Machine(
        cpu_model=cpu_model_name(),
        cores=usable_cores(),
        gpu_name=gpu_name(),
        torch_version=str(torch.__version__),
        python_version=platform.python_version(),
    )
