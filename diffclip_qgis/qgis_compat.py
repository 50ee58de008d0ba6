"""One plugin for QGIS 3.22 to 4.x: the QGIS names whose spelling changed after 3.22.

QGIS 3.30 to 3.36 moved many enums into ``Qgis`` (``QgsProcessing.TypeRaster`` became
``Qgis.ProcessingSourceType.Raster``), and QGIS 4 (Qt 6) drops the old spellings. Every such
name the plugin uses goes through :func:`enum_value`, newest spelling first, chosen by what the
running QGIS has, never by its version number::

    RASTER = enum_value("Qgis.ProcessingSourceType.Raster", "QgsProcessing.SourceType.TypeRaster")

Names that QGIS 3.22 already has in their QGIS 4 form (``Qgis.MessageLevel.Warning``,
``QgsTask.Flag.CanCancel``, all scoped Qt enums) are written directly. ``tests/qgis/test_qt6_readiness.py``
checks both.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from qgis.core import QgsField

#: Where the first part of a dotted name is looked up, in this order.
NAMESPACES = ("qgis.core", "qgis.gui", "qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets")

#: QgsField types: the Qt 6 spelling (QMetaType.Type, which QgsField takes from QGIS 3.38 on and
#: QGIS 4 requires) and the Qt 5 one (QVariant.Type, QGIS 3.22 to 3.36; PyQt6 has no QVariant.Type).
FIELD_TYPES: Dict[str, Tuple[str, str]] = {
    "Int": ("QMetaType.Type.Int", "QVariant.Type.Int"),
    "Double": ("QMetaType.Type.Double", "QVariant.Type.Double"),
    "String": ("QMetaType.Type.QString", "QVariant.Type.String"),
}


def resolve(dotted: str) -> Any:
    """The object that ``dotted`` (e.g. ``"Qgis.GeometryType.Polygon"``) names; AttributeError when it has none."""
    head, *rest = dotted.split(".")
    for module_name in NAMESPACES:
        module = importlib.import_module(module_name)
        if hasattr(module, head):
            obj = getattr(module, head)
            break
    else:
        raise AttributeError(f"{head} is in none of {', '.join(NAMESPACES)}")
    for part in rest:
        obj = getattr(obj, part)
    return obj


def enum_value(*names: str) -> Any:
    """The value of the first of ``names`` (dotted, newest spelling first) that this QGIS has."""
    for name in names:
        try:
            return resolve(name)
        except AttributeError:
            continue
    raise AttributeError("none of these exists in this QGIS: " + ", ".join(names))


def new_field(name: str, type_name: str, length: int = 0) -> QgsField:
    """A ``QgsField`` of ``type_name`` (a key of :data:`FIELD_TYPES`): QMetaType.Type where this QgsField
    takes it, else QVariant.Type."""
    for spelling in FIELD_TYPES[type_name]:
        try:
            field_type = resolve(spelling)
        except AttributeError:  # no QVariant.Type under Qt 6
            continue
        try:
            return QgsField(name, field_type, len=length)
        except TypeError:  # QgsField before QGIS 3.38 takes QVariant.Type only
            continue
    raise TypeError(f"QgsField takes none of {FIELD_TYPES[type_name]}")
