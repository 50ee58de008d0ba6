"""Bringing a finished run into the project: styled layers and the message that sums it up."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

from qgis.core import (QgsMapLayer, QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer,
                       QgsSingleBandPseudoColorRenderer, QgsStyle)
from qgis.PyQt.QtGui import QColor

from ..core.classes import ClassInfo
from ..workflow.requests import ClassifyResult
from . import tr
from .inputs import OUTPUT_PROPERTY
from .task import Outputs


def add_result_layers(project: QgsProject, outputs: Outputs, classes: List[ClassInfo],
                      samples: Optional[QgsMapLayer] = None) -> Tuple[QgsRasterLayer, QgsRasterLayer]:
    """Add the classification (paletted, from its .qml) and the confidence below it.

    They go on top of the layer tree, or just below the sample layer so that samples stay visible.
    """
    confidence = QgsRasterLayer(outputs.confidence, tr("DiffCLIP confidence {n:03d}").format(n=outputs.number))
    classification = QgsRasterLayer(outputs.classification,
                                     tr("DiffCLIP classification {n:03d}").format(n=outputs.number))
    style_confidence(confidence)
    classification.loadNamedStyle(outputs.style)
    if not isinstance(classification.renderer(), QgsPalettedRasterRenderer):
        classification.setRenderer(paletted_renderer(classification, classes))
    root = project.layerTreeRoot()
    node = root.findLayer(samples.id()) if samples is not None else None
    index = root.children().index(node) + 1 if node is not None and node.parent() is root else 0
    for layer in (confidence, classification):
        layer.setCustomProperty(OUTPUT_PROPERTY, outputs.number)
        project.addMapLayer(layer, False)
        root.insertLayer(index, layer)
    root.findLayer(confidence.id()).setItemVisibilityChecked(False)
    return classification, confidence


def paletted_renderer(layer: QgsRasterLayer, classes: List[ClassInfo]) -> QgsPalettedRasterRenderer:
    entries = [QgsPalettedRasterRenderer.Class(c.id, QColor(c.colour), c.name) for c in classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries)


def style_confidence(layer: QgsRasterLayer) -> None:
    """Viridis from 0 to 1."""
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    renderer.createShader(QgsStyle.defaultStyle().colorRamp("Viridis"))
    layer.setRenderer(renderer)


def accuracy_text(result: ClassifyResult) -> str:
    """The held-out estimate: cross-validated balanced accuracy on the labelled samples at the chosen window."""
    window, scores = result.window, result.window_scores or {}
    score = scores.get(window, scores.get(str(window)))
    if score is None:
        return tr("No held-out accuracy estimate: the window was fixed, or there were too few samples per class "
                  "for cross-validation.")
    return tr("Cross-validated balanced accuracy on your samples (held-out folds, {w} x {w} window): {a:.1f} %."
              ).format(w=window, a=100.0 * score)


def success_message(result: ClassifyResult, outputs: Outputs) -> str:
    return tr("Classification done in {s:.0f} s. {accuracy} Files written to {folder}: {files}.").format(
        s=result.seconds, accuracy=accuracy_text(result), folder=outputs.folder,
        files=", ".join(os.path.basename(p) for p in (outputs.classification, outputs.confidence, outputs.model)))
