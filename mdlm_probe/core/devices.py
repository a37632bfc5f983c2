"""`--device`: refuse a device this torch cannot use in one line that says what is there instead.

torch itself fails later and deep inside a load ("Torch not compiled with CUDA enabled", an
AssertionError). `check_device` is called where a device is chosen (the `--device` option, `load_model`,
training) so the user sees which device was asked for and which are available.
"""

from __future__ import annotations

import torch

from .exceptions import BadInput


def available_devices() -> list[str]:
    """cpu, then cuda:0 ... and mps where this torch and machine have them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(device: str | torch.device | None) -> None:
    """BadInput unless `device` (None = the default, cpu) names a device this process can use."""
    if device is None:
        return
    have = available_devices()
    listed = ", ".join(have)
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise BadInput(f"--device {device}: not a device name (cpu, cuda, cuda:1, mps ...); available: {listed}") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise BadInput(f"--device {device}: {why}; available: {listed}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadInput(f"--device {device}: there are {torch.cuda.device_count()} CUDA devices; available: {listed}")
        return
    if dev.type == "mps" and "mps" in have:
        return
    raise BadInput(f"--device {device}: not available here; available: {listed}")
