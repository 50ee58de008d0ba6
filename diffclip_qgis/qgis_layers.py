"""What Processing and the dock both ask of a QGIS map layer."""
from __future__ import annotations

from qgis.core import QgsMapLayer, QgsProviderRegistry

OUTPUT_PROPERTY = "diffclip/output"  # set on the layers a run adds: not offered as inputs


def layer_file(layer: QgsMapLayer) -> str:
    """The file a map layer reads ("" for one that is not a file; its path may hold a ``|``)."""
    return QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("path") or ""
