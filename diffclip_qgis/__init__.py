"""DiffCLIP for QGIS: few-shot, language-driven classification of multimodal rasters.

Only ``classFactory`` lives here; torch and the compute core load lazily when first used.
"""
import os

# torch's OpenMP threads otherwise spin while waiting and fight QGIS (and each other) for
# the cores; sleeping threads made the demo 159 s -> 85 s on 2 busy cores. Must be set
# before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS entry point."""
    from .plugin import DiffClipPlugin

    return DiffClipPlugin(iface)
