"""The input modalities: a checkable, reorderable list of the project's raster layers."""
from __future__ import annotations

from typing import List, Optional, Sequence

from qgis.core import QgsProject, QgsRasterLayer, QgsUnitTypes
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QAbstractItemView, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ..qgis_layers import OUTPUT_PROPERTY
from . import tr

FIT_ROWS = 5   # rasters listed without scrolling


def describe(layer: QgsRasterLayer) -> str:
    """'64 bands · EPSG:32616 · 1 x 1 m · 150 x 150 px'."""
    units = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits()) if layer.crs().isValid() else ""
    crs = layer.crs().authid() or (layer.crs().description() if layer.crs().isValid() else tr("no CRS"))
    return tr("{bands} bands · {crs} · {dx:g} x {dy:g} {units} · {w} x {h} px").format(
        bands=layer.bandCount(), crs=crs, dx=layer.rasterUnitsPerPixelX(), dy=layer.rasterUnitsPerPixelY(),
        units=units, w=layer.width(), h=layer.height())


def short_description(layer: QgsRasterLayer) -> str:
    """'64 bands · 1 m': what fits in a narrow dock (:func:`describe` goes in the tooltip)."""
    units = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits()) if layer.crs().isValid() else ""
    return tr("{bands} bands · {dx:g} {units}").format(bands=layer.bandCount(), dx=layer.rasterUnitsPerPixelX(),
                                                       units=units)


def grid_difference(layer: QgsRasterLayer, reference: QgsRasterLayer) -> str:
    """Empty when both rasters share one pixel grid, else what differs."""
    if layer.crs() != reference.crs():
        return tr("another CRS")
    size = abs(reference.rasterUnitsPerPixelX()) * 1e-6
    if (abs(layer.rasterUnitsPerPixelX() - reference.rasterUnitsPerPixelX()) > size
            or abs(layer.rasterUnitsPerPixelY() - reference.rasterUnitsPerPixelY()) > size):
        return tr("another pixel size")
    a, b = layer.extent(), reference.extent()
    if (layer.width(), layer.height()) != (reference.width(), reference.height()) or \
            abs(a.xMinimum() - b.xMinimum()) > 1e-3 * reference.rasterUnitsPerPixelX() or \
            abs(a.yMaximum() - b.yMaximum()) > 1e-3 * reference.rasterUnitsPerPixelY():
        return tr("another extent")
    return ""


def unalignable(layers: List[QgsRasterLayer]) -> str:
    """Why the rasters cannot be brought onto one grid (one has a CRS, another none), or ""."""
    without = [layer for layer in layers if not layer.crs().isValid()]
    if not without or len(without) == len(layers):
        return ""
    other = next(layer for layer in layers if layer.crs().isValid())
    return tr("{a} has no CRS but {b} has one, so they cannot be aligned: set the CRS of {a} (Layer Properties > "
              "Source), or untick one of them.").format(a=without[0].name(), b=other.name())


class InputList(QWidget):
    """Tick the rasters to use as modalities; drag to reorder (the first one defines the pixel grid).

    ``changed`` follows ticks, moves and :meth:`set_checked`, not the refreshes after project changes.
    """

    changed = pyqtSignal()

    def __init__(self, project: Optional[QgsProject] = None, parent=None):
        super().__init__(parent)
        self.project = project or QgsProject.instance()
        self.list = QListWidget()
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setToolTip(tr("Tick the rasters to classify together (e.g. hyperspectral and LiDAR). Drag to "
                                "reorder: the first raster defines the pixel grid of samples and outputs."))
        self.list.itemChanged.connect(self._user_changed)
        self.list.model().rowsMoved.connect(self._user_changed)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b35900;")
        self.warning.hide()
        self.empty = QLabel(tr("No raster layer in the project: add the rasters to classify (Layer > Add Layer)."))
        self.empty.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.list)
        layout.addWidget(self.warning)
        self.project.layersAdded.connect(self.refresh)
        self.project.layersRemoved.connect(self.refresh)
        self.refresh()

    def disconnect_project(self) -> None:
        self.project.layersAdded.disconnect(self.refresh)
        self.project.layersRemoved.disconnect(self.refresh)

    def refresh(self, *_) -> None:
        """List the project's file rasters (not DiffCLIP outputs), keeping the order and ticks already there."""
        order = self.listed_ids()
        checked = set(self.checked_ids())
        layers = [l for l in self.project.mapLayers().values() if isinstance(l, QgsRasterLayer)
                  and l.providerType() == "gdal" and l.isValid() and not l.customProperty(OUTPUT_PROPERTY)]
        layers.sort(key=lambda l: (order.index(l.id()) if l.id() in order else len(order), l.name()))
        self._fill(layers, checked)

    def _fill(self, layers: Sequence[QgsRasterLayer], checked) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for layer in layers:
            item = QListWidgetItem(f"{layer.name()} ({short_description(layer)})")
            item.setData(Qt.ItemDataRole.UserRole, layer.id())
            item.setToolTip(f"{layer.name()}\n{describe(layer)}\n{layer.source()}")
            item.setFlags((item.flags() | Qt.ItemFlag.ItemIsUserCheckable) & ~Qt.ItemFlag.ItemIsDropEnabled)
            item.setCheckState(Qt.CheckState.Checked if layer.id() in checked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.empty.setVisible(not layers)
        self.list.setVisible(bool(layers))
        rows = max(2, min(len(layers), FIT_ROWS))   # as tall as its rows: the boxes below stay in view
        self.list.setFixedHeight(rows * self.list.sizeHintForRow(0) + 2 * self.list.frameWidth() + 2
                                 if layers else 0)
        self._update_warning()

    def listed_ids(self) -> List[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def checked_ids(self) -> List[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def checked_layers(self) -> List[QgsRasterLayer]:
        return [l for l in (self.project.mapLayer(i) for i in self.checked_ids()) if l is not None]

    def set_checked(self, layer_ids: Sequence[str]) -> None:
        """Tick these layers (in this order, first) and untick the others."""
        ids = list(layer_ids)
        layers = [self.project.mapLayer(self.list.item(i).data(Qt.ItemDataRole.UserRole))
                  for i in range(self.list.count())]
        layers.sort(key=lambda l: ids.index(l.id()) if l.id() in ids else len(ids))
        self._fill(layers, set(ids))
        self.changed.emit()

    def _user_changed(self, *_) -> None:
        self._update_warning()
        self.changed.emit()

    def _update_warning(self) -> None:
        layers = self.checked_layers()
        notes = [tr("{name}: {difference}").format(name=l.name(), difference=d)
                 for l in layers[1:] if l.crs().isValid() == layers[0].crs().isValid()   # else: unalignable()
                 for d in [grid_difference(l, layers[0])] if d]
        self.warning.setText(tr("Not on the pixel grid of {first}, so resampled onto it (bilinear): {list}.")
                             .format(first=layers[0].name(), list="; ".join(notes)) if notes else "")
        self.warning.setVisible(bool(notes))
