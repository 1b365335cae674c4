"""Where autoq computes: CUDA when present, else the CPU with every core in use."""

from __future__ import annotations

import os

import torch

from autoq.settings import get_settings


def default_device() -> torch.device:
    """CUDA if a GPU is visible, else the CPU; the settings' ``device`` (``AUTOQ_DEVICE``)
    overrides."""
    requested = get_settings().device
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads() -> int:
    """Use every core this process may run on for intra-op parallelism; returns the count.

    torch's default can exceed the cores a container grants (it counts the host's), which
    oversubscribes a 2-core machine; the affinity mask is the honest count. The settings'
    ``threads`` (``AUTOQ_THREADS``) overrides it.
    """
    requested = get_settings().threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = requested if requested is not None else cores or 1
    torch.set_num_threads(threads)
    return threads


def pin_deepspeed_accelerator() -> None:
    """Tell DeepSpeed (imported by AIMET and by the cost profiler) which accelerator to use.

    Left to itself it probes for one and prints a warning on every CPU-only start; the choice is
    the same as :func:`default_device`'s. An explicit ``DS_ACCELERATOR`` is respected.
    """
    os.environ.setdefault("DS_ACCELERATOR", default_device().type)
