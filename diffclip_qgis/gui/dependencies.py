"""Is PyTorch importable in QGIS's Python, and if not, the exact command that installs it.

Pure Python (no Qt), so the commands can be tested for every platform on any machine.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from typing import Optional

TORCH_INDEX = "https://download.pytorch.org/whl/{build}"
CUDA_BUILD = "cu121"
MACOS_PYTHON = "/Applications/QGIS.app/Contents/MacOS/bin/python3"
NUMPY_PIN = '"numpy<2"'  # QGIS's GDAL bindings are built against numpy 1.x


@dataclass
class TorchStatus:
    """``available`` with the version, or the reason the import failed."""

    available: bool
    version: str = ""
    error: str = ""


def torch_status() -> TorchStatus:
    """Try to import torch (any failure, e.g. a broken DLL or a numpy mismatch, counts as missing)."""
    try:
        torch = importlib.import_module("torch")
        return TorchStatus(True, version=str(getattr(torch, "__version__", "")))
    except Exception as e:  # noqa: BLE001 (ImportError, OSError from DLLs, numpy ABI errors...)
        return TorchStatus(False, error=f"{e.__class__.__name__}: {e}")


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (so a CUDA build of torch is worth installing)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def pep668_applies() -> bool:
    """The system Python is marked externally managed (Debian 12, Ubuntu 23.04 and later)."""
    stdlib = sysconfig.get_paths().get("stdlib", "")
    return bool(stdlib) and os.path.isfile(os.path.join(stdlib, "EXTERNALLY-MANAGED"))


def qgis_python(platform: str = sys.platform) -> str:
    """The interpreter QGIS embeds, as a command.

    Inside QGIS ``sys.executable`` is QGIS itself or whichever ``python3`` comes first on PATH
    (e.g. a pyenv shim), so the path is derived from ``sys.exec_prefix`` and the running version.
    """
    if platform.startswith("win"):
        return "python"  # in the OSGeo4W Shell
    name = "python3" if platform == "darwin" else f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = os.path.join(sys.exec_prefix, "bin", name)
    if os.path.isfile(candidate):
        return candidate
    return MACOS_PYTHON if platform == "darwin" else sys.executable


def install_command(platform: str = sys.platform, cuda: bool = False, python: Optional[str] = None,
                    externally_managed: Optional[bool] = None) -> str:
    """The shell command that installs torch (CPU or CUDA build) into QGIS's Python.

    Windows: to run in the OSGeo4W Shell. macOS: the QGIS app's Python (CPU build; no CUDA).
    Linux: the system Python QGIS uses, per user, with ``--break-system-packages`` where PEP 668 applies.
    """
    python = python or qgis_python(platform)
    build = CUDA_BUILD if cuda and platform != "darwin" else "cpu"
    index = f" --index-url {TORCH_INDEX.format(build=build)}"
    if platform.startswith("win"):
        return f"{python} -m pip install torch {NUMPY_PIN}{index}"
    if platform == "darwin":
        return f"{python} -m pip install torch {NUMPY_PIN}"
    if externally_managed is None:
        externally_managed = pep668_applies()
    flags = "--user --break-system-packages" if externally_managed else "--user"
    return f"{python} -m pip install {flags} torch {NUMPY_PIN}{index}"


def venv_alternative(cuda: bool = False, python: Optional[str] = None) -> str:
    """Linux alternative to ``--break-system-packages``: a venv that still sees QGIS, GDAL and numpy."""
    build = CUDA_BUILD if cuda else "cpu"
    venv = "~/.local/share/diffclip-venv"
    return (f"{python or qgis_python('linux')} -m venv --system-site-packages {venv} && "
            f"{venv}/bin/pip install torch {NUMPY_PIN} --index-url {TORCH_INDEX.format(build=build)} && "
            f"PYTHONPATH=$({venv}/bin/python -c 'import site; print(site.getsitepackages()[0])') qgis")
