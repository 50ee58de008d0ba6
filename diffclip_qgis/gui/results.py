"""Bringing a finished run into the project: styled layers and the message that sums it up."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

from qgis.core import (QgsMapLayer, QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer,
                       QgsSingleBandPseudoColorRenderer, QgsStyle)
from qgis.PyQt.QtGui import QColor

from ..core.classes import ClassInfo
from ..qgis_layers import OUTPUT_PROPERTY
from ..workflow.requests import ClassifyResult
from . import tr
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


def cv_accuracy(result: ClassifyResult) -> Optional[float]:
    """The cross-validated balanced accuracy at the chosen window (0..1), or None when no windows were compared."""
    scores = result.window_scores or {}
    return scores.get(result.window, scores.get(str(result.window)))


def suggestions_would_help(result: ClassifyResult) -> bool:
    """Few samples per class (so no accuracy estimate): the message offers Suggest samples."""
    return cv_accuracy(result) is None and result.few_samples


def success_message(result: ClassifyResult) -> str:
    """One short line for the message bar (it fits beside a button at 1366 px); :func:`result_log` and the
    run's own log lines have the details."""
    score = cv_accuracy(result)
    if suggestions_would_help(result):
        return tr("Few samples per class (see the Log).")
    if score is None:
        return tr("Classified in {s:.0f} s. No accuracy estimate (see the Log).").format(s=result.seconds)
    return tr("Classified in {s:.0f} s. Estimated accuracy {a:.0f} % (see the Log).").format(s=result.seconds,
                                                                                         a=100.0 * score)


def result_log(result: ClassifyResult, outputs: Outputs) -> List[str]:
    """What the accuracy estimate is and where the files went, for the dock's log."""
    score = cv_accuracy(result)
    if score is None:
        accuracy = tr("No accuracy estimate: it comes from cross-validation on your samples, which runs only with "
                      "the window setting 'auto', more than 4 samples per class (median) and at least 2 in every "
                      "class.")
    else:
        accuracy = tr("Accuracy estimate: {a:.1f} % balanced accuracy (mean of the per-class accuracies) at the "
                      "{w} x {w} window, from the window-choice runs: short trainings on parts of your {n} samples, "
                      "each tested on the samples it left out. The final model trains longer on all samples. Samples "
                      "clicked close together make it optimistic; for a map accuracy, label a validation sample "
                      "(DiffCLIP Validation Sample algorithm).").format(a=100.0 * score, w=result.window,
                                                                        n=result.samples)
    files = ", ".join(os.path.basename(p) for p in (outputs.classification, outputs.confidence, outputs.model))
    return [accuracy, tr("Files written to {folder}: {files}.").format(folder=outputs.folder, files=files)]
