"""Choosing the torch device."""
from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                "CUDA was requested but this PyTorch build sees no CUDA GPU. Choose device 'cpu' or 'auto', "
                "or install a CUDA build of PyTorch."
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"{name} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s).")
        return dev
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"Unknown device {name!r}: use auto, cpu, cuda or cuda:N.")


def describe_device(device: torch.device) -> str:
    """A human-readable name, e.g. 'CUDA 0: NVIDIA H200' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA {index}: {torch.cuda.get_device_name(index)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX).

    Only there does bf16 pay; elsewhere it would be emulated and slower.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)
