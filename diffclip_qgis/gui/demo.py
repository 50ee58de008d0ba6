"""The bundled demo: its hyperspectral and LiDAR rasters, class list and samples, loaded into the dock."""
from __future__ import annotations

import os

from qgis.core import QgsCoordinateTransform, QgsProject, QgsRasterLayer, QgsVectorLayer

from .true_colour import show_true_colour

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo")
RASTERS = ("demo_hsi", "demo_lidar")


def demo_path(name: str) -> str:
    return os.path.join(DEMO, name)


def demo_rasters(project: QgsProject):
    """The demo rasters, reusing those already in the project; the new ones are added (HSI in true colour)."""
    present = {os.path.normcase(l.source()): l for l in project.mapLayers().values() if isinstance(l, QgsRasterLayer)}
    layers, new = [], []
    for name in RASTERS:
        path = demo_path(name + ".tif")
        layer = present.get(os.path.normcase(path))
        if layer is None:
            layer = QgsRasterLayer(path, name)
            show_true_colour(layer)
            new.append(layer)
        layers.append(layer)
    project.addMapLayers(new)
    return layers


def demo_samples():
    """(point, class id) of the demo samples and their CRS."""
    layer = QgsVectorLayer(demo_path("demo_samples.gpkg"), "demo samples", "ogr")
    return [(f.geometry().asPoint(), int(f["class_id"])) for f in layer.getFeatures()], layer.crs()


def zoom_to(canvas, layer) -> None:
    """Show the whole of ``layer`` on the canvas."""
    transform = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    canvas.setExtent(transform.transformBoundingBox(layer.extent()))
    canvas.refresh()
