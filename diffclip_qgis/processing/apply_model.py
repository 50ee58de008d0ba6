"""diffclip:applymodel: classify rasters with a saved few-shot classifier."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile

from ..workflow.help import APPLY_HELP, html_help
from .algorithm import FILE, DiffClipAlgorithm, FeedbackAdapter, style_outputs_on_load, tr

class ApplyModelAlgorithm(DiffClipAlgorithm):
    MODEL = "MODEL"

    _name = "applymodel"
    _display = "DiffCLIP Apply Model"

    def __init__(self):
        super().__init__()
        self._outputs = ("", "")

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(APPLY_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, tr("Model (.pt from Few-shot Classify)"), behavior=FILE,
            fileFilter=tr("DiffCLIP models (*.pt);;All files (*.*)")))
        self.add_device()
        self.add_extent()
        self.add_smoothing()
        self.add_class_outputs()

    def compute(self, parameters, context, feedback):
        from ..workflow.classify import apply_model
        from ..workflow.requests import ApplyRequest

        paths, layers = self.raster_paths(parameters, context)
        request = ApplyRequest(
            inputs=paths, model=self.parameterAsFile(parameters, self.MODEL, context),
            output=self.raster_output(parameters, self.OUTPUT, context),
            output_confidence=self.raster_output(parameters, self.OUTPUT_CONFIDENCE, context, required=False),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            extent=self.extent(parameters, context, layers, feedback),
            smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context))
        adapter = FeedbackAdapter(feedback, {"reading": (0, 3), "classifying": (3, 97), "smoothing": (97, 99.5),
                                             "writing": (99.5, 100)})
        apply_model(request, adapter.callback())
        adapter.log_times()
        feedback.setProgress(100)
        self._outputs = (request.output, request.output_confidence)
        return {self.OUTPUT: request.output, self.OUTPUT_CONFIDENCE: request.output_confidence or None}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        style_outputs_on_load(context, *self._outputs)
        return {}
