"""Suggested samples on the map: where a label would help the model most, and the menu that labels them.

The layer is the GeoPackage that ``workflow.suggest`` writes (rank, best_class, second_class,
margin, best_name, second_name), shown as orange diamonds with a question mark, labelled
"best / second". It sits on top of the layer tree, apart from the sample layer; a marker is
deleted once it is labelled or skipped, and the layer leaves the project with the last one, or
when new suggestions replace it; its file goes with it, unless a user filled in fields of their own
there. Undoing a label given from a marker brings the marker back (its file too, if it went with
the last one), unless new suggestions have replaced the markers since or are being made (a label
undone then keeps its marker off).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from qgis.core import (QgsCoordinateReferenceSystem, QgsFeature, QgsFields, QgsFontMarkerSymbolLayer,
                       QgsMarkerSymbol, QgsPalLayerSettings, QgsPointXY, QgsProject, QgsTextBufferSettings,
                       QgsTextFormat, QgsVectorLayer, QgsVectorLayerSimpleLabeling)
from qgis.PyQt.QtCore import QLockFile, QObject, pyqtSignal
from qgis.PyQt.QtGui import QColor, QFont, QFontInfo, QIcon, QPixmap
from qgis.PyQt.QtWidgets import QMenu

from ..core.classes import ClassInfo
from ..core.files import remove_geopackage
from ..gis.points import SUGGESTION_FIELDS, SUGGESTIONS_LAYER, user_work
from ..qgis_layers import layer_file
from . import tr
from .reservations import reserve_number
from .sample_layer import nearest_feature, write_point_file

PROPERTY = "diffclip/suggestions"
COLOUR = "#ff7f00"
SUGGESTION_FILE = re.compile(r"diffclip_suggestions_(\d{3,})\.gpkg")
SUGGESTION_RESERVATION = ".diffclip_suggestions_{number:03d}.lock"   # held by the job that will write that file


@dataclass
class Suggestion:
    """One marker: its feature id, point (layer CRS) and the model's two best class ids."""

    fid: int
    point: QgsPointXY
    best: int
    second: int


@dataclass
class RemovedMarker:
    """A marker taken off the map: the suggestions it belonged to (``SuggestionMarkers.shown``), its file, CRS, feature."""

    shown: int
    path: str
    crs: QgsCoordinateReferenceSystem
    feature: QgsFeature


def reserve_suggestion_path(folder: str) -> Tuple[str, QLockFile]:
    """``diffclip_suggestions_NNN.gpkg`` in ``folder``, NNN above every such file's and not reserved by another
    running job, and its reservation (see ``reservations.reserve_number``)."""
    number, lock = reserve_number(folder, SUGGESTION_FILE, SUGGESTION_RESERVATION)
    return os.path.join(folder, f"diffclip_suggestions_{number:03d}.gpkg"), lock


def suggestion_symbol() -> QgsMarkerSymbol:
    """An orange diamond with a white question mark: unlike the samples' circles."""
    symbol = QgsMarkerSymbol.createSimple({"name": "diamond", "color": COLOUR, "size": "6",
                                           "outline_color": "#000000", "outline_width": "0.4"})
    # the desktop's own font: QGIS's default (Dingbats) is missing on many systems and warns at each project load
    font = QFontInfo(QFont()).family()
    symbol.appendSymbolLayer(QgsFontMarkerSymbolLayer.create({"font": font, "chr": "?", "color": "#ffffff", "size": "3.6"}))
    return symbol


def suggestion_labeling() -> QgsVectorLayerSimpleLabeling:
    """ "best / second" class names next to each marker, with a white halo."""
    settings = QgsPalLayerSettings()
    settings.fieldName = "\"best_name\" || ' / ' || \"second_name\""
    settings.isExpression = True
    text = QgsTextFormat()
    text.setColor(QColor("#000000"))
    text.setSize(9)
    halo = QgsTextBufferSettings()
    halo.setEnabled(True)
    halo.setSize(1.0)
    halo.setColor(QColor("#ffffff"))
    text.setBuffer(halo)
    settings.setFormat(text)
    return QgsVectorLayerSimpleLabeling(settings)


def suggestion_menu(suggestion: Suggestion, classes: List[ClassInfo],
                    choose: Callable[[Optional[ClassInfo]], None]) -> QMenu:
    """The model's two best guesses, the other classes, then Skip; ``choose`` gets the class (None: skip)."""
    by_id = {c.id: c for c in classes}
    guesses = [by_id[i] for i in dict.fromkeys((suggestion.best, suggestion.second)) if i in by_id]
    others = [c for c in classes if c not in guesses]
    menu = QMenu()
    for group in (guesses, others):
        for cls in group:
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(cls.colour))
            menu.addAction(QIcon(pixmap), cls.name).triggered.connect(lambda _=False, c=cls: choose(c))
        if group:
            menu.addSeparator()
    menu.addAction(tr("Skip")).triggered.connect(lambda _=False: choose(None))
    return menu


class SuggestionMarkers(QObject):
    """The project's suggestion layer; ``changed(left)`` follows every marker removed."""

    changed = pyqtSignal(int)

    def __init__(self, project: QgsProject, parent=None):
        super().__init__(parent)
        self.project = project
        self.shown = 0   # counts the suggestion files shown: a removed marker belongs to one of them
        self.suggesting = False   # while new suggestions are being made, no marker comes back (see restore)

    def layer(self) -> Optional[QgsVectorLayer]:
        for layer in self.project.mapLayers().values():
            if isinstance(layer, QgsVectorLayer) and layer.customProperty(PROPERTY) and layer.isValid():
                return layer
        return None

    def count(self) -> int:
        layer = self.layer()
        return 0 if layer is None else layer.featureCount()

    def show(self, path: str) -> int:
        """Replace the markers with those in ``path`` (on top of the layer tree); how many there are."""
        self.clear()
        self.shown += 1   # the markers removed so far no longer come back
        return self._add_layer(path)

    def _add_layer(self, path: str) -> int:
        """Put the markers in ``path`` on the map, on top of the layer tree; how many there are."""
        layer = QgsVectorLayer(f"{path}|layername={SUGGESTIONS_LAYER}", tr("DiffCLIP suggested samples"), "ogr")
        if not layer.isValid() or not layer.featureCount():
            return 0
        layer.setCustomProperty(PROPERTY, True)
        layer.renderer().setSymbol(suggestion_symbol())
        layer.setLabeling(suggestion_labeling())
        layer.setLabelsEnabled(True)
        self.project.addMapLayer(layer, False)
        self.project.layerTreeRoot().insertLayer(0, layer)
        return layer.featureCount()

    def clear(self) -> None:
        """Remove the markers, and their file unless a user added work to it (labels went to the sample layer)."""
        layer = self.layer()
        if layer is None:
            return
        path = layer_file(layer)
        self.project.removeMapLayer(layer.id())
        if SUGGESTION_FILE.fullmatch(os.path.basename(path)) \
                and not user_work(path, SUGGESTIONS_LAYER, schema=SUGGESTION_FIELDS):
            remove_geopackage(path)   # one still open elsewhere stays behind, harmless

    def near(self, point: QgsPointXY, tolerance: float) -> Optional[Suggestion]:
        """The marker closest to ``point`` within ``tolerance`` (both in the layer CRS)."""
        feature = nearest_feature(self.layer(), point, tolerance)
        if feature is None:
            return None
        return Suggestion(feature.id(), feature.geometry().asPoint(), int(feature["best_class"]),
                          int(feature["second_class"]))

    def remove(self, fid: int) -> Optional[RemovedMarker]:
        """Delete a marker (labelled or skipped); the layer goes with the last one. Returns it, for :meth:`restore`."""
        layer = self.layer()
        if layer is None:
            return None
        removed = RemovedMarker(self.shown, layer_file(layer), layer.crs(),
                                QgsFeature(layer.getFeature(fid)))
        layer.dataProvider().deleteFeatures([fid])
        layer.triggerRepaint()
        left = layer.featureCount()
        if not left:
            self.clear()
        self.changed.emit(left)
        return removed

    def restore(self, marker: RemovedMarker) -> bool:
        """Put a removed marker back, unless other suggestions replaced its own since, or are being made
        (their file may take the name of the marker's): False then."""
        if marker.shown != self.shown or self.suggesting:
            return False
        layer = self.layer()
        if layer is None:   # it was the last one: its file went with it (a file there now is another's)
            if os.path.exists(marker.path) or not self._write(marker):
                return False
            self._add_layer(marker.path)
        else:
            feature = QgsFeature(marker.feature)
            if feature.fields().indexOf("fid") >= 0:   # a new id: the file may have given the old one away
                feature["fid"] = None
            if not layer.dataProvider().addFeatures([feature])[0]:
                return False
            layer.triggerRepaint()
        self.changed.emit(self.count())
        return True

    def _write(self, marker: RemovedMarker) -> bool:
        """A suggestion file at the marker's path holding the marker alone."""
        fields = QgsFields()
        for field in marker.feature.fields():
            if field.name() != "fid":   # the file numbers its features itself
                fields.append(field)
        return not write_point_file(marker.path, SUGGESTIONS_LAYER, fields, marker.crs, self.project.transformContext(),
                                    [marker.feature])
