"""Band metadata of a GDAL raster: band names, wavelengths (nm) and bad-band flags.

Supported conventions (the first one complete for all bands wins):

* per band, default or ``ENVI`` domain: ``wavelength`` + ``wavelength_units`` and ``bbl``
  (EnMAP-Box / ENVI-to-GeoTIFF exports, GDAL's ENVI driver);
* per band, ``IMAGERY`` domain: ``CENTRAL_WAVELENGTH_UM`` (GDAL >= 3.10);
* dataset level, ``ENVI`` or default domain: ``wavelength = {a, b, ...}``,
  ``wavelength units = ...`` and ``bbl = {1, 0, ...}`` (ENVI headers).

``bbl`` is ENVI's bad band list: 1 = good, 0 = bad.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from osgeo import gdal

from ..core.source import ModalityInfo

_NM_PER_UNIT = {
    "nanometers": 1.0, "nanometer": 1.0, "nm": 1.0,
    "micrometers": 1000.0, "micrometer": 1000.0, "microns": 1000.0, "micron": 1000.0,
    "um": 1000.0, "µm": 1000.0, "μm": 1000.0,
    "millimeters": 1e6, "millimeter": 1e6, "mm": 1e6,
}
_DOMAINS = ("", "ENVI")


def modality_info(ds: gdal.Dataset, name: str) -> ModalityInfo:
    """What the raster's metadata tells about its bands; unknown fields stay ``None``."""
    count = ds.RasterCount
    bands = [ds.GetRasterBand(i + 1) for i in range(count)]
    band_md = [_band_metadata(b) for b in bands]
    dataset_md = [_lower_keys(ds.GetMetadata(domain) or {}) for domain in _DOMAINS]
    return ModalityInfo(
        name=name,
        wavelengths=_wavelengths(band_md, dataset_md, bands, count),
        bad_bands=_bad_bands(band_md, dataset_md, count),
        band_names=[b.GetDescription() or f"band {i + 1}" for i, b in enumerate(bands)],
    )


def _lower_keys(md: Dict[str, str]) -> Dict[str, str]:
    return {k.lower().replace(" ", "_"): v for k, v in md.items()}


def _band_metadata(band: gdal.Band) -> Dict[str, str]:
    md: Dict[str, str] = {}
    for domain in reversed(_DOMAINS):  # the default domain wins over ENVI
        md.update(_lower_keys(band.GetMetadata(domain) or {}))
    return md


def _parse_list(text: Optional[str]) -> Optional[List[float]]:
    """``'{1.5, 2, 3}'`` or ``'1.5,2,3'`` -> floats; ``None`` when not a number list."""
    if not text:
        return None
    try:
        return [float(v) for v in text.strip().strip("{}").replace(",", " ").split()]
    except ValueError:
        return None


def _to_nm(values: List[float], units: Optional[str]) -> Optional[List[float]]:
    """Wavelengths in nm; without units, values below 100 are taken as micrometres."""
    key = (units or "").strip().lower()
    if key in _NM_PER_UNIT:
        factor = _NM_PER_UNIT[key]
    elif key in ("", "unknown"):
        factor = 1000.0 if max(values) < 100 else 1.0
    else:  # "Index", wavenumbers, ...: not a wavelength in a length unit
        return None
    return [v * factor for v in values]


def _wavelengths(band_md, dataset_md, bands, count) -> Optional[List[float]]:
    per_band = [_parse_list(md.get("wavelength")) for md in band_md]
    if all(v is not None and len(v) == 1 for v in per_band):
        units = next((md["wavelength_units"] for md in band_md if md.get("wavelength_units")), None)
        return _to_nm([v[0] for v in per_band], units)
    imagery = [b.GetMetadataItem("CENTRAL_WAVELENGTH_UM", "IMAGERY") for b in bands]
    if all(imagery):
        return _to_nm([float(v) for v in imagery], "um")
    for md in dataset_md:
        values = _parse_list(md.get("wavelength"))
        if values is not None and len(values) == count:
            return _to_nm(values, md.get("wavelength_units"))
    return None


def _bad_bands(band_md, dataset_md, count) -> Optional[List[bool]]:
    per_band = [_parse_list(md.get("bbl")) for md in band_md]
    if any(per_band):
        return [bool(v) and v[0] == 0 for v in per_band]
    for md in dataset_md:
        values = _parse_list(md.get("bbl"))
        if values is not None and len(values) == count:
            return [v == 0 for v in values]
    return None
