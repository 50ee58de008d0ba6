"""DiffCLIP for QGIS: few-shot, language-driven classification of multimodal rasters.

Only ``classFactory`` lives here; torch and the compute core load lazily when first used.
"""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS entry point."""
    from .plugin import DiffClipPlugin

    return DiffClipPlugin(iface)
