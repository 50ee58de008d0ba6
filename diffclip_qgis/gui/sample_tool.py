"""Point-and-click labelling: left click labels the clicked pixel with the selected class,
right click removes the nearest sample, Ctrl+Z undoes. The pixel under the cursor is outlined
in the class colour. A left click on a suggested sample opens its menu instead: the model's two
best guesses, the other classes, Skip (undoing a label given there brings the marker back)."""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

from qgis.core import (Qgis, QgsApplication, QgsCoordinateTransform, QgsCsException, QgsGeometry, QgsPointXY,
                       QgsRasterLayer, QgsRectangle)
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QMenu

from ..core.classes import ClassInfo
from ..gis.raster import holds_data_at
from ..qgis_compat import enum_value
from ..qgis_layers import layer_file
from . import tr
from .sample_layer import SampleLayerError, SampleStore
from .suggestions import RemovedMarker, Suggestion, SuggestionMarkers, suggestion_menu

Notify = Callable[[str, Qgis.MessageLevel], None]
POLYGON_GEOMETRY = enum_value("Qgis.GeometryType.Polygon", "QgsWkbTypes.GeometryType.PolygonGeometry")


class PixelGrid:
    """The pixel grid of a raster layer: which pixel a point falls in, its centre and outline (layer CRS)."""

    def __init__(self, layer: QgsRasterLayer):
        self.layer, extent = layer, layer.extent()
        self.x0, self.y0 = extent.xMinimum(), extent.yMaximum()
        self.rows, self.cols = layer.height(), layer.width()
        self.dx, self.dy = extent.width() / self.cols, extent.height() / self.rows

    def pixel(self, point: QgsPointXY) -> Optional[Tuple[int, int]]:
        row = math.floor((self.y0 - point.y()) / self.dy)
        col = math.floor((point.x() - self.x0) / self.dx)
        return (row, col) if 0 <= row < self.rows and 0 <= col < self.cols else None

    def centre(self, row: int, col: int) -> QgsPointXY:
        return QgsPointXY(self.x0 + (col + 0.5) * self.dx, self.y0 - (row + 0.5) * self.dy)

    def rect(self, row: int, col: int, shrink: float = 0.0) -> QgsRectangle:
        x, y = self.x0 + col * self.dx, self.y0 - row * self.dy
        sx, sy = shrink * self.dx, shrink * self.dy
        return QgsRectangle(x + sx, y - self.dy + sy, x + self.dx - sx, y - sy)


class SampleMapTool(QgsMapTool):
    """Labels pixels of the first of the ``inputs()`` with ``current_class()`` in the sample ``store``, and
    ``suggestions``."""

    def __init__(self, canvas: QgsMapCanvas, store: SampleStore, inputs: Callable[[], List[QgsRasterLayer]],
                 current_class: Callable[[], Optional[ClassInfo]], classes: Callable[[], List[ClassInfo]],
                 notify: Notify, suggestions: SuggestionMarkers):
        super().__init__(canvas)
        self.store, self.inputs, self.current_class, self.classes, self.notify = (
            store, inputs, current_class, classes, notify)
        self.suggestions = suggestions
        self.setCursor(QgsApplication.getThemeCursor(QgsApplication.Cursor.CapturePoint))
        self.band: Optional[QgsRubberBand] = None
        self.menu: Optional[QMenu] = None  # the open suggestion menu

    def grid_layer(self) -> Optional[QgsRasterLayer]:
        """The first input: samples sit on its pixel centres."""
        layers = self.inputs()
        return layers[0] if layers else None

    # -- geometry helpers ---------------------------------------------------------------------
    def _to_layer(self, layer, point: QgsPointXY) -> QgsPointXY:
        transform = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), layer.crs(),
                                           self.canvas().mapSettings().transformContext())
        return transform.transform(point)

    def _near(self, layer, map_point: QgsPointXY) -> Tuple[QgsPointXY, float]:
        """``map_point`` in ``layer``'s CRS and the click tolerance there (at least a pixel of the first input)."""
        radius = self.searchRadiusMU(self.canvas())
        rect = QgsRectangle(map_point.x() - radius, map_point.y() - radius,
                            map_point.x() + radius, map_point.y() + radius)
        to_layer = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), layer.crs(),
                                          self.canvas().mapSettings().transformContext())
        tolerance = to_layer.transformBoundingBox(rect).width() / 2
        raster = self.grid_layer()
        if raster is not None and raster.crs() == layer.crs():
            tolerance = max(tolerance, raster.rasterUnitsPerPixelX())
        return to_layer.transform(map_point), tolerance

    def _hit(self, map_point: QgsPointXY):
        """(grid, row, col) of the pixel of the first input under ``map_point``, or None."""
        raster = self.grid_layer()
        if raster is None:
            return None
        grid = PixelGrid(raster)
        try:
            pixel = grid.pixel(self._to_layer(raster, map_point))
        except QgsCsException:  # outside the area where the CRS conversion is defined
            return None
        return None if pixel is None else (grid, *pixel)

    # -- events ---------------------------------------------------------------------------------
    def canvasMoveEvent(self, event: QgsMapMouseEvent):  # noqa: N802 (QGIS API)
        hit, cls = self._hit(event.mapPoint()), self.current_class()
        if hit is None or cls is None:
            if self.band is not None:
                self.band.hide()
            return
        grid, row, col = hit
        if self.band is None:
            self.band = QgsRubberBand(self.canvas(), POLYGON_GEOMETRY)
            self.band.setWidth(2)
        colour = QColor(cls.colour)
        self.band.setStrokeColor(colour)
        colour.setAlpha(70)
        self.band.setFillColor(colour)
        self.band.setToGeometry(QgsGeometry.fromRect(grid.rect(row, col)), grid.layer.crs())
        self.band.show()

    def canvasReleaseEvent(self, event: QgsMapMouseEvent):  # noqa: N802
        try:
            if event.button() == Qt.MouseButton.LeftButton:
                if not self.ask_suggestion(event.mapPoint()):
                    self.add_at(event.mapPoint())
            elif event.button() == Qt.MouseButton.RightButton:
                self.remove_near(event.mapPoint())
        except SampleLayerError as e:
            self.notify(str(e), Qgis.MessageLevel.Critical)

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() == Qt.Key.Key_Z and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            event.accept()
            self.undo()
        else:
            event.ignore()

    def deactivate(self):
        if self.band is not None:
            self.band.hide()
        super().deactivate()

    # -- actions --------------------------------------------------------------------------------
    def add_at(self, map_point: QgsPointXY, cls: Optional[ClassInfo] = None,
               on_undo: Optional[Callable[[], None]] = None) -> bool:
        """Label the pixel under ``map_point`` (canvas CRS) with ``cls`` (default: the selected class);
        a sample already there is replaced. Undoing it also calls ``on_undo``."""
        cls = cls or self.current_class()
        if cls is None:
            self.notify(tr("Add a class and select it in the class table first."), Qgis.MessageLevel.Warning)
            return False
        if self.grid_layer() is None:
            self.notify(tr("Tick an input raster first: samples are placed on its pixels."), Qgis.MessageLevel.Warning)
            return False
        hit = self._hit(map_point)
        if hit is None:
            self.notify(tr("The click is outside the first input raster."), Qgis.MessageLevel.Info)
            return False
        grid, row, col = hit
        empty = self._empty_input(grid, row, col)
        if empty is not None:
            self.notify(tr("{name} holds no data at this pixel: a sample there would be left out of the run. "
                           "Label a pixel where every input holds data.").format(name=empty), Qgis.MessageLevel.Warning)
            return False
        layer = self.store.ensure_layer(grid.layer.crs(), self.classes())
        to_samples = QgsCoordinateTransform(grid.layer.crs(), layer.crs(),
                                            self.canvas().mapSettings().transformContext())
        centre = to_samples.transform(grid.centre(row, col))
        inside = self.store.in_rect(to_samples.transformBoundingBox(grid.rect(row, col, shrink=0.01)))
        self.store.apply([(centre, cls.id, cls.name)], delete=[f.id() for f in inside], on_undo=on_undo)
        return True

    def _empty_input(self, grid: PixelGrid, row: int, col: int) -> Optional[str]:
        """The name of an input that holds no data at the pixel's centre (outside it, or nodata in every band:
        a run leaves such a pixel out), or None. A pixel with some bands empty is the run's to judge."""
        centre = grid.centre(row, col)
        for layer in self.inputs():
            try:
                point = QgsCoordinateTransform(grid.layer.crs(), layer.crs(),
                                               self.canvas().mapSettings().transformContext()).transform(centre)
            except QgsCsException:
                return layer.name()
            if not holds_data_at(layer_file(layer), point.x(), point.y()):
                return layer.name()
        return None

    def remove_near(self, map_point: QgsPointXY) -> bool:
        """Delete the sample nearest to ``map_point`` within the click tolerance (or one pixel)."""
        layer = self.store.layer()
        if layer is None:
            return False
        fid = self.store.nearest(*self._near(layer, map_point))
        if fid is None:
            self.notify(tr("No sample near the click to remove."), Qgis.MessageLevel.Info)
            return False
        self.store.apply([], delete=[fid])
        return True

    def ask_suggestion(self, map_point: QgsPointXY) -> bool:
        """Open the menu of the suggested sample under ``map_point`` (canvas CRS); False when there is none."""
        layer = self.suggestions.layer()
        found = None if layer is None else self.suggestions.near(*self._near(layer, map_point))
        if found is None:
            return False
        to_canvas = QgsCoordinateTransform(layer.crs(), self.canvas().mapSettings().destinationCrs(),
                                           self.canvas().mapSettings().transformContext())
        point = to_canvas.transform(found.point)
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = suggestion_menu(found, self.classes(), lambda cls: self._resolve(found, point, cls))
        self.menu.popup(self.canvas().mapToGlobal(self.toCanvasCoordinates(point)))
        return True

    def _resolve(self, suggestion: Suggestion, map_point: QgsPointXY, cls: Optional[ClassInfo]) -> None:
        """Label the suggested pixel with ``cls`` like a click (None: skip it); either way its marker goes.

        Undoing the label brings the marker back.
        """
        removed: List[Optional[RemovedMarker]] = []

        def restore_marker():
            if removed and removed[0] is not None:
                self.suggestions.restore(removed[0])

        try:
            if cls is None or self.add_at(map_point, cls, on_undo=restore_marker):
                removed.append(self.suggestions.remove(suggestion.fid))
        except SampleLayerError as e:
            self.notify(str(e), Qgis.MessageLevel.Critical)

    def undo(self) -> bool:
        try:
            if self.store.undo():
                self.store.name_samples(self.classes())   # a sample restored under a class renamed since
                return True
        except SampleLayerError as e:
            self.notify(str(e), Qgis.MessageLevel.Critical)
            return False
        self.notify(tr("Nothing to undo."), Qgis.MessageLevel.Info)
        return False

    def remove_canvas_items(self) -> None:
        """Take the pixel outline and an open suggestion menu off the canvas (on shutdown)."""
        if self.menu is not None:
            self.menu.close()
            self.menu.deleteLater()
            self.menu = None
        if self.band is not None:
            self.band.reset()
            self.canvas().scene().removeItem(self.band)
            self.band = None
