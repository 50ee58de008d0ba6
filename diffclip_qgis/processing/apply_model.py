"""diffclip:applymodel: classify rasters with a saved few-shot classifier."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile

from .algorithm import DiffClipAlgorithm, FeedbackAdapter, apply_style_on_load, tr

HELP = """<p>Classifies rasters with a model saved by 'DiffCLIP Few-shot Classify' (OUTPUT_MODEL), e.g. another
scene of the same sensors, or the same scene again with smoothing or inside another extent. The output
is a GeoTIFF of class ids (0 = nodata) with the model's class names and colours and a .qml style.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality, the same sensors in the same order and with
the same band counts as the rasters the model was trained on (otherwise the algorithm stops and says
what it expected). The first raster defines the output grid.</dd>
<dt>Model (MODEL)</dt><dd>A classifier .pt file written by 'DiffCLIP Few-shot Classify'. (An encoder from
'DiffCLIP Pretrain Encoder' has no classes yet: fine-tune it with Few-shot Classify.)</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Classify only inside this extent (EXTENT, optional)</dt><dd>Classify just this part of the grid.</dd>
<dt>Majority smoothing radius (SMOOTHING)</dt><dd>Radius in pixels of a majority filter (0 = off);
nodata stays nodata.</dd>
<dt>Classification (OUTPUT)</dt><dd>GeoTIFF of class ids, with its .qml style.</dd>
<dt>Confidence (OUTPUT_CONFIDENCE, optional)</dt><dd>GeoTIFF (0..1, nodata -1) of the probability of the
chosen class.</dd>
</dl>"""


class ApplyModelAlgorithm(DiffClipAlgorithm):
    MODEL = "MODEL"

    _name = "applymodel"
    _display = "DiffCLIP Apply Model"

    def __init__(self):
        super().__init__()
        self._output = ""

    def shortHelpString(self):  # noqa: N802
        return tr(HELP)

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, tr("Model (.pt from Few-shot Classify)"), behavior=QgsProcessingParameterFile.File,
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
            extent=self.extent(parameters, context, layers),
            smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context))
        adapter = FeedbackAdapter(feedback, {"reading": (0, 3), "classifying": (3, 97), "smoothing": (97, 99.5),
                                             "writing": (99.5, 100)})
        apply_model(request, adapter.callback())
        adapter.log_times()
        feedback.setProgress(100)
        self._output = request.output
        return {self.OUTPUT: request.output, self.OUTPUT_CONFIDENCE: request.output_confidence or None}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        apply_style_on_load(context, self._output)
        return {}
