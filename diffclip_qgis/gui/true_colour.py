"""True-colour display of rasters whose bands carry wavelengths (bands nearest 640 / 550 / 460 nm, stretched)."""
from __future__ import annotations

from typing import List, Optional

from osgeo import gdal
from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterLayer

from ..qgis_compat import enum_value

RGB_NM = (640.0, 550.0, 460.0)
STRETCH = QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum
CUMULATIVE_CUT = enum_value("Qgis.RasterRangeLimit.CumulativeCut", "QgsRasterMinMaxOrigin.Limits.CumulativeCut")


def wavelengths(path: str) -> List[Optional[float]]:
    """Each band's wavelength in nm from its GDAL metadata (``wavelength``, with µm turned into nm), or None."""
    ds = gdal.Open(path)
    if ds is None:
        return []
    metadata = [ds.GetRasterBand(i).GetMetadata() for i in range(1, ds.RasterCount + 1)]
    ds = None  # closed now: a GDAL handle left to the garbage collector can outlive QGIS at exit
    out = []
    for meta in metadata:
        try:
            value = float(meta.get("wavelength", ""))
        except ValueError:
            out.append(None)
            continue
        micrometres = meta.get("wavelength_units", "").lower() in ("micrometers", "micrometres", "um", "µm")
        out.append(value * 1000.0 if micrometres or value < 30 else value)
    return out


def rgb_bands(path: str) -> Optional[List[int]]:
    """1-based bands nearest 640, 550 and 460 nm, or None without wavelengths or visible bands."""
    nm = wavelengths(path)
    known = [(i + 1, w) for i, w in enumerate(nm) if w is not None]
    if len(known) < 3:
        return None
    bands = [min(known, key=lambda b: abs(b[1] - target)) for target in RGB_NM]
    if any(abs(w - t) > 60 for (_, w), t in zip(bands, RGB_NM)):
        return None
    return [b for b, _ in bands]


def show_true_colour(layer: QgsRasterLayer) -> bool:
    """Show ``layer`` in true colour with a 2-98 % cumulative cut stretch; False when it has no wavelengths."""
    bands = rgb_bands(layer.source())
    if bands is None:
        return False
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
    layer.setRenderer(renderer)
    layer.setContrastEnhancement(STRETCH, CUMULATIVE_CUT)
    layer.triggerRepaint()
    return True
