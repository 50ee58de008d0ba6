"""diffclip:suggestsamples: where to label next (active learning), as points."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
)

from ..workflow.help import SUGGEST_HELP, html_help
from .algorithm import FILE, VECTOR_ANY, DiffClipAlgorithm, FeedbackAdapter, tr


class SuggestSamplesAlgorithm(DiffClipAlgorithm):
    MODEL = "MODEL"
    COUNT = "COUNT"
    SAMPLES = "SAMPLES"

    _name = "suggestsamples"
    _display = "DiffCLIP Suggest Samples"

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(SUGGEST_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, tr("Model (.pt from Few-shot Classify)"),
            behavior=FILE,
            fileFilter=tr("DiffCLIP models (*.pt);;All files (*.*)")))
        self.add_number(self.COUNT, "Number of suggestions (-1 = 2/class)", -1, optional=True)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, tr("Labelled samples"),
            [VECTOR_ANY],
            optional=True))
        self.add_extent("Suggest only inside this extent")
        self.add_seed()
        self.add_device()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, tr("Suggested samples"), tr("GeoPackage (*.gpkg)")))

    def compute(self, parameters, context, feedback):
        from ..gis.points import SUGGESTIONS_LAYER
        from ..workflow.requests import SuggestRequest
        from ..workflow.suggest import suggest_samples

        paths, layers = self.raster_paths(parameters, context)
        request = SuggestRequest(
            inputs=paths, model=self.parameterAsFile(parameters, self.MODEL, context),
            output=self.point_output(parameters, context, SUGGESTIONS_LAYER, tr("Suggested samples")),
            count=self.optional_int(parameters, self.COUNT, context),
            samples=self.samples(parameters, context, feedback, self.SAMPLES, optional=True),
            extent=self.extent(parameters, context, layers, feedback),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto")
        suggest_samples(request, FeedbackAdapter(feedback, {"reading": (0, 10), "classifying": (10, 95),
                                                            "writing": (95, 100)}).callback())
        feedback.setProgress(100)
        return {self.OUTPUT: request.output}
