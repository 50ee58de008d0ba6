"""The Processing provider "DiffCLIP" (id ``diffclip``)."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .accuracy import AccuracyAlgorithm
from .algorithm import ICON_PATH, tr
from .apply_model import ApplyModelAlgorithm
from .fewshot_classify import FewShotClassifyAlgorithm
from .pretrain import PretrainAlgorithm
from .suggest_samples import SuggestSamplesAlgorithm
from .validation_sample import ValidationSampleAlgorithm


_ALIVE = []


class DiffClipProvider(QgsProcessingProvider):
    """Few-shot classify, pretrain, apply model, accuracy assessment, validation sample and sample suggestions.

    The registry owns the C++ provider but not its Python half: an instance passed straight to
    ``addProvider(DiffClipProvider())`` would be garbage-collected and its algorithms lost, so
    every instance keeps itself alive until the registry unloads it.
    """

    def __init__(self):
        super().__init__()
        _ALIVE.append(self)

    def unload(self):
        if self in _ALIVE:
            _ALIVE.remove(self)

    def id(self):
        return "diffclip"

    def name(self):
        return "DiffCLIP"

    def longName(self):  # noqa: N802 (QGIS API names)
        return tr("DiffCLIP few-shot classification of multimodal rasters")

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):
        return ICON_PATH

    def loadAlgorithms(self):
        for algorithm in (FewShotClassifyAlgorithm(), PretrainAlgorithm(), ApplyModelAlgorithm(), AccuracyAlgorithm(),
                          ValidationSampleAlgorithm(), SuggestSamplesAlgorithm()):
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self):
        return ["tif"]

    def supportsNonFileBasedOutput(self):
        return False
