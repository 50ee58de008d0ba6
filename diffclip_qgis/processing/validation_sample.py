"""diffclip:validationsample: a stratified random sample of a classification to label for accuracy and area."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..workflow.help import VALIDATION_HELP, html_help
from .algorithm import DiffClipAlgorithm, FeedbackAdapter, tr


class ValidationSampleAlgorithm(DiffClipAlgorithm):
    CLASSIFICATION = "CLASSIFICATION"
    SAMPLE_SIZE = "SAMPLE_SIZE"
    MIN_PER_CLASS = "MIN_PER_CLASS"

    _name = "validationsample"
    _display = "DiffCLIP Validation Sample"
    _group_id = "assessment"
    _group = "Assessment"
    needs_torch = False

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(VALIDATION_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSIFICATION, tr("Classification")))
        self.add_number(self.SAMPLE_SIZE, "Sample size (points in all)", 500)
        self.add_number(self.MIN_PER_CLASS, "Minimum per class", 50)
        self.add_seed()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, tr("Validation points"), tr("GeoPackage (*.gpkg)")))

    def compute(self, parameters, context, feedback):
        from ..gis.validation import SAMPLE_LAYER
        from ..workflow.requests import ValidationSampleRequest
        from ..workflow.validation import validation_sample

        layer = self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context)
        if layer is None:
            raise QgsProcessingException(tr("Choose the classification raster (CLASSIFICATION)."))
        output = self.point_output(parameters, context, SAMPLE_LAYER, tr("Validation points"), kept=True)
        request = ValidationSampleRequest(layer.source(), output,
                                          self.parameterAsInt(parameters, self.SAMPLE_SIZE, context),
                                          self.parameterAsInt(parameters, self.MIN_PER_CLASS, context),
                                          self.parameterAsInt(parameters, self.SEED, context))
        validation_sample(request, FeedbackAdapter(feedback, {"reading": (0, 80), "writing": (80, 100)}).callback())
        feedback.setProgress(100)
        return {self.OUTPUT: output}
